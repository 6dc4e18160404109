// Helpers shared by the unit tests: a temporary directory removed with its contents, and deterministic
// pseudo-random bytes (incompressible, different per seed).
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace lazyfs::testing {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/lazyfs-test-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    path = made ? made : "/tmp/lazyfs-test-mkdtemp-failed";
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

inline std::string PseudoRandomBytes(size_t size, uint64_t seed) {
  std::string out(size, '\0');
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL;
  for (size_t i = 0; i < size; ++i) {  // xorshift64
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x & 0xff);
  }
  return out;
}

}  // namespace lazyfs::testing
