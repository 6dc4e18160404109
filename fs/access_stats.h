// AccessStats: the per-mount access counters behind `lazyfs stats` — totals, per layer and per file —
// and the fetch latency histogram. Everything is relaxed atomics: the read path never takes a lock here.
//
// Unique bytes ("bytes needed") are tracked per file with one bit per kAccessPage (4 KiB) page of the
// file: a read marks every page it touches, and a page counts once, clamped to the file size. That is
// exact for page-aligned reads, which is what the kernel sends through its page cache (reads are whole
// pages, the last one cut at EOF); an unaligned read counts the whole pages it touches. A file's bitmap
// and counters are allocated on its first read (a CAS installs them; the loser frees its copy), so files
// never read cost one null pointer each.
//
// The latency histogram has fixed log2 buckets of microseconds, one atomic each; quantiles are reported
// as the upper bound of the bucket that holds them (so within a factor of two).
//
// Thread safety: OnRead and OnFetch may be called from any number of threads; the snapshots read
// atomics and may be taken at any time (they are not one consistent cut, which stats do not need).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "fs/read_observer.h"
#include "fs/union_tree.h"

namespace lazyfs::fs {

inline constexpr uint64_t kAccessPage = 4096;

class LatencyHistogram {
 public:
  // Bucket 0: < 1 µs; bucket i (i >= 1): [2^(i-1), 2^i) µs; the last bucket also takes everything above.
  static constexpr int kBuckets = 40;
  using Counts = std::array<uint64_t, kBuckets>;

  void Record(std::chrono::nanoseconds latency);
  Counts Snapshot() const;

  // The exclusive upper bound of bucket i in microseconds (1, 2, 4, ...).
  static uint64_t BucketUpperMicros(int bucket) { return uint64_t{1} << bucket; }
  // The upper bound (µs) of the bucket holding quantile q (0 < q <= 1) of `counts`; 0 when empty.
  static uint64_t Quantile(const Counts& counts, double q);

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
};

// One bit per 4 KiB page of a file, set by reads.
class PageBitmap {
 public:
  explicit PageBitmap(uint64_t file_size);
  // Marks the pages covering [offset, offset + length) and returns the bytes they add that were not
  // marked before (pages clamped to the file size). Thread-safe (fetch_or per word).
  uint64_t Mark(uint64_t offset, uint64_t length);

 private:
  const uint64_t size_;
  const uint64_t pages_;
  std::unique_ptr<std::atomic<uint64_t>[]> words_;
};

struct AccessCounters {
  std::atomic<uint64_t> reads{0};
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<uint64_t> unique_bytes{0};  // bytes needed: distinct pages read, clamped to file sizes
  std::atomic<uint64_t> chunk_hits{0};
  std::atomic<uint64_t> chunk_misses{0};
  std::atomic<uint64_t> fetches{0};        // requests to blob readers, merged ranges once (layer totals only)
  std::atomic<uint64_t> fetched_bytes{0};  // compressed bytes on the wire (layer totals only)
};

// A plain copy of AccessCounters for reports.
struct AccessSnapshot {
  uint64_t reads = 0, bytes_read = 0, unique_bytes = 0, chunk_hits = 0, chunk_misses = 0, fetches = 0,
           fetched_bytes = 0;
  static AccessSnapshot Of(const AccessCounters& c);
};

struct FileAccess {
  uint64_t ino = 0;
  AccessSnapshot counters;
};

class AccessStats final : public ReadObserver {
 public:
  // Sized for `tree`'s inodes and `layer_count` layers (the tree is not kept).
  AccessStats(const UnionTree& tree, size_t layer_count);
  ~AccessStats() override;
  AccessStats(const AccessStats&) = delete;
  AccessStats& operator=(const AccessStats&) = delete;

  void OnRead(const ReadEvent& event) override;
  // One request of `bytes` compressed bytes from `layer` that took `latency` (ChunkReader's listener).
  void OnFetch(uint32_t layer, uint64_t bytes, std::chrono::nanoseconds latency);

  AccessSnapshot Total() const { return AccessSnapshot::Of(total_); }
  std::vector<AccessSnapshot> Layers() const;
  LatencyHistogram::Counts FetchLatency() const { return latency_.Snapshot(); }
  // The `n` files with the most bytes needed (ties: more bytes read first, then lower inode).
  std::vector<FileAccess> TopFiles(size_t n) const;

 private:
  struct FileStats {
    explicit FileStats(uint64_t size) : pages(size) {}
    AccessCounters counters;
    PageBitmap pages;
  };
  FileStats* FileFor(uint64_t ino, const Node& node);

  // Constant after construction.
  const size_t inode_slots_;
  const size_t layer_count_;

  AccessCounters total_;
  std::unique_ptr<AccessCounters[]> layers_;               // [layer_count_]
  std::unique_ptr<std::atomic<FileStats*>[]> files_;       // [inode_slots_], owned, installed by CAS
  LatencyHistogram latency_;
};

}  // namespace lazyfs::fs
