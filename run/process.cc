// Child processes and RemoveTree (see process.h).
//
// Thread safety: no shared state; SpawnSetup lives on one call's stack.
#include "run/process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <system_error>

#include "common/log.h"

namespace lazyfs::run {
namespace {

namespace stdfs = std::filesystem;

// posix_spawn's attributes and file actions, destroyed with the scope.
struct SpawnSetup {
  SpawnSetup() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
};

}  // namespace

ExitStatus DecodeWaitStatus(int status) {
  if (WIFSIGNALED(status)) return {128 + WTERMSIG(status), WTERMSIG(status)};
  return {WEXITSTATUS(status), 0};
}

Result<pid_t> Spawn(const std::vector<std::string>& args, bool quiet_stdout) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  SpawnSetup setup;
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&setup.attr, &none);
  posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGMASK);
  if (quiet_stdout) posix_spawn_file_actions_addopen(&setup.actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  if (int rc = ::posix_spawnp(&pid, argv[0], &setup.actions, &setup.attr, argv.data(), environ); rc != 0) {
    return PosixError(rc, "run " + args[0]);
  }
  return pid;
}

Result<ExitStatus> SpawnAndWait(const std::vector<std::string>& args, bool quiet_stdout) {
  pid_t pid = LAZYFS_TRY(Spawn(args, quiet_stdout));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return PosixError(errno, "waitpid " + args[0]);
  }
  return DecodeWaitStatus(status);
}

void RemoveTree(const std::string& root) {
  struct stat top {};
  if (::lstat(root.c_str(), &top) != 0) return;
  std::error_code ec;
  for (auto it = stdfs::recursive_directory_iterator(root, stdfs::directory_options::skip_permission_denied, ec);
       !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (st.st_dev != top.st_dev) {
      LogWarn("not removing {}: another file system is mounted there", it->path().string());
      it.disable_recursion_pending();
      return;
    }
  }
  stdfs::remove_all(root, ec);
  if (ec) LogWarn("remove {}: {}", root, ec.message());
}

}  // namespace lazyfs::run
