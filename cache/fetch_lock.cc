#include "cache/fetch_lock.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <thread>

namespace lazyfs::cache {
namespace {

// Backoff while another process holds the lock: short at first (a chunk fetch from a nearby registry or a
// local layout takes about a millisecond), capped so a waiter notices the release within a few ms.
constexpr auto kFirstPoll = std::chrono::microseconds(200);
constexpr auto kMaxPoll = std::chrono::milliseconds(5);

bool SameFile(int fd, const std::string& path) {
  struct stat held {};
  struct stat named {};
  if (::fstat(fd, &held) != 0 || ::stat(path.c_str(), &named) != 0) return false;
  return held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

}  // namespace

std::string InflightDir(const std::string& cache_dir) { return cache_dir + "/inflight"; }

Result<InflightLock> InflightLock::Acquire(const std::string& cache_dir, const Sha256Digest& digest,
                                           std::chrono::milliseconds timeout) {
  std::string dir = InflightDir(cache_dir);
  std::string path = dir + "/" + digest.Hex();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto poll = std::chrono::duration_cast<std::chrono::microseconds>(kFirstPoll);
  bool waited = false;
  for (;;) {
    int raw = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (raw < 0 && errno == ENOENT) {
      LAZYFS_TRY(MakeDirs(dir));
      raw = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    }
    if (raw < 0) return PosixError(errno, "open fetch lock " + path);
    UniqueFd fd(raw);
    for (;;) {
      if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) break;
      if (errno == EINTR) continue;
      if (errno != EWOULDBLOCK) return PosixError(errno, "lock " + path);
      waited = true;
      if (std::chrono::steady_clock::now() >= deadline) return InflightLock(UniqueFd(), path, true);
      // Sleeping here is the bounded wait described in the header (flock cannot time out by itself).
      std::this_thread::sleep_for(poll);
      poll = std::min(poll * 2, std::chrono::duration_cast<std::chrono::microseconds>(kMaxPoll));
    }
    // The holder before us may have unlinked the file while we waited on its inode: such a lock guards
    // nothing, so open the path again (the other side of the protocol in the header).
    if (SameFile(fd.get(), path)) return InflightLock(std::move(fd), std::move(path), waited);
    waited = true;
  }
}

InflightLock& InflightLock::operator=(InflightLock&& other) noexcept {
  if (this != &other) {
    Release();
    fd_ = std::move(other.fd_);
    path_ = std::move(other.path_);
    waited_ = other.waited_;
  }
  return *this;
}

void InflightLock::Release() {
  if (!fd_.valid()) return;
  // Unlink while still holding the lock, so nobody can take a valid lock on this inode afterwards; then
  // closing drops the flock. A failed unlink only leaves a stale file for the next fetch or gc.
  ::unlink(path_.c_str());
  fd_.Reset();
}

Result<uint64_t> InflightLock::SweepStale(const std::string& cache_dir) {
  std::string dir = InflightDir(cache_dir);
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
  if (!d) {
    if (errno == ENOENT) return uint64_t{0};
    return PosixError(errno, "open " + dir);
  }
  uint64_t removed = 0;
  while (dirent* e = ::readdir(d.get())) {
    if (e->d_name[0] == '.') continue;
    std::string path = dir + "/" + e->d_name;
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd.valid()) continue;
    // Held by a live fetch: leave it. Free: same unlink-under-lock as a leader's release.
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
    if (SameFile(fd.get(), path) && ::unlink(path.c_str()) == 0) ++removed;
  }
  return removed;
}

}  // namespace lazyfs::cache
