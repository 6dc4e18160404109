// Filesystem (the core under the FUSE adapter) over the chunk fixture: reads clamp to the file, non-files
// are refused, and a read that just failed for one reader fails again at once for it (the kernel's retry of
// a failed readahead) while other readers fetch again; lookup, readlink, open and readdir answer with the
// error codes the FUSE adapter maps to errno in one place. RecentFailures' window and ranges on their own.
#include <doctest/doctest.h>
#include <fcntl.h>

#include "fs/filesystem.h"
#include "fs/recent_failures.h"
#include "tests/fs/chunk_reader_fixture.h"

namespace lazyfs::fs {
using namespace test_fixture;

namespace {

uint64_t InodeOf(const UnionTree& tree, const char* path) { return *tree.Resolve(path); }

}  // namespace

TEST_CASE("Filesystem: reads are clamped to the file; directories are refused") {
  Fixture f(2);
  Filesystem fs("test", f.tree, *f.reader);
  uint64_t ino = InodeOf(f.tree, "f01");
  std::string buf(4096, '\0');
  CHECK(fs.Read(ino, 0, buf.size(), buf.data()).value() == Content(1).size());
  CHECK(buf.substr(0, Content(1).size()) == Content(1));
  CHECK(fs.Read(ino, Content(1).size(), buf.size(), buf.data()).value() == 0);
  Result<size_t> dir = fs.Read(1, 0, buf.size(), buf.data());
  REQUIRE_FALSE(dir);
  CHECK(dir.error().code() == ErrorCode::kInvalidArgument);
  CHECK(fs.Read(9999, 0, buf.size(), buf.data()).error().code() == ErrorCode::kNotFound);
}

TEST_CASE("Filesystem: a failed read fails again at once for the same reader, and is fetched for another") {
  Fixture f(2);
  Filesystem fs("test", f.tree, *f.reader);
  uint64_t ino = InodeOf(f.tree, "f00");
  std::string buf(Content(0).size(), '\0');
  f.blobs.FailWith(Error(ErrorCode::kTimeout, "registry silent until the deadline", true));

  Result<size_t> first = fs.Read(ino, 0, buf.size(), buf.data(), /*reader=*/7);
  REQUIRE_FALSE(first);
  CHECK(f.blobs.calls() == 1);

  SUBCASE("the same reader, a page inside the failed range (the kernel's retry): no request") {
    Result<size_t> retry = fs.Read(ino, 0, 100, buf.data(), 7);
    REQUIRE_FALSE(retry);
    CHECK(retry.error().code() == ErrorCode::kTimeout);
    CHECK(retry.error().message().find("not fetched again") != std::string::npos);
    CHECK(f.blobs.calls() == 1);
  }
  SUBCASE("another reader after the registry came back: fetched and served") {
    f.blobs.FailWith(std::nullopt);
    CHECK(fs.Read(ino, 0, buf.size(), buf.data(), 8).value() == buf.size());
    CHECK(buf == Content(0));
    CHECK(f.blobs.calls() == 2);
  }
  SUBCASE("unknown reader (0) is never answered from memory") {
    REQUIRE_FALSE(fs.Read(ino, 0, buf.size(), buf.data(), 0));
    CHECK(f.blobs.calls() == 2);
  }
  SUBCASE("the same reader, another file: fetched") {
    REQUIRE_FALSE(fs.Read(InodeOf(f.tree, "f01"), 0, 10, buf.data(), 7));
    CHECK(f.blobs.calls() == 2);
  }
}

TEST_CASE("RecentFailures: a failure covers reads inside its range by its reader, within the window only") {
  using namespace std::chrono_literals;
  RecentFailures recent(2000ms);
  auto t0 = RecentFailures::Clock::time_point{} + 100s;
  recent.Remember(7, 3, 4096, 8192, Error(ErrorCode::kTimeout, "silent registry", true), t0);
  CHECK(recent.Find(7, 3, 4096, 4096, t0 + 5ms).has_value());
  CHECK(recent.Find(7, 3, 8192, 4096, t0 + 1999ms).has_value());
  CHECK_FALSE(recent.Find(7, 3, 4096, 4096, t0 + 2000ms).has_value());  // the window is over
  recent.Remember(7, 3, 4096, 8192, Error(ErrorCode::kTimeout, "silent registry", true), t0);
  CHECK_FALSE(recent.Find(8, 3, 4096, 4096, t0));         // another reader
  CHECK_FALSE(recent.Find(7, 4, 4096, 4096, t0));         // another inode
  CHECK_FALSE(recent.Find(7, 3, 0, 4096, t0));            // starts before the failed range
  CHECK_FALSE(recent.Find(7, 3, 8192, 8192, t0));         // ends past it
  std::optional<Error> repeat = recent.Find(7, 3, 4096, 8192, t0 + 10ms);
  REQUIRE(repeat);
  CHECK(repeat->code() == ErrorCode::kTimeout);
  CHECK(repeat->message().find("silent registry") != std::string::npos);
}

TEST_CASE("RecentFailures: holds at most kMaxEntries, dropping the oldest") {
  using namespace std::chrono_literals;
  RecentFailures recent(60'000ms);
  auto t0 = RecentFailures::Clock::time_point{} + 100s;
  for (uint64_t i = 0; i <= RecentFailures::kMaxEntries; ++i) recent.Remember(i + 1, 1, 0, 10, IoError("x"), t0);
  CHECK_FALSE(recent.Find(1, 1, 0, 10, t0));  // the first was dropped
  CHECK(recent.Find(2, 1, 0, 10, t0));
  CHECK(recent.Find(RecentFailures::kMaxEntries + 1, 1, 0, 10, t0));
}

}  // namespace lazyfs::fs

namespace lazyfs::fs {

TEST_CASE("Filesystem: lookup, readlink, open and readdir answer with codes the adapter maps once") {
  Fixture f(2);
  Filesystem fs("test", f.tree, *f.reader);
  uint64_t file = *f.tree.Resolve("f00");
  Filesystem::Entry entry = fs.Lookup(1, "f00").value();
  CHECK(entry.ino == file);
  CHECK(S_ISREG(entry.attr.st_mode));
  CHECK(fs.Lookup(1, "missing").error().code() == ErrorCode::kNotFound);
  CHECK(fs.Lookup(file, "x").error().code() == ErrorCode::kNotADirectory);
  CHECK(fs.Readlink(file).error().code() == ErrorCode::kInvalidArgument);
  CHECK(fs.OpenFile(file, O_RDONLY));
  CHECK(fs.OpenFile(file, O_WRONLY).error().code() == ErrorCode::kReadOnly);
  CHECK(fs.OpenFile(file, O_RDONLY | O_TRUNC).error().code() == ErrorCode::kReadOnly);
  CHECK(fs.OpenFile(1, O_RDONLY).error().code() == ErrorCode::kIsADirectory);
  CHECK(fs.OpenDir(file).error().code() == ErrorCode::kNotADirectory);
  CHECK(fs.GetXattr(file, "user.x").error().code() == ErrorCode::kNoAttribute);
  CHECK(fs.GetXattr(9999, "user.x").error().code() == ErrorCode::kNotFound);
  CHECK(ToErrno(fs.GetXattr(file, "user.x").error()) == ENODATA);

  std::vector<std::pair<std::string, uint64_t>> seen;
  REQUIRE(fs.ReadDir(1, 0, [&](const char* name, uint64_t, uint64_t next) {
    seen.emplace_back(name, next);
    return true;
  }));
  REQUIRE(seen.size() == 4);
  CHECK(seen[0] == std::make_pair(std::string("."), uint64_t{1}));
  CHECK(seen[1] == std::make_pair(std::string(".."), uint64_t{2}));
  CHECK(seen[3].second == 4);
  // From an offset, and stopping when the callback says the buffer is full.
  seen.clear();
  REQUIRE(fs.ReadDir(1, 2, [&](const char* name, uint64_t, uint64_t next) {
    seen.emplace_back(name, next);
    return false;
  }));
  CHECK(seen.size() == 1);
  CHECK(seen[0].second == 3);
  CHECK(fs.ReadDir(file, 0, [](const char*, uint64_t, uint64_t) { return true; }).error().code() ==
        ErrorCode::kNotADirectory);
}

}  // namespace lazyfs::fs
