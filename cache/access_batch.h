// AccessBatch: the in-memory batch of chunks read since the last flush of access stamps, so that LRU
// tracking costs no write transaction per read (the store writes a whole batch in one transaction every
// few seconds). A lossy lock-free filter in front of the batch remembers, per slot, which digest was last
// noted in which tick: a chunk read over and over within one tick takes the mutex once, not per read.
// A filter slot shared by two digests only costs an extra trip to the mutex.
//
// Thread safety: Note and Take are thread-safe; Note is lock-free on the filter hit path.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/digest.h"

namespace lazyfs::cache {

class AccessBatch {
 public:
  // Records that `digest` was read in `tick`.
  void Note(const Sha256Digest& digest, uint32_t tick) {
    uint64_t h = Sha256DigestHash{}(digest);
    uint64_t mark = (h & 0xffffffff00000000ULL) | tick;
    std::atomic<uint64_t>& slot = filter_[(h >> 7) & (kSlots - 1)];
    if (slot.load(std::memory_order_relaxed) == mark) return;
    {
      std::lock_guard lock(mu_);
      uint32_t& pending = pending_[digest];
      if (pending < tick) pending = tick;
    }
    slot.store(mark, std::memory_order_relaxed);
  }

  // Hands the batch over and starts a new one.
  std::vector<std::pair<Sha256Digest, uint32_t>> Take() {
    std::unordered_map<Sha256Digest, uint32_t, Sha256DigestHash> taken;
    {
      std::lock_guard lock(mu_);
      taken.swap(pending_);
    }
    return {taken.begin(), taken.end()};
  }

 private:
  static constexpr size_t kSlots = 1 << 14;
  std::array<std::atomic<uint64_t>, kSlots> filter_{};
  std::mutex mu_;  // never held across anything but the map update
  std::unordered_map<Sha256Digest, uint32_t, Sha256DigestHash> pending_;  // guarded by mu_
};

}  // namespace lazyfs::cache
