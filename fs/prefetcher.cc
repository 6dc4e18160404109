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

PrefetchPlan PlanPathsPrefetch(const std::vector<std::string>& paths, const UnionTree& tree) {
  PrefetchPlan plan;
  std::unordered_set<Sha256Digest, Sha256DigestHash> seen;
  for (const std::string& path : paths) {
    ++plan.records;
    std::optional<uint64_t> ino = tree.Resolve(path);
    const Node* n = ino ? tree.Find(*ino) : nullptr;
    if (!n || n->type != EntryType::kRegular) {
      ++plan.missing_paths;
      continue;
    }
    for (const ChunkRef& c : n->chunks) {
      if (seen.insert(c.digest).second) plan.items.push_back({n->layer, c});
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

std::pair<size_t, size_t> Prefetcher::ClaimWindow() {
  std::lock_guard lock(claim_mu_);
  size_t begin = next_;
  uint64_t bytes = 0;
  while (next_ < plan_.items.size() && next_ - begin < kWindowChunks && bytes < kWindowBytes) {
    bytes += plan_.items[next_].chunk.blob_length;
    ++next_;
  }
  return {begin, next_};
}

void Prefetcher::Worker(bool always_run) {
  std::vector<const ChunkRef*> group;
  for (;;) {
    if (!YieldToForeground(always_run)) break;
    auto [begin, end] = ClaimWindow();
    if (begin == end) break;
    // The window's layers in first-access order, each layer's chunks in one group.
    std::vector<bool> taken(end - begin, false);
    for (size_t i = begin; i < end; ++i) {
      if (taken[i - begin]) continue;
      uint32_t layer = plan_.items[i].layer;
      group.clear();
      for (size_t j = i; j < end; ++j) {
        if (taken[j - begin] || plan_.items[j].layer != layer) continue;
        taken[j - begin] = true;
        group.push_back(&plan_.items[j].chunk);
      }
      ChunkReader::WarmOutcome outcome = reader_.WarmGroup(layer, group);
      if (outcome.first_error) {
        LogWarn("prefetch: {} of {} chunks failed: {}", outcome.failed, group.size(), outcome.first_error->ToString());
      }
      fetched_.fetch_add(outcome.fetched, std::memory_order_relaxed);
      cached_.fetch_add(outcome.cached, std::memory_order_relaxed);
      errors_.fetch_add(outcome.failed, std::memory_order_relaxed);
      done_.fetch_add(group.size(), std::memory_order_relaxed);
      if (stop_.load(std::memory_order_relaxed)) break;
    }
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
