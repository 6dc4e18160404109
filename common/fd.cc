#include "common/fd.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>

namespace lazyfs {

Result<UniqueFd> OpenFile(const std::string& path, int flags, int mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return PosixError(errno, "open " + path);
  return UniqueFd(fd);
}

Result<std::string> PreadExact(int fd, uint64_t offset, uint64_t length, const std::string& what) {
  std::string out(length, '\0');
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError(errno, "read " + what);
    }
    if (n == 0) {
      return Corrupt("read " + what + ": unexpected end of file at offset " + std::to_string(offset + done) +
                     " (wanted " + std::to_string(length) + " bytes at " + std::to_string(offset) + ")");
    }
    done += static_cast<uint64_t>(n);
  }
  return out;
}

Result<uint64_t> FileSize(int fd, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return PosixError(errno, "stat " + what);
  return static_cast<uint64_t>(st.st_size);
}

Result<std::string> ReadWholeFile(const std::string& path) {
  UniqueFd fd = LAZYFS_TRY(OpenFile(path, O_RDONLY));
  uint64_t size = LAZYFS_TRY(FileSize(fd.get(), path));
  return PreadExact(fd.get(), 0, size, path);
}

Result<std::string> ReadPseudoFile(const std::string& path) {
  UniqueFd fd = LAZYFS_TRY(OpenFile(path, O_RDONLY));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(errno, "read " + path);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

Result<std::string> ReadFileInRoot(const std::string& root, const std::string& path, uint64_t max_bytes) {
  std::string what = path + " in " + root;
  UniqueFd dir = LAZYFS_TRY(OpenFile(root, O_RDONLY | O_DIRECTORY | O_PATH));
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever (and glibc 2.36 has
  // no openat2 wrapper).
  open_how how{};
  how.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string relative = path;
  while (!relative.empty() && relative.front() == '/') relative.erase(0, 1);
  int fd = static_cast<int>(::syscall(SYS_openat2, dir.get(), relative.c_str(), &how, sizeof how));
  if (fd < 0) return PosixError(errno, "open " + what);
  UniqueFd file(fd);
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) return PosixError(errno, "stat " + what);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(what + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return InvalidArgument(fmt::format("{} is {} bytes, more than the {} this file may have", what, st.st_size,
                                       max_bytes));
  }
  return PreadExact(file.get(), 0, static_cast<uint64_t>(st.st_size), what);
}

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(errno, "write " + what);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok();
}

std::string TempRoot() {
  const char* dir = std::getenv("TMPDIR");
  return dir && *dir ? dir : "/var/tmp";
}

Status WriteFileAtomic(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    UniqueFd fd = LAZYFS_TRY(OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    if (Status written = WriteAll(fd.get(), data, tmp); !written) {
      ::unlink(tmp.c_str());
      return written;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Error e = PosixError(errno, "rename " + tmp + " -> " + path);
    ::unlink(tmp.c_str());
    return e;
  }
  return Ok();
}

Status MakeDirs(const std::string& path, int mode) {
  if (path.empty()) return Ok();
  for (size_t pos = 1;; ++pos) {
    pos = path.find('/', pos);
    std::string prefix = pos == std::string::npos ? path : path.substr(0, pos);
    if (::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) return PosixError(errno, "mkdir " + prefix);
    if (pos == std::string::npos) break;
  }
  return Ok();
}

}  // namespace lazyfs
