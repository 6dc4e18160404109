// BackgroundEvictor: keeps eviction off the read path. A put that takes the cache past its high-water mark
// only Wake()s this thread and returns; the thread then evicts down to the low-water mark. One evictor
// per host works at a time: each wake takes flock(LOCK_EX | LOCK_NB) on <cache>/evict.lock first, and a
// process that finds it held leaves the work to the holder (which evicts the bytes of every process, the
// cap being host-wide). The kernel drops the lock when its holder dies, so kill -9 strands nothing.
//
// Lifetime: the thread starts in the constructor and is joined by the destructor (a running eviction
// finishes first). `evict` must stay callable until then.
// Thread safety: Wake may be called from any thread, at any rate (wakes while a pass runs coalesce).
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "common/result.h"

namespace lazyfs::cache {

class BackgroundEvictor {
 public:
  // `evict` runs one pass (evicts down to the low-water mark) with the host lock held.
  BackgroundEvictor(std::string cache_dir, std::function<Status()> evict);
  ~BackgroundEvictor();
  BackgroundEvictor(const BackgroundEvictor&) = delete;
  BackgroundEvictor& operator=(const BackgroundEvictor&) = delete;

  void Wake();

  // The lock file every evictor of `cache_dir` takes.
  static std::string LockPath(const std::string& cache_dir);

 private:
  void Loop();
  // One pass if this process gets the host lock; false when another process holds it.
  bool PassIfFirst();

  const std::string cache_dir_;
  const std::function<Status()> evict_;
  std::mutex mu_;  // guards wanted_ and stop_ only; never held across a pass
  std::condition_variable wake_cv_;
  bool wanted_ = false;  // guarded by mu_
  bool stop_ = false;    // guarded by mu_
  std::thread thread_;   // started last in the constructor, joined first in the destructor
};

}  // namespace lazyfs::cache
