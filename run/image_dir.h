// The per-image directory that `lazyfs run` and an image's mount daemon share, and the flock protocol
// that makes attaching to, leaving, and ending the shared mount race-free:
//
//   /run/lazyfs/images/<manifest hex>/
//     rootfs/       the mountpoint of the image's lazy mount (one `lazyfs mount` daemon)
//     lock          flock'ed by whoever attaches a sandbox, detaches one, mounts the image, or unmounts it.
//                   Whoever holds it sees a stable picture: a mount is live or absent, users come or go
//                   only under it.
//     users/<id>    one file per sandbox using the mount, created and flock'ed under `lock`, and flock'ed by
//                   that sandbox while it lives (the flock dies with the process, so a killed `lazyfs run`
//                   cannot pin the mount forever)
//     config.json   the image's config blob, written by the run that resolved the manifest, so a run that
//                   finds the mount live needs neither the registry nor the layout
//   /run/lazyfs/refs/<key>   the manifest an image reference (+ platform) last resolved to; trusted only
//                   while that image's mount is live (then a repeat start skips the manifest fetch, as
//                   `docker run` uses a local image without asking the registry whether its tag moved)
//
// Lock order: an image's `lock` before any users/ file; never two images' locks at once.
//
// Thread safety: plain values and reentrant functions; cross-process safety comes from the flocks.
#pragma once

#include <optional>
#include <string>

#include "common/digest.h"
#include "common/fd.h"
#include "common/result.h"

namespace lazyfs::run {

// An flock(2)ed file. Locks belong to the open file description, so they vanish when the process dies.
class FileLock {
 public:
  FileLock() = default;
  // Opens (creating) and locks `path`. Blocking unless `try_only`; a busy try returns an unheld lock.
  static Result<FileLock> Acquire(const std::string& path, bool try_only);
  bool held() const { return fd_.valid(); }
  void Release() { fd_.Reset(); }

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

std::string ImagesDir();  // /run/lazyfs/images

class ImageDir {
 public:
  explicit ImageDir(std::string path) : path_(std::move(path)) {}
  static ImageDir ForManifest(const Sha256Digest& manifest) { return ImageDir(ImagesDir() + "/" + manifest.Hex()); }

  const std::string& path() const { return path_; }
  std::string rootfs() const { return path_ + "/rootfs"; }
  std::string lock_path() const { return path_ + "/lock"; }
  std::string users_dir() const { return path_ + "/users"; }
  std::string user_path(const std::string& id) const { return users_dir() + "/" + id; }
  std::string config_path() const { return path_ + "/config.json"; }

  // Creates the directory with rootfs/ and users/ (idempotent).
  Status Create() const;
  // Takes `lock`, blocking.
  Result<FileLock> Lock() const { return FileLock::Acquire(lock_path(), false); }
  // The number of users/ files whose flock is held. With `remove_stale`, unlinks the others (their
  // sandbox died). Call with `lock` held: a probe briefly holds a stale file's flock, and two probers
  // would each take the other's probe for a live user. Probes open read-only, so they raise no
  // IN_CLOSE_WRITE for an inotify watcher of users/ (IdleWatch) to wake on.
  size_t LiveUsers(bool remove_stale) const;

 private:
  std::string path_;
};

// Whether `path` is a mountpoint; true also for a FUSE mount whose daemon died (ENOTCONN), so the caller
// can replace it.
bool IsMountPoint(const std::string& path);
// Whether a FUSE daemon serves `path`: statfs(2) reaches the daemon (a dead one gives ENOTCONN) and
// reports a FUSE file system. One round trip to the daemon, no control-socket request.
bool IsLiveMount(const std::string& path);
// Unmounts `path`, lazily (MNT_DETACH) when it is busy. Quiet when it is not mounted; logs other failures.
void Unmount(const std::string& path);

// The reference cache (see above). `ref` should be absolute (AbsoluteRef); the key includes `platform`.
std::optional<Sha256Digest> LookupRef(const std::string& ref, const std::string& platform);
Status RememberRef(const std::string& ref, const std::string& platform, const Sha256Digest& manifest);

}  // namespace lazyfs::run
