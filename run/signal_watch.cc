// The runner's signalfd (see signal_watch.h).
//
// Thread safety: as the header: one thread.
#include "run/signal_watch.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

namespace lazyfs::run {

Result<SignalWatch> SignalWatch::Start() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : kForwardedSignals) sigaddset(&set, s);
  sigaddset(&set, SIGCHLD);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return PosixError(errno, "sigprocmask");
  UniqueFd fd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd.valid()) return PosixError(errno, "signalfd");
  return SignalWatch(std::move(fd));
}

int SignalWatch::Next() {
  signalfd_siginfo info{};
  if (::read(fd_.get(), &info, sizeof info) != sizeof info) return 0;
  return static_cast<int>(info.ssi_signo);
}

}  // namespace lazyfs::run
