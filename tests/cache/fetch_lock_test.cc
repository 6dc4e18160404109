// InflightLock: host-wide single flight between processes (fork), kill -9 safety, stale-file sweep.
#include "cache/fetch_lock.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/test_support.h"

namespace lazyfs::cache {
namespace {

using namespace std::chrono_literals;

using testing::TempDir;

Sha256Digest Digest(std::string_view s) { return Sha256Of(s); }

int WaitChild(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (!WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

TEST_CASE("InflightLock: a second process waits for the holder and gets the lock once it is released") {
  TempDir dir;
  // Fork first: a child must not inherit the parent's lock file descriptor (flock belongs to the open file
  // description, so an inherited copy would keep the lock alive after the parent releases it).
  int to_child[2];
  int to_parent[2];
  REQUIRE(::pipe(to_child) == 0);
  REQUIRE(::pipe(to_parent) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(to_child[1]);
    ::close(to_parent[0]);
    char go = 0;
    if (::read(to_child[0], &go, 1) != 1) ::_exit(9);
    // While the parent holds it: a bounded wait that runs out, having waited.
    auto first = InflightLock::Acquire(dir.path, Digest("a"), 50ms);
    if (!first || first->held() || !first->waited()) ::_exit(10);
    // Another digest is independent.
    auto other = InflightLock::Acquire(dir.path, Digest("b"), 50ms);
    if (!other || !other->held()) ::_exit(11);
    if (::write(to_parent[1], "x", 1) != 1) ::_exit(12);
    auto second = InflightLock::Acquire(dir.path, Digest("a"), 30s);
    ::_exit(second && second->held() ? 0 : 13);
  }
  ::close(to_child[0]);
  ::close(to_parent[1]);
  {
    auto held = InflightLock::Acquire(dir.path, Digest("a"), 1s);
    REQUIRE(held);
    REQUIRE(held->held());
    CHECK_FALSE(held->waited());
    REQUIRE(::write(to_child[1], "g", 1) == 1);
    char byte = 0;
    REQUIRE(::read(to_parent[0], &byte, 1) == 1);
  }  // releases "a"
  ::close(to_child[1]);
  ::close(to_parent[0]);
  CHECK(WaitChild(pid) == 0);
}

TEST_CASE("InflightLock: a holder killed with SIGKILL releases the lock; its stale file is swept") {
  TempDir dir;
  int to_parent[2];
  REQUIRE(::pipe(to_parent) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(to_parent[0]);
    auto lock = InflightLock::Acquire(dir.path, Digest("k"), 1s);
    if (!lock || !lock->held()) ::_exit(10);
    if (::write(to_parent[1], "x", 1) != 1) ::_exit(11);
    for (;;) ::pause();
  }
  ::close(to_parent[1]);
  char byte = 0;
  REQUIRE(::read(to_parent[0], &byte, 1) == 1);
  ::close(to_parent[0]);
  // Held by the live child: the sweep leaves it.
  auto swept = InflightLock::SweepStale(dir.path);
  REQUIRE(swept);
  CHECK(*swept == 0);
  REQUIRE(::kill(pid, SIGKILL) == 0);
  CHECK(WaitChild(pid) == -1);
  std::string path = InflightDir(dir.path) + "/" + Digest("k").Hex();
  CHECK(std::filesystem::exists(path));  // a kill leaves the file, but not the lock
  SUBCASE("the next fetch takes it over") {
    auto lock = InflightLock::Acquire(dir.path, Digest("k"), 1s);
    REQUIRE(lock);
    CHECK(lock->held());
    CHECK_FALSE(lock->waited());
  }
  SUBCASE("gc sweeps it") {
    swept = InflightLock::SweepStale(dir.path);
    REQUIRE(swept);
    CHECK(*swept == 1);
    CHECK_FALSE(std::filesystem::exists(path));
  }
}

TEST_CASE("InflightLock: release unlinks the lock file") {
  TempDir dir;
  std::string path = InflightDir(dir.path) + "/" + Digest("r").Hex();
  {
    auto lock = InflightLock::Acquire(dir.path, Digest("r"), 1s);
    REQUIRE(lock);
    REQUIRE(lock->held());
    CHECK(std::filesystem::exists(path));
  }
  CHECK_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace lazyfs::cache
