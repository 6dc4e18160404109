#include "common/fd.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>

#include <filesystem>

#include "tests/test_support.h"

namespace lazyfs {
namespace {

using testing::TempDir;

TEST_CASE("WriteFileAtomic then ReadWholeFile round-trips") {
  TempDir dir;
  std::string file = dir.path + "/a/b/c.txt";
  REQUIRE(MakeDirs(dir.path + "/a/b"));
  REQUIRE(WriteFileAtomic(file, "hello world"));
  auto text = ReadWholeFile(file);
  REQUIRE(text);
  CHECK(*text == "hello world");
}

TEST_CASE("PreadExact: a short file is a corrupt-input error, not a short read") {
  TempDir dir;
  std::string file = dir.path + "/f";
  REQUIRE(WriteFileAtomic(file, "0123456789"));
  auto fd = OpenFile(file, O_RDONLY);
  REQUIRE(fd);
  auto mid = PreadExact(fd->get(), 2, 3, file);
  REQUIRE(mid);
  CHECK(*mid == "234");
  auto past = PreadExact(fd->get(), 8, 5, file);
  REQUIRE_FALSE(past);
  CHECK(past.error().code() == ErrorCode::kCorrupt);
}

TEST_CASE("OpenFile: a missing file is kNotFound") {
  auto fd = OpenFile("/nonexistent/lazyfs/file", O_RDONLY);
  REQUIRE_FALSE(fd);
  CHECK(fd.error().code() == ErrorCode::kNotFound);
}

}  // namespace
}  // namespace lazyfs
