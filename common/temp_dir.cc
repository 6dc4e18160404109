#include "common/temp_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <filesystem>

namespace lazyfs {

Result<TempDir> TempDir::Create(const std::string& parent, const std::string& prefix) {
  std::string pattern = parent + "/" + prefix + "XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return PosixError(errno, "mkdtemp " + pattern);
  return TempDir(std::move(pattern));
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace lazyfs
