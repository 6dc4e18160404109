#include "fs/access_stats.h"

#include <algorithm>
#include <bit>

namespace lazyfs::fs {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

void Add(std::atomic<uint64_t>& counter, uint64_t n) { counter.fetch_add(n, kRelaxed); }

}  // namespace

void LatencyHistogram::Record(std::chrono::nanoseconds latency) {
  auto micros = static_cast<uint64_t>(std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(latency).count()));
  // bit_width(0) = 0 (< 1 µs), bit_width(1) = 1 ([1, 2) µs), bit_width(2..3) = 2, ...
  int bucket = std::min(static_cast<int>(std::bit_width(micros)), kBuckets - 1);
  buckets_[static_cast<size_t>(bucket)].fetch_add(1, kRelaxed);
}

LatencyHistogram::Counts LatencyHistogram::Snapshot() const {
  Counts out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = buckets_[i].load(kRelaxed);
  return out;
}

uint64_t LatencyHistogram::Quantile(const Counts& counts, double q) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0) return 0;
  // The smallest bucket whose cumulative count reaches ceil(q * total) (at least the first sample).
  auto rank = static_cast<uint64_t>(std::max(1.0, q * static_cast<double>(total) + 0.999999));
  rank = std::min(rank, total);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts[static_cast<size_t>(i)];
    if (seen >= rank) return BucketUpperMicros(i);
  }
  return BucketUpperMicros(kBuckets - 1);
}

PageBitmap::PageBitmap(uint64_t file_size)
    : size_(file_size),
      pages_((file_size + kAccessPage - 1) / kAccessPage),
      words_(std::make_unique<std::atomic<uint64_t>[]>((pages_ + 63) / 64)) {}

uint64_t PageBitmap::Mark(uint64_t offset, uint64_t length) {
  if (length == 0 || offset >= size_) return 0;
  uint64_t end = std::min(size_, offset + std::min(length, size_ - offset));
  uint64_t first = offset / kAccessPage;
  uint64_t last = (end - 1) / kAccessPage;  // inclusive
  uint64_t added = 0;
  for (uint64_t page = first; page <= last;) {
    uint64_t word = page / 64;
    uint64_t bit = page % 64;
    uint64_t span = std::min<uint64_t>(64 - bit, last - page + 1);
    uint64_t mask = (span == 64 ? ~uint64_t{0} : ((uint64_t{1} << span) - 1)) << bit;
    uint64_t before = words_[word].fetch_or(mask, kRelaxed);
    uint64_t fresh = mask & ~before;
    added += static_cast<uint64_t>(std::popcount(fresh)) * kAccessPage;
    // The file's last page may be short: count only the bytes it has.
    uint64_t final_page = pages_ - 1;
    if (final_page >= page && final_page < page + span && ((fresh >> (final_page % 64)) & 1)) {
      added -= kAccessPage - (size_ - final_page * kAccessPage);
    }
    page += span;
  }
  return added;
}

AccessSnapshot AccessSnapshot::Of(const AccessCounters& c) {
  return {c.reads.load(kRelaxed),        c.bytes_read.load(kRelaxed), c.unique_bytes.load(kRelaxed),
          c.chunk_hits.load(kRelaxed),   c.chunk_misses.load(kRelaxed), c.fetches.load(kRelaxed),
          c.fetched_bytes.load(kRelaxed)};
}

AccessStats::AccessStats(const UnionTree& tree, size_t layer_count)
    : inode_slots_(tree.node_count() + 1),
      layer_count_(layer_count),
      layers_(std::make_unique<AccessCounters[]>(layer_count)),
      files_(std::make_unique<std::atomic<FileStats*>[]>(inode_slots_)) {}

AccessStats::~AccessStats() {
  for (size_t i = 0; i < inode_slots_; ++i) delete files_[i].load(std::memory_order_acquire);
}

AccessStats::FileStats* AccessStats::FileFor(uint64_t ino, const Node& node) {
  if (ino >= inode_slots_) return nullptr;
  std::atomic<FileStats*>& slot = files_[ino];
  FileStats* stats = slot.load(std::memory_order_acquire);
  if (stats) return stats;
  auto fresh = std::make_unique<FileStats>(node.size);
  if (slot.compare_exchange_strong(stats, fresh.get(), std::memory_order_acq_rel, std::memory_order_acquire)) {
    return fresh.release();
  }
  return stats;  // another thread installed it first; ours is freed
}

void AccessStats::OnRead(const ReadEvent& event) {
  FileStats* file = FileFor(event.ino, *event.node);
  uint64_t fresh = file ? file->pages.Mark(event.offset, event.length) : 0;
  AccessCounters* layer = event.node->layer < layer_count_ ? &layers_[event.node->layer] : nullptr;
  for (AccessCounters* c : {&total_, layer, file ? &file->counters : nullptr}) {
    if (!c) continue;
    Add(c->reads, 1);
    Add(c->bytes_read, event.length);
    if (fresh) Add(c->unique_bytes, fresh);
    if (event.outcome.chunk_hits) Add(c->chunk_hits, event.outcome.chunk_hits);
    if (event.outcome.chunk_misses) Add(c->chunk_misses, event.outcome.chunk_misses);
  }
}

void AccessStats::OnFetch(uint32_t layer, uint64_t bytes, std::chrono::nanoseconds latency) {
  latency_.Record(latency);
  Add(total_.fetches, 1);
  Add(total_.fetched_bytes, bytes);
  if (layer < layer_count_) {
    Add(layers_[layer].fetches, 1);
    Add(layers_[layer].fetched_bytes, bytes);
  }
}

std::vector<AccessSnapshot> AccessStats::Layers() const {
  std::vector<AccessSnapshot> out;
  out.reserve(layer_count_);
  for (size_t i = 0; i < layer_count_; ++i) out.push_back(AccessSnapshot::Of(layers_[i]));
  return out;
}

std::vector<FileAccess> AccessStats::TopFiles(size_t n) const {
  std::vector<FileAccess> files;
  for (size_t ino = 0; ino < inode_slots_; ++ino) {
    if (const FileStats* f = files_[ino].load(std::memory_order_acquire)) {
      files.push_back({ino, AccessSnapshot::Of(f->counters)});
    }
  }
  auto better = [](const FileAccess& a, const FileAccess& b) {
    if (a.counters.unique_bytes != b.counters.unique_bytes) return a.counters.unique_bytes > b.counters.unique_bytes;
    if (a.counters.bytes_read != b.counters.bytes_read) return a.counters.bytes_read > b.counters.bytes_read;
    return a.ino < b.ino;
  };
  size_t keep = std::min(n, files.size());
  std::partial_sort(files.begin(), files.begin() + static_cast<ptrdiff_t>(keep), files.end(), better);
  files.resize(keep);
  return files;
}

}  // namespace lazyfs::fs
