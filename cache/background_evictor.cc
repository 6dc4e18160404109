#include "cache/background_evictor.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/fd.h"
#include "common/log.h"

namespace lazyfs::cache {

BackgroundEvictor::BackgroundEvictor(std::string cache_dir, std::function<Status()> evict)
    : cache_dir_(std::move(cache_dir)), evict_(std::move(evict)), thread_([this] { Loop(); }) {}

BackgroundEvictor::~BackgroundEvictor() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_cv_.notify_all();
  thread_.join();
}

std::string BackgroundEvictor::LockPath(const std::string& cache_dir) { return cache_dir + "/evict.lock"; }

void BackgroundEvictor::Wake() {
  {
    std::lock_guard lock(mu_);
    wanted_ = true;
  }
  wake_cv_.notify_one();
}

void BackgroundEvictor::Loop() {
  // Upkeep yields to the readers it serves: on a small machine the FUSE threads need the cores more.
  // (A per-thread nice value: Linux applies setpriority to the calling thread's id.)
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10) != 0) {
    LogDebug("cache {}: evictor keeps its priority: {}", cache_dir_, std::strerror(errno));
  }
  std::unique_lock lock(mu_);
  for (;;) {
    wake_cv_.wait(lock, [this] { return stop_ || wanted_; });
    if (stop_) return;
    wanted_ = false;
    lock.unlock();  // puts keep waking us while the pass runs; that only asks for one more pass
    if (!PassIfFirst()) LogDebug("cache {}: another process is evicting; leaving it the work", cache_dir_);
    lock.lock();
  }
}

bool BackgroundEvictor::PassIfFirst() {
  std::string path = LockPath(cache_dir_);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    // A read-only cache directory cannot be evicted by anyone here; say so once per pass.
    LogWarn("cache {}: cannot open {}: {}; not evicting", cache_dir_, path, std::strerror(errno));
    return true;
  }
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    return false;  // EWOULDBLOCK: another evictor runs
  }
  if (Status evicted = evict_(); !evicted) {
    LogWarn("cache {}: background eviction failed: {}", cache_dir_, evicted.error().ToString());
  }
  return true;  // closing the fd drops the flock
}

}  // namespace lazyfs::cache
