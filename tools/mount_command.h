// `lazyfs mount` and `lazyfs umount`: mount an image lazily at a mountpoint, in the background by default.
//
// The daemon forks before it opens anything (LMDB environments and curl handles must not cross a fork),
// and the parent waits on a pipe until the child has loaded the image and mounted it, so `lazyfs mount`
// returns 0 only once the mount is live, and prints the child's error otherwise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/log.h"
#include "tools/mount_observability.h"
#include "tools/source_flags.h"

namespace lazyfs::tools {

// One package layer of a `--packages` mount: the dist ("six==1.16.0") and the layer's reference.
struct PackagePart {
  std::string dist;
  std::string ref;  // oci:DIR:layer (the host's) or docker://REG/PREFIX/NAME:TAG
};

struct MountCommandOptions {
  std::string ref;  // empty: packages only
  std::string mountpoint;
  bool foreground = false;
  std::string cache_dir;
  uint64_t cache_size = 0;      // cap on cached chunk bytes; 0: the cap recorded in the cache, else 10 GiB
  std::string log_file;          // empty: stderr in the foreground, kDefaultLogFile in the background
  bool allow_other = false;
  bool debug_fuse = false;
  SourceFlags source;  // --platform, registries, mirrors, --read-timeout, --retries
  unsigned threads = 16;
  // Compressed bytes past a missed chunk to fetch with it (fs/blob_order.h); unset: kRemoteFetchAhead for
  // docker:// images, 0 for local ones (a local read costs no round trip to save).
  std::optional<uint64_t> fetch_ahead;
  MountObservabilityOptions observability;  // --trace, --prefetch
  // --idle-timeout with --image-dir (set by `lazyfs run --keep-mount`): unmount and exit once no sandbox
  // has used the image for this many seconds (tools/idle_watch.h). Unset: live until unmounted.
  std::optional<double> idle_timeout_seconds;
  std::string image_dir;
  // --packages LOCK | REQUIREMENT...: every dist of the lock at PACKAGES_AT/NAME==VERSION/files and all of
  // them merged at PACKAGES_AT/site, above the image when there is one. Requirements are resolved at
  // --index-url for the python3 of the image (or of --compile-in; tools/run_packages.h LockFileFor), and
  // `lock` is set to the lock file used. RunMount finds or builds the layers
  // (tools/package_layers.h: host, --package-registry, build with .pyc compiled in --compile-in, by default
  // the image) before the daemon starts, and hands the daemon `parts`.
  std::vector<std::string> packages;
  std::string index_url;
  std::string lock;  // set by RunMount
  std::string packages_at = "/packages";
  std::string package_registry;  // docker://REG/PREFIX
  std::string compile_in;        // empty: the image (none without one: layers without .pyc)
  std::vector<PackagePart> parts;
};

// About one bandwidth-delay product of a 100 Mbit/s, 20 ms link: fetching it with a miss costs about one
// more round trip's worth of time, and saves one for every neighbouring file the start-up reads next.
inline constexpr uint64_t kRemoteFetchAhead = 256 << 10;

inline constexpr const char* kDefaultLogFile = "/var/log/lazyfs/lazyfs.log";

// Returns the process exit code.
int RunMount(const MountCommandOptions& options);
int RunUmount(const std::string& mountpoint);

}  // namespace lazyfs::tools
