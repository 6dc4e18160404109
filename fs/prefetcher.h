// Prefetcher: warms the cache with the chunks a trace says an image's start-up reads, in first-access
// order, from a small pool of background threads (parallel requests), yielding to the foreground.
//
// Each worker takes the next window of the plan (up to kWindowChunks chunks or kWindowBytes compressed
// bytes) and fetches each layer's share of it with one ChunkReader::WarmGroup call, so neighbouring chunks
// travel in one request: one request per chunk made a start-up of thousands of small files pay thousands
// of round trips (HelloBench django on `wan`: 18 s with prefetch for 14 MB).
//
// PlanPrefetch resolves each trace record's path in the mounted tree (paths that no longer exist or are
// not regular files are skipped: a trace of an older image still helps with the files that stayed) and
// lists the chunks covering its range, each chunk once (by digest), in the order first needed.
//
// Yielding: before each chunk, every worker but the first waits while foreground reads are waiting on a
// fetch (ReadCounters::misses_in_flight), re-checking every millisecond, so prefetch adds little load in
// front of a read an application is blocked on. The first worker never yields: a start-up reads one file
// after another, so on a high-latency link some foreground fetch is nearly always in flight, and a pool
// that yielded entirely would stop exactly when it should be running ahead of the application
// (HelloBench on `wan`: prefetch then saved little over no prefetch). A chunk the foreground is already fetching is joined
// through ChunkReader's single flight, never fetched twice.
//
// Thread safety: Start once; progress() from any thread. The destructor stops the workers (each
// finishes the chunk it is on) and joins them, so destroy it before the ChunkReader.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fs/chunk_reader.h"
#include "fs/trace.h"
#include "fs/union_tree.h"

namespace lazyfs::fs {

struct PrefetchItem {
  uint32_t layer = 0;
  ChunkRef chunk;
};

struct PrefetchPlan {
  std::vector<PrefetchItem> items;
  uint64_t records = 0;          // trace records looked at
  uint64_t missing_paths = 0;    // records whose path is not a regular file in this tree
};

PrefetchPlan PlanPrefetch(const Trace& trace, const UnionTree& tree);
// The whole of each regular file at `paths` (relative to the root), in order; one record per path.
PrefetchPlan PlanPathsPrefetch(const std::vector<std::string>& paths, const UnionTree& tree);

struct PrefetchProgress {
  uint64_t planned = 0;   // chunks in the plan
  uint64_t done = 0;      // chunks handled (fetched, already cached or failed)
  uint64_t fetched = 0;   // chunks this prefetcher fetched
  uint64_t cached = 0;    // chunks already in the cache
  uint64_t errors = 0;
  uint64_t yields = 0;    // times a worker waited for foreground misses
  bool finished = false;  // every worker has exited
  int64_t elapsed_ms = 0; // from Start to finish (or to now)
};

class Prefetcher {
 public:
  Prefetcher(ChunkReader& reader, PrefetchPlan plan, unsigned threads);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  void Start();
  PrefetchProgress progress() const;

 private:
  static constexpr size_t kWindowChunks = 64;
  static constexpr uint64_t kWindowBytes = 1 << 20;

  void Worker(bool always_run);
  // The next window of plan items [begin, end); empty when the plan is done.
  std::pair<size_t, size_t> ClaimWindow();
  // Waits while the foreground has misses in flight; false when stopping.
  bool YieldToForeground(bool always_run);

  // Constant after construction.
  ChunkReader& reader_;
  const PrefetchPlan plan_;
  const unsigned threads_;
  std::chrono::steady_clock::time_point start_time_;  // set by Start before the workers exist
  std::atomic<bool> started_{false};

  std::mutex claim_mu_;
  size_t next_ = 0;  // guarded by claim_mu_
  std::atomic<uint64_t> done_{0}, fetched_{0}, cached_{0}, errors_{0}, yields_{0};
  std::atomic<unsigned> running_{0};
  std::atomic<int64_t> finished_ms_{-1};
  std::atomic<bool> stop_{false};

  std::mutex stop_mu_;  // only for the timed waits, so the destructor wakes workers at once
  std::condition_variable stop_cv_;

  std::vector<std::thread> workers_;
};

}  // namespace lazyfs::fs
