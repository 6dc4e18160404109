// The signals a runner forwards to its container (SIGINT, SIGTERM, SIGHUP, SIGQUIT), plus SIGCHLD, read
// from a signalfd. Start blocks them first, which also means a SIGTERM during set-up waits until the RAII
// objects can clean up; they stay blocked for the rest of the process (and across exec, where the
// `lazyfs` front end hands over to lazyfs-core with them pending).
//
// Thread safety: one SignalWatch per process, used from the thread that started it (sigprocmask blocks
// for the calling thread only).
#pragma once

#include <csignal>

#include "common/fd.h"
#include "common/result.h"

namespace lazyfs::run {

inline constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

class SignalWatch {
 public:
  // Blocks the signals and opens the signalfd. PosixError from sigprocmask or signalfd.
  static Result<SignalWatch> Start();
  // The next pending signal, 0 if none (non-blocking).
  int Next();
  // The signalfd, readable while a signal is pending (for poll).
  int fd() const { return fd_.get(); }

 private:
  explicit SignalWatch(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace lazyfs::run
