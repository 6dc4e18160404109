// The overlay, the crun container and its cgroup's OOM count (see container.h).
//
// Thread safety: single-threaded (see container.h).
#include "run/container.h"

#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>

#include "common/fd.h"
#include "common/log.h"
#include "run/image_dir.h"
#include "run/sandbox_state.h"

namespace lazyfs::run {

Result<std::unique_ptr<SandboxFiles>> SandboxFiles::Create(const std::string& id, const std::string& lower,
                                                           bool allow_setuid) {
  std::string dir = SandboxDir(id);
  if (::mkdir(dir.c_str(), 0700) != 0) return PosixError(errno, "mkdir " + dir);
  std::unique_ptr<SandboxFiles> files(new SandboxFiles(dir));
  for (const char* sub : {"upper", "work", "merged"}) {
    if (::mkdir((dir + "/" + sub).c_str(), 0755) != 0) return PosixError(errno, "mkdir " + dir + "/" + sub);
  }
  std::string data = "lowerdir=" + lower + ",upperdir=" + dir + "/upper,workdir=" + dir + "/work";
  unsigned long flags = allow_setuid ? 0 : MS_NOSUID;
  if (::mount("overlay", files->merged().c_str(), "overlay", flags, data.c_str()) != 0) {
    return PosixError(errno, "mount overlay on " + files->merged() + " (" + data + ")");
  }
  files->mounted_ = true;
  return files;
}

SandboxFiles::~SandboxFiles() {
  if (mounted_) Unmount(merged());
  RemoveTree(dir_);
}

Result<std::unique_ptr<Container>> Container::Start(const std::string& id, const std::string& bundle) {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return PosixError(errno, "prctl(PR_SET_CHILD_SUBREAPER)");
  std::unique_ptr<Container> c(new Container(id));
  std::string pid_file = bundle + "/container.pid";
  ExitStatus ran = LAZYFS_TRY(
      SpawnAndWait({"crun", "run", "--detach", "--bundle", bundle, "--pid-file", pid_file, id}, false));
  if (ran.code != 0) return IoError("crun run failed (exit " + std::to_string(ran.code) + ")");
  c->created_ = true;
  std::string pid_text = LAZYFS_TRY(ReadWholeFile(pid_file));
  c->pid_ = static_cast<pid_t>(std::atoi(pid_text.c_str()));
  if (c->pid_ <= 0) return Internal("crun wrote no container pid");
  return c;
}

Container::~Container() {
  if (!created_) return;
  Result<ExitStatus> deleted = SpawnAndWait({"crun", "delete", "-f", id_}, true);
  if (!deleted || deleted->code != 0) LogWarn("crun delete -f {} failed", id_);
}

ExitStatus Container::Wait(SignalWatch& signals, double stop_timeout) {
  constexpr int64_t kWaitPollMs = 500;
  using Clock = std::chrono::steady_clock;
  bool stopping = false;  // a signal was forwarded; SIGKILL at kill_at
  Clock::time_point kill_at{};
  for (;;) {
    int status = 0;
    pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) return DecodeWaitStatus(status);
    bool not_ours = done < 0 && errno == ECHILD;
    // Other orphans re-parented to us (crun's helpers) are reaped here; the container may be among them
    // if it exited since the waitpid above.
    pid_t other = 0;
    while ((other = ::waitpid(-1, &status, WNOHANG)) > 0) {
      if (other == pid_) return DecodeWaitStatus(status);
    }
    // `crun run --detach` may exit before the helper it forked to detach the container, whose child the
    // container stays until the helper exits. The helper is ours by then (we are a subreaper): its exit
    // wakes us with SIGCHLD and hands the container (or its zombie) to us. With no child left at all,
    // the container went where its exit status cannot be seen.
    if (not_ours && other < 0 && errno == ECHILD) {
      LogError("container {} (pid {}) is not a child of lazyfs run: its exit status is lost", id_, pid_);
      return {kRunnerFailed, 0};
    }
    // SIGCHLD wakes us; the period is for a caller with threads that do not block it (the kernel may hand
    // the signal to one of them), so an exit is seen within it even then.
    int timeout_ms = kWaitPollMs;
    if (stopping) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(kill_at - Clock::now()).count();
      if (left <= 0) {
        ::kill(pid_, SIGKILL);
        stopping = false;
        continue;
      }
      timeout_ms = static_cast<int>(std::min<int64_t>(left, kWaitPollMs));
    }
    pollfd pfd{signals.fd(), POLLIN, 0};
    ::poll(&pfd, 1, timeout_ms);
    while (int sig = signals.Next()) {
      if (sig == SIGCHLD) continue;
      LogDebug("forwarding signal {} to the container", sig);
      ::kill(pid_, sig);
      if (!stopping) {
        stopping = true;
        kill_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(stop_timeout * 1000));
      }
    }
  }
}

uint64_t OomKills(const std::string& cgroups_path) {
  for (const char* candidate : {"/sys/fs/cgroup/memory", "/sys/fs/cgroup"}) {
    for (const char* file : {"/memory.oom_control", "/memory.events"}) {
      Result<std::string> text = ReadPseudoFile(std::string(candidate) + cgroups_path + file);
      if (!text) continue;
      size_t pos = text->find("oom_kill ");
      if (pos == std::string::npos) continue;
      return std::strtoull(text->c_str() + pos + 9, nullptr, 10);
    }
  }
  return 0;
}

}  // namespace lazyfs::run
