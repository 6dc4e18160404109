// UniqueFd owns a file descriptor; plus the few file helpers every module needs, returning Results.
//
// Thread safety: a UniqueFd is owned by one thread at a time; the helpers are reentrant.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"

namespace lazyfs {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

Result<UniqueFd> OpenFile(const std::string& path, int flags, int mode = 0644);
// Reads exactly `length` bytes at `offset`, or fails (a short file is kCorrupt: the caller expected bytes).
Result<std::string> PreadExact(int fd, uint64_t offset, uint64_t length, const std::string& what);
Result<uint64_t> FileSize(int fd, const std::string& what);
Result<std::string> ReadWholeFile(const std::string& path);
// Reads a kernel pseudo-file to its end (/proc, cgroupfs: they report size 0 or 4096, so ReadWholeFile's
// fstat size is useless).
Result<std::string> ReadPseudoFile(const std::string& path);
// Reads `path` as resolved inside the directory tree `root` (openat2 RESOLVE_IN_ROOT: absolute symlinks
// and ".." stay inside `root`), for files an untrusted tree (an image's rootfs) names. Never blocks on a
// FIFO or device: only a regular file of at most `max_bytes` is read, else kInvalidArgument naming it. A
// missing file is kNotFound.
Result<std::string> ReadFileInRoot(const std::string& root, const std::string& path, uint64_t max_bytes);
// Writes all of `data` to `fd` (retrying short writes and EINTR); `what` names the file in errors.
Status WriteAll(int fd, std::string_view data, const std::string& what);
// The directory for temporary files: $TMPDIR if set, else /var/tmp. Not /tmp: it is often a tmpfs (RAM,
// the default on many distributions), and what lazyfs stages there can be whole layers and images.
std::string TempRoot();
// Writes via a temporary file and rename, so readers never see a half-written file.
Status WriteFileAtomic(const std::string& path, std::string_view data);
// mkdir -p.
Status MakeDirs(const std::string& path, int mode = 0755);

}  // namespace lazyfs
