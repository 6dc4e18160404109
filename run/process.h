// Child processes of the runner: posix_spawn with no signal blocked, waiting for the child, decoding its
// wait status, and the rm -rf that sandbox teardown uses.
//
// The runner blocks the signals it forwards (run/signal_watch.h); Spawn clears the mask in the child, so
// crun and the mount daemon start with the default one whatever the caller blocks.
//
// Thread safety: reentrant functions with no shared state. SpawnAndWait reaps only the child it started;
// a caller that reaps with waitpid(-1) (Container::Wait) must not run concurrently with it.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.h"

namespace lazyfs::run {

// How a child ended, as a shell reports it.
struct ExitStatus {
  int code = 0;    // the exit code, or 128+signal when killed
  int signal = 0;  // nonzero when killed
};

// Decodes a waitpid(2) status.
ExitStatus DecodeWaitStatus(int status);

// Starts `args` (searched in PATH) with no signal blocked. posix_spawn vforks, so the start costs no copy
// of this process's page tables, and a failed exec is reported here (PosixError). stdout goes to
// /dev/null when `quiet_stdout`; stderr is always ours (crun's and the mount daemon's errors reach the
// user). The caller reaps the child.
Result<pid_t> Spawn(const std::vector<std::string>& args, bool quiet_stdout);

// Spawn, then waits for that child (EINTR retried). PosixError when it cannot be started or waited for;
// a child that fails is a value (its ExitStatus), not an error.
Result<ExitStatus> SpawnAndWait(const std::vector<std::string>& args, bool quiet_stdout);

// rm -rf that never descends into another file system: a mount left below must not lose its files (then
// nothing is removed, with a warning). Failures are logged, not returned: it runs in teardown.
void RemoveTree(const std::string& root);

}  // namespace lazyfs::run
