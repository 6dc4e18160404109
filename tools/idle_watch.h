// IdleWatch: lets an image's mount daemon end itself once no sandbox has used it for a while
// (`lazyfs mount --idle-timeout SECONDS --image-dir DIR`, set by `lazyfs run --keep-mount`). The daemon
// owns the lifetime of the lingering mount, so nobody has to remember to clean it up.
//
// How it decides, race-free against a `lazyfs run` attaching at the same moment (image_dir.h):
//   - an inotify watch on DIR/users/ wakes it when a user file appears, goes, or is closed after writing
//     (a sandbox that exits or dies closes its flock'ed file);
//   - on each wake-up it takes DIR/lock and counts the live users: none starts the idle clock, any stops it;
//   - when the clock reaches the timeout it takes DIR/lock again, checks once more that there is no user,
//     and unmounts the mountpoint while still holding the lock. A run attaching waits for the lock and
//     then finds no mount (and mounts afresh), or got the lock first and is counted as a user.
// The unmount ends the FUSE loop, so the daemon exits down its ordinary path (trace, stats log).
//
// Thread safety: one watcher thread; Json() may be called from any thread (the control socket's).
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/fd.h"
#include "common/result.h"
#include "run/image_dir.h"

namespace lazyfs::tools {

class IdleWatch {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts watching `dir`'s users; `mountpoint` is unmounted after `timeout` without one. The directory
  // must exist (ImageDir::Create).
  static Result<std::unique_ptr<IdleWatch>> Start(run::ImageDir dir, std::string mountpoint, Clock::duration timeout);
  ~IdleWatch();  // stops and joins the thread (within a few milliseconds, even while a run holds the lock)
  IdleWatch(const IdleWatch&) = delete;
  IdleWatch& operator=(const IdleWatch&) = delete;

  // {"timeout_s": float, "users": int, "idle_s": float|null, "unmounts_in_s": float|null, "lock_waits": int}
  // as of the last count; idle_s is null while a sandbox uses the mount; lock_waits counts the times the
  // watcher found the image lock busy and waited (a run attaching or leaving held it).
  nlohmann::json Json() const;

 private:
  IdleWatch(run::ImageDir dir, std::string mountpoint, Clock::duration timeout)
      : dir_(std::move(dir)), mountpoint_(std::move(mountpoint)), timeout_(timeout) {}
  void Loop();
  // Takes the image lock, giving up (unheld lock) when asked to stop or when the lock file cannot be
  // opened (lock_failed_).
  run::FileLock LockUnlessStopped();
  // Counts users under the lock; unmounts when the idle time is up. Returns true when the watch is over:
  // unmounted, stopped, or unable to take the lock (then the mount stays until unmounted).
  bool Check();
  bool Stopping() const;

  // Constant after construction.
  const run::ImageDir dir_;
  const std::string mountpoint_;
  const Clock::duration timeout_;
  UniqueFd inotify_fd_;
  UniqueFd stop_fd_;  // eventfd: written by the destructor
  bool lock_failed_ = false;  // watcher thread only
  std::atomic<uint64_t> lock_waits_{0};  // written by the watcher, read by Json()

  mutable std::mutex mu_;
  size_t users_ = 0;                          // guarded by mu_
  std::optional<Clock::time_point> idle_since_;  // guarded by mu_; none while a user holds the mount

  std::thread thread_;  // last: started once the members above exist
};

}  // namespace lazyfs::tools
