// The mount table reader that keeps `lazyfs umount` to lazyfs mounts: escapes, optional fields, stacked
// mounts, and the live table of this process.
#include "tools/mount_table.h"

#include <doctest/doctest.h>

#include "tests/test_support.h"

namespace lazyfs::tools {
namespace {

constexpr std::string_view kMountinfo =
    "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw\n"
    "30 22 0:25 / /tmp/a\\040dir rw,relatime shared:9 master:3 - tmpfs tmp\\040fs rw\n"
    "31 30 0:26 / /tmp/a\\040dir rw,nosuid,nodev,relatime - fuse.lazyfs lazyfs ro,user_id=0\n"
    "40 1 0:27 / /mnt/img rw - fuse.lazyfs lazyfs ro\n"
    "41 40 0:28 / /mnt/img rw shared:1 - tmpfs none rw\n"
    "garbage line\n";

TEST_CASE("FindMount: the top mount at a path, with mountinfo's escapes undone") {
  std::optional<MountEntry> proc = FindMount(kMountinfo, "/proc");
  REQUIRE(proc);
  CHECK(proc->fstype == "proc");
  std::optional<MountEntry> spaced = FindMount(kMountinfo, "/tmp/a dir");
  REQUIRE(spaced);
  CHECK(spaced->fstype == kLazyfsFsType);  // stacked on the tmpfs: the later line is the top
  CHECK(spaced->source == "lazyfs");
  std::optional<MountEntry> covered = FindMount(kMountinfo, "/mnt/img");
  REQUIRE(covered);
  CHECK(covered->fstype == "tmpfs");  // a lazyfs mount hidden under a tmpfs is not what the path shows
  CHECK_FALSE(FindMount(kMountinfo, "/tmp"));
  CHECK_FALSE(FindMount(kMountinfo, "/tmp/a\\040dir"));
  CHECK_FALSE(FindMount("", "/"));
}

TEST_CASE("MountAt: /proc is a proc mount and a plain directory is no mount") {
  std::optional<MountEntry> proc = MountAt("/proc/");
  REQUIRE(proc);
  CHECK(proc->fstype == "proc");
  std::optional<MountEntry> dotdot = MountAt("/proc/self/..");
  REQUIRE(dotdot);
  CHECK(dotdot->mountpoint == "/proc");
  testing::TempDir dir;
  CHECK_FALSE(MountAt(dir.path));
}

}  // namespace
}  // namespace lazyfs::tools
