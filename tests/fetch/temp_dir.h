// A temporary directory for one test, removed with everything in it when the test ends.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace lazyfs::fetch::testing {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/lazyfs-fetch-test-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    path = made ? made : "/tmp/lazyfs-fetch-test-mkdtemp-failed";
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace lazyfs::fetch::testing
