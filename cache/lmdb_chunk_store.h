// LmdbChunkStore: the ChunkStore on one shared LMDB environment (see chunk_store.h for the contract and
// lmdb_env.h for how the environment is shared). Private to cache/: callers use ChunkStore::Open.
// lmdb_chunk_store.cc holds the read and write paths; lmdb_maintenance.cc eviction, verify and counters.
//
// Every method is a few short transactions. A lookup copies the bytes out of the map before its read
// transaction ends; a store or delete is one write transaction that also keeps the tracked counters (info
// database) and the access stamp of the chunk in step. No transaction is held across a log line, a lock
// wait, hashing a batch, or anything slow; eviction scans in a read transaction and deletes in short write
// transactions afterwards.
//
// Thread safety: thread-safe and multi-process safe. Constant state after construction, the lock-free
// VerifiedChunks and AccessBatch, and the flusher thread's stop flag guarded by flush_mu_.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cache/access_batch.h"
#include "cache/background_evictor.h"
#include "cache/chunk_store.h"
#include "cache/lmdb_env.h"

namespace lazyfs::cache {

// Chunks whose checksum this process has already verified. Hashing a whole 1 MiB chunk to serve a 4 KiB
// read would make every read cost a chunk's worth of XXH3, so each chunk is verified on its first read in
// a process and trusted afterwards. The table is lossy (direct-mapped, a slot per digest prefix): a slot
// taken by another digest only means verifying again. What it gives up: damage to a chunk that happens
// while a process keeps reading it is caught by the next process, not this one. A chunk evicted and stored
// again has the same bytes (same sha256), so the trust carries over.
class VerifiedChunks {
 public:
  bool Contains(const Sha256Digest& d) const { return slots_[Slot(d)].load(std::memory_order_relaxed) == Tag(d); }
  void Insert(const Sha256Digest& d) { slots_[Slot(d)].store(Tag(d), std::memory_order_relaxed); }

 private:
  static constexpr size_t kSlots = 1 << 16;
  static size_t Slot(const Sha256Digest& d) { return Sha256DigestHash{}(d) & (kSlots - 1); }
  static uint64_t Tag(const Sha256Digest& d) {
    uint64_t tag;
    std::memcpy(&tag, d.bytes.data() + 8, sizeof tag);
    return tag | 1;  // never 0, the empty slot
  }
  std::array<std::atomic<uint64_t>, kSlots> slots_{};
};

// Keys of the info database.
inline constexpr std::string_view kInfoChunkCount = "chunk_count";
inline constexpr std::string_view kInfoChunkBytes = "chunk_bytes";
inline constexpr std::string_view kInfoMaxBytes = "max_bytes";
inline constexpr std::string_view kInfoEvictedChunks = "evicted_chunks";
inline constexpr std::string_view kInfoEvictedBytes = "evicted_bytes";

// Info and access values are little-endian integers; absent or malformed reads as 0.
uint64_t InfoGet(MDB_txn* txn, MDB_dbi info, std::string_view key);
Status InfoPut(MDB_txn* txn, MDB_dbi info, std::string_view key, uint64_t value);
uint32_t AccessGet(MDB_txn* txn, MDB_dbi access, std::string_view digest_key);

struct ChunkTotals {
  uint64_t count = 0;
  uint64_t bytes = 0;  // payload bytes, frame headers excluded
};

// Counts the chunks and their bytes with a cursor walk inside `txn`. It reads leaf pages only: LMDB keeps a
// big value's size in its leaf node and hands back a pointer to its overflow pages without touching them.
Result<ChunkTotals> WalkChunkTotals(MDB_txn* txn, MDB_dbi chunks, const std::string& dir);

class LmdbChunkStore final : public ChunkStore {
 public:
  static Result<std::unique_ptr<ChunkStore>> Create(const CacheOptions& options);
  ~LmdbChunkStore() override;

  Result<bool> ReadChunk(const Sha256Digest& digest, uint64_t chunk_size, uint64_t offset, uint64_t length,
                         char* dst) override;
  Result<std::optional<std::string>> GetChunk(const Sha256Digest& digest) override;
  Result<bool> HasChunk(const Sha256Digest& digest) override;
  Status PutChunk(const Sha256Digest& digest, std::string_view data) override;
  Status DeleteChunk(const Sha256Digest& digest) override;
  Result<EvictionReport> DeleteChunks(const std::vector<Sha256Digest>& digests) override;
  Result<std::optional<std::string>> GetMeta(std::string_view key) override;
  Status PutMeta(std::string_view key, std::string_view value) override;
  Status DeleteMeta(std::string_view key) override;
  Result<EvictionReport> Evict(uint64_t target_bytes) override;
  Status FlushAccess() override;
  Result<VerifyReport> Verify(const BadValueReporter& report) override;
  Result<CacheCounters> Counters() override;
  const std::string& dir() const override { return dir_; }

 private:
  enum class Found { kAbsent, kPresent, kCorrupt };
  enum class PutOutcome { kStored, kPresent, kOverCap };
  struct PutResult {
    PutOutcome outcome;
    uint64_t chunk_bytes;  // tracked chunk bytes after the put (before it, for kOverCap)
  };

  LmdbChunkStore(std::shared_ptr<LmdbEnv> env, const CacheOptions& options, uint64_t max_bytes);

  // The current access tick (clock seconds / granularity).
  uint32_t Tick() const;

  template <class OnPayload>
  Result<Found> Lookup(MDB_dbi dbi, std::string_view key, bool trusted, OnPayload&& on_payload);
  template <class Name>
  Result<std::optional<std::string>> Get(MDB_dbi dbi, std::string_view key, Name&& name);

  // One write transaction storing the chunk with its stamp and counters; with `enforce_cap`, a chunk that
  // would take the tracked bytes past the cap is not stored (kOverCap) so the caller can evict first.
  Status TryPutMeta(std::string_view key, std::string_view value);
  Result<PutResult> TryPutChunk(const Sha256Digest& digest, std::string_view data, bool enforce_cap);
  // Deletes a chunk and its access stamp inside `txn`, keeping the counters; returns its data bytes, or
  // nullopt when absent.
  Result<std::optional<uint64_t>> DeleteChunkInTxn(MDB_txn* txn, std::string_view key);
  // Writes `stamps` into the access database of `txn` (only for present chunks; never moves a stamp back).
  Status WriteStamps(MDB_txn* txn, const std::vector<std::pair<Sha256Digest, uint32_t>>& stamps);
  void DropCorrupt(MDB_dbi dbi, std::string_view key, const std::string& name);
  // Where eviction aims when a put of `incoming` bytes needs room: cap - incoming - cap / 10.
  uint64_t LowWater(uint64_t incoming) const;
  // Background eviction: a put past HighWater wakes the evictor, which evicts down to BackgroundTarget.
  uint64_t HighWater() const { return max_bytes_ - max_bytes_ / 10; }
  uint64_t BackgroundTarget() const { return max_bytes_ - max_bytes_ / 5; }
  void FlusherLoop();

  // Constant after construction.
  const std::shared_ptr<LmdbEnv> env_;
  const std::string dir_;
  const uint64_t max_bytes_;
  const uint32_t granularity_s_;
  const std::chrono::milliseconds flush_interval_;
  const std::function<int64_t()> clock_;

  VerifiedChunks verified_;  // lock-free; see VerifiedChunks
  AccessBatch access_;       // thread-safe; see AccessBatch

  std::mutex flush_mu_;  // guards stop_ only; never held across a transaction
  std::condition_variable flush_cv_;
  bool stop_ = false;     // guarded by flush_mu_
  std::thread flusher_;   // started in the constructor, joined first in the destructor
  // Declared last, so it is destroyed (its thread joined) before any member its passes use.
  std::unique_ptr<BackgroundEvictor> evictor_;  // null with background_eviction off
};

}  // namespace lazyfs::cache
