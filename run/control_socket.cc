#include "run/control_socket.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/digest.h"
#include "common/log.h"

namespace lazyfs::run {
namespace {

std::string MountsDir() { return std::string(kRunDir) + "/mounts"; }

Result<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return InvalidArgument("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

std::string ControlSocketPath(const std::string& mountpoint) {
  // Hashed, because mountpoints may be longer than a socket path may be. XXH3, not SHA-256: nothing here
  // needs a trust anchor, and the lazyfs front end (tools/lazyfs.cc) stays without libcrypto.
  return fmt::format("{}/{:016x}.sock", MountsDir(), Xxh3(mountpoint));
}

std::vector<std::string> ListControlSockets() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(MountsDir(), ec)) {
    if (entry.path().extension() == ".sock") out.push_back(entry.path().string());
  }
  return out;
}

Result<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& path, Handler handler) {
  LAZYFS_TRY(MakeDirs(MountsDir(), 0700));
  std::unique_ptr<ControlServer> server(new ControlServer());
  server->path_ = path;
  server->handler_ = std::move(handler);
  server->listen_fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!server->listen_fd_.valid()) return PosixError(errno, "socket");
  sockaddr_un addr = LAZYFS_TRY(Address(path));
  ::unlink(path.c_str());  // a stale socket of a daemon that died
  if (::bind(server->listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return PosixError(errno, "bind " + path);
  }
  ::chmod(path.c_str(), 0600);
  // Remembered so the destructor removes only its own socket: by then a new daemon may serve the same
  // mountpoint (an image mount of `lazyfs run` ends and is mounted again) and have bound the path anew.
  struct stat bound {};
  if (::lstat(path.c_str(), &bound) == 0) server->inode_ = bound.st_ino;
  if (::listen(server->listen_fd_.get(), 16) != 0) return PosixError(errno, "listen " + path);
  server->wake_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC));
  if (!server->wake_fd_.valid()) return PosixError(errno, "eventfd");
  server->thread_ = std::thread([s = server.get()] { s->Loop(); });
  return server;
}

ControlServer::~ControlServer() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  struct stat now {};
  if (::lstat(path_.c_str(), &now) == 0 && now.st_ino == inode_) ::unlink(path_.c_str());
}

void ControlServer::Loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      LogError("control socket {}: poll: {}", path_, std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;
    // A client that never sends its line must not wedge the daemon's control thread.
    timeval timeout{2, 0};
    ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    std::string request;
    char buf[512];
    while (request.find('\n') == std::string::npos && request.size() < 4096) {
      ssize_t n = ::read(conn.get(), buf, sizeof buf);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    if (auto nl = request.find('\n'); nl != std::string::npos) request.resize(nl);
    std::string reply = handler_(request);
    size_t done = 0;
    while (done < reply.size()) {
      ssize_t n = ::write(conn.get(), reply.data() + done, reply.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
  }
}

Result<std::string> ControlRequest(const std::string& path, const std::string& request) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return PosixError(errno, "socket");
  sockaddr_un addr = LAZYFS_TRY(Address(path));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Error(ErrorCode::kNotFound, "no lazyfs mount answers at " + path + ": " + std::strerror(errno));
  }
  timeval timeout{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string line = request + "\n";
  if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    return PosixError(errno, "write " + path);
  }
  std::string reply;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(errno, "read " + path);
    if (n == 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  return reply;
}

}  // namespace lazyfs::run
