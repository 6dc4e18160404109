#include "common/fd.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

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

TEST_CASE("ReadFileInRoot: symlinks resolve inside the root; FIFOs, devices and big files are refused at once") {
  testing::TempDir dir;
  std::string root = dir.path + "/root";
  REQUIRE(MakeDirs(root + "/etc"));
  REQUIRE(MakeDirs(dir.path + "/host/etc"));
  REQUIRE(WriteFileAtomic(dir.path + "/host/etc/passwd", "host:x:0:0::/:/bin/sh\n"));
  REQUIRE(WriteFileAtomic(root + "/etc/real", "image:x:7:7::/:/bin/sh\n"));
  SUBCASE("a regular file") {
    CHECK(ReadFileInRoot(root, "/etc/real", 1 << 20).value() == "image:x:7:7::/:/bin/sh\n");
  }
  SUBCASE("an absolute symlink stays in the root") {
    REQUIRE(::symlink((dir.path + "/host/etc/passwd").c_str(), (root + "/etc/passwd").c_str()) == 0);
    auto read = ReadFileInRoot(root, "/etc/passwd", 1 << 20);
    REQUIRE_FALSE(read);  // <root><dir.path>/host/etc/passwd does not exist
    CHECK(read.error().code() == ErrorCode::kNotFound);
    REQUIRE(::unlink((root + "/etc/passwd").c_str()) == 0);
    REQUIRE(::symlink("/etc/real", (root + "/etc/passwd").c_str()) == 0);
    CHECK(ReadFileInRoot(root, "/etc/passwd", 1 << 20).value() == "image:x:7:7::/:/bin/sh\n");
  }
  SUBCASE("dot-dot stays in the root") {
    REQUIRE(::symlink("../../../../../../../host/etc/passwd", (root + "/etc/passwd").c_str()) == 0);
    CHECK(ReadFileInRoot(root, "etc/passwd", 1 << 20).error().code() == ErrorCode::kNotFound);
  }
  SUBCASE("a FIFO does not block") {
    REQUIRE(::mkfifo((root + "/etc/passwd").c_str(), 0644) == 0);
    auto read = ReadFileInRoot(root, "/etc/passwd", 1 << 20);
    REQUIRE_FALSE(read);
    CHECK(read.error().code() == ErrorCode::kInvalidArgument);
    CHECK(read.error().ToString().find("not a regular file") != std::string::npos);
  }
  SUBCASE("a device") {
    REQUIRE(::symlink("/dev/zero", (root + "/etc/passwd").c_str()) == 0);  // <root>/dev/zero: absent
    CHECK(ReadFileInRoot(root, "/etc/passwd", 1 << 20).error().code() == ErrorCode::kNotFound);
    CHECK(ReadFileInRoot("/", "/dev/zero", 1 << 20).error().code() == ErrorCode::kInvalidArgument);
  }
  SUBCASE("over the size cap") {
    CHECK(ReadFileInRoot(root, "/etc/real", 4).error().code() == ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace lazyfs
