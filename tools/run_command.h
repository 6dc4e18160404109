// `lazyfs run`: a lazy mount as the read-only lower layer of a kernel overlayfs, an OCI runtime bundle
// built from the image config, and crun running it. The runner itself is the library in run/; this is
// its command line and the order in which the pieces are set up and torn down.
//
// Host state, all under kRunDir (tmpfs, so a reboot forgets it) plus one temp dir per sandbox:
//   images/<manifest hex>/               the shared lazy mount of one image, its users and its config
//                                        (run/image_dir.h has the layout and the flock protocol)
//   refs/<key>                           what an image reference resolved to, while its mount lives
//   sandboxes/<id>.lock, <id>.json       the sandbox's liveness lock and its record (for `lazyfs ps`;
//                                        run/sandbox_state.h)
//   /var/tmp/lazyfs-run.<id>/            overlay upper/, work/, merged/ and the bundle's config.json
// A record whose lock is free belongs to a `lazyfs run` that died: the next `lazyfs run` cleans it up
// (container, overlay, temp dir, image reference).
//
// The image mount outlives its last sandbox by --keep-mount seconds (default 60): the run that mounts it
// starts the daemon with --idle-timeout, and the daemon unmounts itself once idle (tools/idle_watch.h).
// A repeat start meanwhile skips the manifest fetch, the mount and the tree load: it finds the reference
// in refs/, the mount live, the config in the image directory (run/image_use.h). With --keep-mount 0 the
// last sandbox to leave unmounts the image at once. Mount settings (--cache-dir, --log-file, source flags,
// --trace, --prefetch, --keep-mount's idle timeout) apply only when this run mounts the image; a run that
// finds the image mounted uses the mount as it is.
//
// Thread safety: single-threaded command code; cross-process safety comes from the flocks above.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "run/image_use.h"
#include "tools/source_flags.h"

namespace lazyfs::tools {

struct RunCommandOptions {
  std::string ref;
  std::vector<std::string> command;  // after `--`; empty: the image's Cmd
  std::string memory;                // "256M"; empty: no limit
  double cpus = 0;                   // 0: no limit
  int64_t pids = 0;                  // 0: no limit
  std::vector<std::string> env;
  std::vector<std::string> volumes;
  std::string network = "none";      // none | host
  std::string workdir;
  std::string user;
  // For a new mount only (see above):
  std::string cache_dir;
  std::string log_file;              // the mount daemon's; empty: its default
  SourceFlags source;                // --platform, --insecure-registry, --ca-file, --mirror, ...
  std::string trace_file;            // --trace: record the mount's reads
  std::string prefetch;              // --prefetch TRACE|auto
  double keep_mount_seconds = 60;    // the mount's idle timeout; 0: the last sandbox unmounts it
  bool init = true;                  // run tini as PID 1 when installed
  double stop_timeout = 10;          // seconds from a forwarded SIGTERM/SIGINT to SIGKILL
  bool allow_setuid = false;         // setuid files raise privileges (Docker's default); see RunOptions
  // --packages LOCK | REQUIREMENT...: lazyfs-core rewrites them (tools/run_packages.h) into env, a volume
  // and the mount variant below before RunRun; the front end hands such a run to lazyfs-core.
  std::vector<std::string> packages;
  std::string index_url;             // where requirements are resolved (lazyfs pkg resolve --index-url)
  std::string package_registry;      // docker://REG/PREFIX holding package layers
  std::string mount_variant;         // run::ImageMountOptions::variant and the two below
  std::function<Sha256Digest(const Sha256Digest&)> mount_variant_key;
  std::vector<std::string> mount_extra_args;
};

// Resolves an absolute image reference (registry or OCI layout access) with the run's source flags and
// cache. lazyfs-core resolves in process (tools/run_resolve.h); the `lazyfs` front end has no resolver:
// see kRunNeedsResolver.
using ImageResolver = Result<run::ResolvedRef> (*)(const std::string& ref, const RunCommandOptions& options);

// RunRun's result when it was given no resolver and no live mount serves the reference. It has then
// changed nothing but cleaning up after dead runs, and the caller hands the command to lazyfs-core.
inline constexpr int kRunNeedsResolver = -1;

// Returns the process exit code: the container's (128+signal when it was killed), or 125 when lazyfs
// itself failed before or around the container, or kRunNeedsResolver (see there).
int RunRun(const RunCommandOptions& options, ImageResolver resolve);

// `text` with a relative oci: path made absolute (a mount daemon resolves it after chdir("/")).
// kInvalidArgument for a reference that does not parse.
Result<std::string> AbsoluteRef(const std::string& text);

// Rewrites a run with --packages into one RunRun can do (tools/run_packages.h); null in the front end.
using RunPackagesPreparer = Result<RunCommandOptions> (*)(const RunCommandOptions& options);

}  // namespace lazyfs::tools
