#include "fs/prefetcher.h"

#include <algorithm>
#include <unordered_set>

#include "common/log.h"

namespace lazyfs::fs {

PrefetchPlan PlanPrefetch(const Trace& trace, const UnionTree& tree) {
  PrefetchPlan plan;
  std::unordered_set<Sha256Digest, Sha256DigestHash> seen;
  std::vector<std::optional<uint64_t>> inode_of(trace.paths.size());
  std::vector<bool> resolved(trace.paths.size(), false);
  for (const TraceRecord& r : trace.records) {
    ++plan.records;
    if (r.file >= trace.paths.size()) continue;
    if (!resolved[r.file]) {
      inode_of[r.file] = tree.Resolve(trace.paths[r.file]);
      resolved[r.file] = true;
    }
    const Node* n = inode_of[r.file] ? tree.Find(*inode_of[r.file]) : nullptr;
    if (!n || n->type != EntryType::kRegular) {
      ++plan.missing_paths;
      continue;
    }
    uint64_t end = std::min(n->size, r.offset + r.length);
    auto it = std::upper_bound(n->chunks.begin(), n->chunks.end(), r.offset,
                               [](uint64_t off, const ChunkRef& c) { return off < c.file_offset + c.size; });
    for (; it != n->chunks.end() && it->file_offset < end; ++it) {
      if (seen.insert(it->digest).second) plan.items.push_back({n->layer, *it});
    }
  }
  return plan;
}

Prefetcher::Prefetcher(ChunkReader& reader, PrefetchPlan plan, unsigned threads)
    : reader_(reader), plan_(std::move(plan)), threads_(std::max(1u, threads)) {}

Prefetcher::~Prefetcher() {
  stop_.store(true);
  {
    std::lock_guard lock(stop_mu_);
  }
  stop_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void Prefetcher::Start() {
  start_time_ = std::chrono::steady_clock::now();
  started_.store(true);
  running_.store(threads_);
  for (unsigned i = 0; i < threads_; ++i) workers_.emplace_back([this, i] { Worker(i == 0); });
}

bool Prefetcher::YieldToForeground(bool always_run) {
  if (always_run) return !stop_.load(std::memory_order_relaxed);
  const std::atomic<uint64_t>& waiting = reader_.counters().misses_in_flight;
  bool counted = false;
  while (!stop_.load(std::memory_order_relaxed) && waiting.load(std::memory_order_relaxed) > 0) {
    if (!counted) yields_.fetch_add(1, std::memory_order_relaxed);
    counted = true;
    std::unique_lock lock(stop_mu_);
    stop_cv_.wait_for(lock, std::chrono::milliseconds(1), [&] { return stop_.load(); });
  }
  return !stop_.load(std::memory_order_relaxed);
}

void Prefetcher::Worker(bool always_run) {
  for (;;) {
    if (!YieldToForeground(always_run)) break;
    size_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= plan_.items.size()) break;
    const PrefetchItem& item = plan_.items[i];
    Result<bool> fetched = reader_.Warm(item.layer, item.chunk);
    if (!fetched) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      LogWarn("prefetch: {}", fetched.error().ToString());
    } else {
      (*fetched ? fetched_ : cached_).fetch_add(1, std::memory_order_relaxed);
    }
    done_.fetch_add(1, std::memory_order_relaxed);
  }
  if (running_.fetch_sub(1) == 1) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start_time_);
    finished_ms_.store(ms.count());
  }
}

PrefetchProgress Prefetcher::progress() const {
  PrefetchProgress p;
  p.planned = plan_.items.size();
  p.done = done_.load(std::memory_order_relaxed);
  p.fetched = fetched_.load(std::memory_order_relaxed);
  p.cached = cached_.load(std::memory_order_relaxed);
  p.errors = errors_.load(std::memory_order_relaxed);
  p.yields = yields_.load(std::memory_order_relaxed);
  int64_t finished_ms = finished_ms_.load();
  p.finished = finished_ms >= 0;
  if (p.finished) {
    p.elapsed_ms = finished_ms;
  } else if (started_.load()) {
    p.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                         start_time_).count();
  }
  return p;
}

}  // namespace lazyfs::fs
