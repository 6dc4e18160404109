// A sandbox's writable layer and its container: the overlay (a read-only lower directory, usually the
// image's lazy mount, under a fresh upper/ and work/ in the sandbox's temp dir), crun running the bundle
// in it, and the OOM-kill count of its memory cgroup.
//
// Teardown is by destruction, in reverse order of construction: destroy the Container (crun delete -f)
// before the SandboxFiles it runs in (unmount the overlay, remove the temp dir).
//
// Thread safety: single-threaded. Container::Start makes the whole process a child subreaper, and Wait
// reaps every child that ends while it waits (crun's helpers are re-parented here).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "run/process.h"
#include "run/signal_watch.h"

namespace lazyfs::run {

// As `docker run`: the exit code when the runner failed, not the command.
inline constexpr int kRunnerFailed = 125;

class SandboxFiles {
 public:
  // Creates the temp dir (SandboxDir(id)) with upper/, work/ and merged/ and mounts the overlay on
  // merged/ (nosuid unless `allow_setuid`). PosixError from mkdir or mount(2); what was made is undone.
  static Result<std::unique_ptr<SandboxFiles>> Create(const std::string& id, const std::string& lower,
                                                      bool allow_setuid);
  ~SandboxFiles();
  SandboxFiles(const SandboxFiles&) = delete;
  SandboxFiles& operator=(const SandboxFiles&) = delete;

  const std::string& dir() const { return dir_; }
  std::string merged() const { return dir_ + "/merged"; }

 private:
  explicit SandboxFiles(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  bool mounted_ = false;
};

// A container run with `crun run --detach` (create and start in one crun process, as a native
// `crun run`); `crun delete -f` on destruction. The container's init is re-parented to this process (a
// child subreaper) when crun exits, even if it has exited already, so waitpid sees its real exit status.
class Container {
 public:
  // Runs the bundle in directory `bundle` (its config.json) as container `id`. Errors: PosixError from
  // prctl or spawning crun, kIo when crun fails, kInternal when it wrote no pid.
  static Result<std::unique_ptr<Container>> Start(const std::string& id, const std::string& bundle);
  ~Container();
  Container(const Container&) = delete;
  Container& operator=(const Container&) = delete;

  // Waits for the container to exit, forwarding SIGINT/SIGTERM/SIGHUP/SIGQUIT to its init; SIGKILL
  // follows `stop_timeout` seconds after the first forwarded signal. {kRunnerFailed, 0} when the
  // container's exit status is lost (it is not our child).
  ExitStatus Wait(SignalWatch& signals, double stop_timeout);

 private:
  explicit Container(std::string id) : id_(std::move(id)) {}
  std::string id_;
  pid_t pid_ = -1;
  bool created_ = false;
};

// Reads the OOM-kill count of the memory cgroup at `cgroups_path` (v1 memory.oom_control or v2
// memory.events); 0 when neither is readable. Call before `crun delete` removes the cgroup.
uint64_t OomKills(const std::string& cgroups_path);

}  // namespace lazyfs::run
