// The control socket of a mount daemon: a Unix stream socket under kRunDir/mounts/, named after the
// mountpoint, through which `lazyfs stats` (and later other commands) ask a running mount for its state.
// One request line in, one reply (JSON) out, then the connection closes. Root-only by file mode.
//
// Thread safety: ControlServer runs its own accept thread; the handler is called on it, one request at a
// time, and must be thread-safe against the mount's other threads (it reads atomics).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace lazyfs::run {

inline constexpr const char* kRunDir = "/run/lazyfs";

// The socket path for a mountpoint (made absolute and canonical by the caller).
std::string ControlSocketPath(const std::string& mountpoint);
// Every control socket present (for `stats --all`).
std::vector<std::string> ListControlSockets();

class ControlServer {
 public:
  using Handler = std::function<std::string(const std::string& request)>;
  static Result<std::unique_ptr<ControlServer>> Start(const std::string& path, Handler handler);
  ~ControlServer();  // stops the thread and removes the socket file, unless another server has replaced it

 private:
  ControlServer() = default;
  void Loop();

  std::string path_;
  ino_t inode_ = 0;  // of the socket file we bound
  Handler handler_;
  UniqueFd listen_fd_;
  UniqueFd wake_fd_;  // eventfd that ends Loop
  std::thread thread_;
};

// Sends one request line and returns the whole reply. kNotFound if nothing listens there.
Result<std::string> ControlRequest(const std::string& path, const std::string& request);

}  // namespace lazyfs::run
