// `lazyfs mount` and `lazyfs umount`: mount an image lazily at a mountpoint, in the background by default.
//
// The daemon forks before it opens anything (LMDB environments and curl handles must not cross a fork),
// and the parent waits on a pipe until the child has loaded the image and mounted it, so `lazyfs mount`
// returns 0 only once the mount is live, and prints the child's error otherwise.
#pragma once

#include <string>

#include "common/log.h"

namespace lazyfs::tools {

struct MountCommandOptions {
  std::string ref;
  std::string mountpoint;
  bool foreground = false;
  std::string cache_dir;
  std::string log_file;          // empty: stderr in the foreground, kDefaultLogFile in the background
  bool allow_other = false;
  bool debug_fuse = false;
  std::string platform = "linux/amd64";
  unsigned threads = 16;
};

inline constexpr const char* kDefaultLogFile = "/var/log/lazyfs/lazyfs.log";

// Returns the process exit code.
int RunMount(const MountCommandOptions& options);
int RunUmount(const std::string& mountpoint);

}  // namespace lazyfs::tools
