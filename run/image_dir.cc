// The shared image directory and its flock protocol (see image_dir.h).
//
// Thread safety: no shared state; every function is reentrant.
#include "run/image_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/log.h"
#include "run/control_socket.h"

namespace lazyfs::run {
namespace {

namespace stdfs = std::filesystem;

constexpr long kFuseSuperMagic = 0x65735546;

std::string RefsDir() { return std::string(kRunDir) + "/refs"; }

// The file records the reference and platform beside the manifest, and a lookup compares them, so the
// name is only an index: XXH3 (no OpenSSL start-up on the warm path), collisions harmless.
std::string RefRecord(const std::string& ref, const std::string& platform) { return ref + "\n" + platform + "\n"; }

std::string RefPath(const std::string& ref, const std::string& platform) {
  return fmt::format("{}/{:016x}", RefsDir(), Xxh3(RefRecord(ref, platform)));
}

}  // namespace

Result<FileLock> FileLock::Acquire(const std::string& path, bool try_only) {
  UniqueFd fd = LAZYFS_TRY(OpenFile(path, O_RDWR | O_CREAT, 0600));
  while (::flock(fd.get(), LOCK_EX | (try_only ? LOCK_NB : 0)) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return FileLock();
    return PosixError(errno, "flock " + path);
  }
  return FileLock(std::move(fd));
}

std::string ImagesDir() { return std::string(kRunDir) + "/images"; }

Status ImageDir::Create() const {
  LAZYFS_TRY(MakeDirs(users_dir(), 0700));
  return MakeDirs(rootfs(), 0755);
}

size_t ImageDir::LiveUsers(bool remove_stale) const {
  size_t live = 0;
  std::error_code ec;
  for (const auto& entry : stdfs::directory_iterator(users_dir(), ec)) {
    UniqueFd fd(::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) continue;  // gone meanwhile
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      ++live;  // EWOULDBLOCK: its sandbox holds it (other errors: count it rather than cut a user off)
    } else if (remove_stale) {
      ::unlink(entry.path().c_str());
    }
  }
  return live;
}

bool IsMountPoint(const std::string& path) {
  struct stat self {}, parent {};
  if (::lstat(path.c_str(), &self) != 0) return errno == ENOTCONN;  // a FUSE mount whose daemon died
  if (::lstat((stdfs::path(path) / "..").c_str(), &parent) != 0) return false;
  return self.st_dev != parent.st_dev;
}

bool IsLiveMount(const std::string& path) {
  struct statfs st {};
  return ::statfs(path.c_str(), &st) == 0 && st.f_type == kFuseSuperMagic;
}

void Unmount(const std::string& path) {
  if (::umount2(path.c_str(), 0) == 0 || errno == EINVAL || errno == ENOENT) return;
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
    LogWarn("umount {}: {}", path, std::strerror(errno));
  }
}

std::optional<Sha256Digest> LookupRef(const std::string& ref, const std::string& platform) {
  Result<std::string> text = ReadWholeFile(RefPath(ref, platform));
  if (!text) return std::nullopt;
  size_t nl = text->find('\n');
  if (nl == std::string::npos || std::string_view(*text).substr(nl + 1) != RefRecord(ref, platform)) return std::nullopt;
  return Sha256Digest::Parse(std::string_view(*text).substr(0, nl));
}

Status RememberRef(const std::string& ref, const std::string& platform, const Sha256Digest& manifest) {
  LAZYFS_TRY(MakeDirs(RefsDir(), 0700));
  return WriteFileAtomic(RefPath(ref, platform), manifest.ToString() + "\n" + RefRecord(ref, platform));
}

}  // namespace lazyfs::run
