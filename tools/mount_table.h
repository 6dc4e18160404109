// What is mounted where, from /proc/self/mountinfo: lets `lazyfs umount` and `lazyfs mount` tell a lazyfs
// mount from anything else (a tmpfs, /proc, another FUSE file system) before acting on a path.
//
// Thread safety: reentrant.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lazyfs::tools {

// The fstype lazyfs mounts carry (fuse_mount's subtype=lazyfs).
inline constexpr std::string_view kLazyfsFsType = "fuse.lazyfs";

struct MountEntry {
  std::string mountpoint;  // absolute, unescaped
  std::string fstype;      // e.g. "fuse.lazyfs", "tmpfs"
  std::string source;      // e.g. "lazyfs"
};

// The topmost mount whose mount point is `mountpoint` in `mountinfo` (the text of a mountinfo file), or
// nullopt when nothing is mounted exactly there. `mountpoint` must be absolute and normal.
std::optional<MountEntry> FindMount(std::string_view mountinfo, const std::string& mountpoint);

// The same for this process's mount table; `path` may be relative and its last component a dead FUSE
// mount (ENOTCONN): only its parent is resolved.
std::optional<MountEntry> MountAt(const std::string& path);

}  // namespace lazyfs::tools
