// FuseMount: one FUSE session mounted at a mountpoint and served by libfuse's multi-threaded loop.
// RAII: the destructor removes signal handlers, unmounts and destroys the session, in that order.
//
// Thread safety: create, Serve and destroy from one thread; the ops run on libfuse's worker threads.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "fs/filesystem.h"
#include "fs/fuse_ops.h"

namespace lazyfs::fs {

struct MountOptions {
  std::string mountpoint;
  bool allow_other = false;   // let other users see the mount (needs user_allow_other for non-root)
  bool debug = false;         // libfuse's request tracing
  unsigned max_threads = 16;  // FUSE worker threads; a miss blocks one while its chunk is fetched
};

class FuseMount {
 public:
  // Mounts `fs` (read-only, nodev, nosuid, default_permissions) and installs SIGINT/SIGTERM/SIGHUP
  // handlers that end Serve. `fs` must outlive the FuseMount.
  static Result<std::unique_ptr<FuseMount>> Mount(Filesystem& fs, const MountOptions& options);
  ~FuseMount();
  FuseMount(const FuseMount&) = delete;
  FuseMount& operator=(const FuseMount&) = delete;

  // Serves requests until the file system is unmounted or a signal asks us to stop.
  Status Serve();

 private:
  FuseMount() = default;

  FuseContext ctx_;
  MountOptions options_;
  fuse_session* session_ = nullptr;
  bool signals_installed_ = false;
  bool mounted_ = false;
};

// Routes libfuse's own log messages to the lazyfs log.
void RouteFuseLogs();

}  // namespace lazyfs::fs
