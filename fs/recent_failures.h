// RecentFailures: the reads that just failed, so that the kernel's immediate retry of one is answered at
// once instead of waiting out a second --read-timeout.
//
// Why: when an asynchronous readahead request fails, the kernel asks again for the one page the reader
// is waiting on, inside the same read(2). Without memory, that page gets a fresh deadline and one read(2)
// on a dead or silent registry takes twice the bound. A failure is remembered for `window` by (reader,
// inode, byte range): a later read by the same reader (the FUSE request's pid, a thread id) that lies
// inside a remembered range gets the same error at once. Other readers, and the same reader after the
// window, fetch again, so a registry that recovers serves the next read at once.
//
// Thread safety: all methods may be called from any thread; one mutex, never held across I/O. Reads take
// no lock while nothing is remembered.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "common/result.h"

namespace lazyfs::fs {

class RecentFailures {
 public:
  using Clock = std::chrono::steady_clock;
  // Far above the few milliseconds between a failed readahead and the kernel's retry; short enough that a
  // reader trying again by hand after a registry came back is not turned away.
  static constexpr std::chrono::milliseconds kDefaultWindow{2000};
  // Entries kept at most (the oldest goes first); each costs a few dozen bytes.
  static constexpr size_t kMaxEntries = 256;

  explicit RecentFailures(std::chrono::milliseconds window = kDefaultWindow) : window_(window) {}

  // Remembers that `reader`'s read of bytes [offset, offset + length) of inode `ino` failed with `error` at `now`.
  void Remember(uint64_t reader, uint64_t ino, uint64_t offset, uint64_t length, const Error& error, Clock::time_point now);
  // The error of a failure remembered for `reader` and `ino` within the window before `now` whose range holds
  // all of [offset, offset + length), with context saying it is a repeat; nullopt when there is none.
  std::optional<Error> Find(uint64_t reader, uint64_t ino, uint64_t offset, uint64_t length, Clock::time_point now);

 private:
  struct Failure {
    uint64_t reader;
    uint64_t ino;
    uint64_t offset;
    uint64_t length;
    Error error;
    Clock::time_point at;
  };
  void DropExpired(Clock::time_point now);  // needs mu_

  const std::chrono::milliseconds window_;
  std::mutex mu_;
  std::vector<Failure> failures_;  // guarded by mu_; oldest first
  std::atomic<size_t> count_{0};   // failures_.size(), readable without mu_ (the fast path of Find)
};

}  // namespace lazyfs::fs
