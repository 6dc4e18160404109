// TempDir: a directory removed, with everything in it, when it goes out of scope (a staging layout, a
// download or build directory, a sandbox's scratch volume).
//
// Thread safety: owned by one thread at a time.
#pragma once

#include <string>
#include <utility>

#include "common/result.h"

namespace lazyfs {

class TempDir {
 public:
  // mkdtemp of PARENT/PREFIXXXXXXX; PosixError when it fails.
  static Result<TempDir> Create(const std::string& parent, const std::string& prefix);
  // Takes over `path`, which the caller made (or is about to): removed with the TempDir.
  static TempDir Adopt(std::string path) { return TempDir(std::move(path)); }

  TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, std::string())) {}
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace lazyfs
