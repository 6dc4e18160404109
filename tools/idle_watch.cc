// IdleWatch (see idle_watch.h): an inotify watch on users/, a count under the image lock, an unmount when
// the idle time is up.
//
// Thread safety: Loop runs on thread_; the idle state is guarded by mu_ for Json().
#include "tools/idle_watch.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace lazyfs::tools {
namespace {

// How often a busy image lock is retried. Runs hold it for a few syscalls (attach, detach), so a retry
// rarely happens; it keeps the destructor from waiting behind a lock holder.
constexpr int kLockRetryMs = 10;

double Seconds(IdleWatch::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

Result<std::unique_ptr<IdleWatch>> IdleWatch::Start(run::ImageDir dir, std::string mountpoint, Clock::duration timeout) {
  std::unique_ptr<IdleWatch> watch(new IdleWatch(std::move(dir), std::move(mountpoint), timeout));
  watch->inotify_fd_ = UniqueFd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!watch->inotify_fd_.valid()) return PosixError(errno, "inotify_init1");
  // A sandbox leaving unlinks its file; one that dies closes it (it was opened for writing). Probes of
  // other processes open read-only (ImageDir::LiveUsers) and so wake nobody.
  uint32_t events = IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO;
  if (::inotify_add_watch(watch->inotify_fd_.get(), watch->dir_.users_dir().c_str(), events) < 0) {
    return PosixError(errno, "inotify_add_watch " + watch->dir_.users_dir());
  }
  watch->stop_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!watch->stop_fd_.valid()) return PosixError(errno, "eventfd");
  watch->thread_ = std::thread([w = watch.get()] { w->Loop(); });
  return watch;
}

IdleWatch::~IdleWatch() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_fd_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

bool IdleWatch::Stopping() const {
  pollfd stop{stop_fd_.get(), POLLIN, 0};
  return ::poll(&stop, 1, 0) > 0;
}

run::FileLock IdleWatch::LockUnlessStopped() {
  for (;;) {
    Result<run::FileLock> lock = run::FileLock::Acquire(dir_.lock_path(), true);
    if (!lock) {
      lock_failed_ = true;
      LogWarn("idle watch of {}: {}; the mount stays until unmounted", mountpoint_, lock.error().ToString());
      return run::FileLock();
    }
    if (lock->held()) return std::move(*lock);
    lock_waits_.fetch_add(1, std::memory_order_relaxed);
    pollfd stop{stop_fd_.get(), POLLIN, 0};
    if (::poll(&stop, 1, kLockRetryMs) > 0) return run::FileLock();
  }
}

bool IdleWatch::Check() {
  run::FileLock lock = LockUnlessStopped();
  if (!lock.held()) return lock_failed_ || Stopping();  // either way the watch ends
  size_t live = dir_.LiveUsers(true);
  Clock::time_point now = Clock::now();
  bool expired = false;
  {
    std::lock_guard<std::mutex> guard(mu_);
    users_ = live;
    if (live > 0) {
      idle_since_.reset();
    } else if (!idle_since_) {
      idle_since_ = now;
      LogDebug("{}: no sandbox uses the mount; unmounting in {} s unless one comes", mountpoint_, Seconds(timeout_));
    }
    expired = idle_since_ && now - *idle_since_ >= timeout_;
  }
  if (!expired) return false;
  // Still under the lock: a run that attaches now waits, then finds no mount and mounts afresh.
  LogInfo("{}: no sandbox for {} s: unmounting", mountpoint_, Seconds(timeout_));
  run::Unmount(mountpoint_);
  return true;
}

void IdleWatch::Loop() {
  bool check = true;  // count once at the start: the run that mounted us is usually a user already
  for (;;) {
    if (check && Check()) return;
    check = false;
    int timeout_ms = -1;
    {
      std::lock_guard<std::mutex> guard(mu_);
      if (idle_since_) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(*idle_since_ + timeout_ - Clock::now()).count();
        timeout_ms = static_cast<int>(std::clamp<int64_t>(left, 0, 24 * 3600 * 1000));
      }
    }
    pollfd fds[2] = {{inotify_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    int ready = ::poll(fds, 2, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      LogWarn("idle watch of {}: poll: {}; the mount stays until unmounted", mountpoint_, std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    if (fds[0].revents) {
      alignas(inotify_event) char events[4096];
      while (::read(inotify_fd_.get(), events, sizeof events) > 0) {
      }
    }
    check = true;  // a user came or went, or the idle time is up
  }
}

nlohmann::json IdleWatch::Json() const {
  std::lock_guard<std::mutex> guard(mu_);
  nlohmann::json out = {{"timeout_s", Seconds(timeout_)}, {"users", users_}, {"idle_s", nullptr},
                        {"unmounts_in_s", nullptr}, {"lock_waits", lock_waits_.load(std::memory_order_relaxed)}};
  if (idle_since_) {
    Clock::duration idle = Clock::now() - *idle_since_;
    out["idle_s"] = Seconds(idle);
    out["unmounts_in_s"] = std::max(0.0, Seconds(timeout_ - idle));
  }
  return out;
}

}  // namespace lazyfs::tools
