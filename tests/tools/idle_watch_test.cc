// Unit tests of run/image_dir (the users/ flock protocol) and tools/idle_watch (the idle clock of a
// `lazyfs run` image mount), on a temporary directory: no FUSE, no /run/lazyfs. The mountpoint is a plain
// directory, so the watcher's unmount at expiry is a quiet no-op; the integration tests check real mounts.
#include "tools/idle_watch.h"

#include <doctest/doctest.h>
#include <fcntl.h>

#include <chrono>
#include <functional>
#include <optional>
#include <thread>

#include "run/image_dir.h"
#include "tests/test_support.h"

namespace lazyfs::tools {
namespace {

using namespace std::chrono_literals;
using run::FileLock;
using run::ImageDir;

// Polls `condition` until it holds or `timeout` passes (the watcher reacts on its own thread).
bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5000ms) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

void Touch(const std::string& path) { REQUIRE(OpenFile(path, O_RDWR | O_CREAT, 0600)); }

// The user file of a run that already holds the image lock: created and flock'ed.
FileLock AttachUserWithoutLock(const ImageDir& dir, const std::string& id) {
  Result<FileLock> user = FileLock::Acquire(dir.user_path(id), true);
  REQUIRE(user);
  REQUIRE(user->held());
  return std::move(*user);
}

// A sandbox attaching as `lazyfs run` does: its user file is created and flock'ed under the image lock
// (else a prober could take the fresh file for a stale one and remove it).
FileLock AttachUser(const ImageDir& dir, const std::string& id) {
  Result<FileLock> image_lock = dir.Lock();
  REQUIRE(image_lock);
  return AttachUserWithoutLock(dir, id);
}

// A watch on a fresh image dir with no user, once its idle clock runs (a long timeout: it never expires).
struct IdleImage {
  testing::TempDir tmp;
  ImageDir dir{tmp.path + "/img"};
  std::unique_ptr<IdleWatch> watch;
  IdleImage() {
    REQUIRE(dir.Create());
    Result<std::unique_ptr<IdleWatch>> started = IdleWatch::Start(dir, dir.rootfs(), 60s);
    REQUIRE(started);
    watch = std::move(*started);
    CHECK(Eventually([&] { return !watch->Json()["idle_s"].is_null(); }));
  }
};

TEST_CASE("ImageDir: LiveUsers counts held user files and removes stale ones only when asked") {
  testing::TempDir tmp;
  ImageDir dir(tmp.path + "/img");
  REQUIRE(dir.Create());
  FileLock alive = AttachUser(dir, "alive");
  Touch(dir.user_path("dead"));  // a sandbox that died: its file stays, its flock went with it

  CHECK(dir.LiveUsers(false) == 1);
  CHECK(std::filesystem::exists(dir.user_path("dead")));
  CHECK(dir.LiveUsers(true) == 1);
  CHECK_FALSE(std::filesystem::exists(dir.user_path("dead")));
  CHECK(std::filesystem::exists(dir.user_path("alive")));
  alive.Release();
  CHECK(dir.LiveUsers(true) == 0);
}

TEST_CASE("IdleWatch: the idle clock runs only while no sandbox holds the mount, and expires") {
  testing::TempDir tmp;
  ImageDir dir(tmp.path + "/img");
  REQUIRE(dir.Create());
  FileLock first = AttachUser(dir, "first");

  Result<std::unique_ptr<IdleWatch>> watch = IdleWatch::Start(dir, dir.rootfs(), 300ms);
  REQUIRE(watch);
  IdleWatch& w = **watch;
  CHECK(w.Json()["timeout_s"].get<double>() == doctest::Approx(0.3));
  CHECK(Eventually([&] { return w.Json()["users"] == 1; }));
  CHECK(w.Json()["idle_s"].is_null());

  SUBCASE("a sandbox that leaves unlinks its file") {
    first.Release();
    ::unlink(dir.user_path("first").c_str());
  }
  SUBCASE("a sandbox that dies leaves a stale file") {
    first.Release();  // what the kernel does to a killed process's flock
  }
  CHECK(Eventually([&] { return w.Json()["users"] == 0 && !w.Json()["idle_s"].is_null(); }));

  // A new sandbox stops the clock however long it stays.
  FileLock second = AttachUser(dir, "second");
  CHECK(Eventually([&] { return w.Json()["users"] == 1 && w.Json()["idle_s"].is_null(); }));
  std::this_thread::sleep_for(400ms);  // longer than the timeout: nothing may expire meanwhile
  CHECK(w.Json()["idle_s"].is_null());

  second.Release();
  CHECK(Eventually([&] { return w.Json()["users"] == 0 && !w.Json()["idle_s"].is_null(); }));
  CHECK(Eventually([&] { return w.Json()["unmounts_in_s"] == 0.0; }));
  CHECK_FALSE(std::filesystem::exists(dir.user_path("second")));  // stale: removed under the lock
}

TEST_CASE("IdleWatch: a busy image lock is waited for, then the count goes on") {
  IdleImage image;
  ImageDir& dir = image.dir;
  IdleWatch& w = *image.watch;
  std::optional<FileLock> busy;
  {
    Result<FileLock> lock = dir.Lock();  // a run attaching holds the image lock
    REQUIRE(lock);
    busy = std::move(*lock);
  }
  FileLock user = AttachUserWithoutLock(dir, "arriving");
  CHECK(Eventually([&] { return w.Json()["lock_waits"].get<uint64_t>() > 0; }));
  CHECK(w.Json()["users"] == 0);  // nothing counted while the lock is held
  busy.reset();                   // the run is done attaching
  CHECK(Eventually([&] { return w.Json()["users"] == 1 && w.Json()["idle_s"].is_null(); }));
}

TEST_CASE("IdleWatch: stopping does not wait for a busy image lock") {
  IdleImage image;
  ImageDir& dir = image.dir;
  std::unique_ptr<IdleWatch>& watch = image.watch;
  Result<FileLock> lock = dir.Lock();  // flock conflicts between open files, even in one process
  REQUIRE(lock);
  Touch(dir.user_path("newcomer"));  // wakes the watcher, which now waits for the lock
  CHECK(Eventually([&] { return watch->Json()["lock_waits"].get<uint64_t>() > 0; }));  // in the wait loop
  auto started = std::chrono::steady_clock::now();
  watch.reset();
  CHECK(std::chrono::steady_clock::now() - started < 1s);
}

}  // namespace
}  // namespace lazyfs::tools
