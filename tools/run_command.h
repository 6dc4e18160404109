// `lazyfs run` and `lazyfs ps`: a lazy mount as the read-only lower layer of a kernel overlayfs, an OCI
// runtime bundle built from the image config, and crun running it.
//
// Host state, all under kRunDir (tmpfs, so a reboot forgets it) plus one temp dir per sandbox:
//   images/<manifest hex>/               the shared lazy mount of one image, its users and its config
//                                        (tools/image_dir.h has the layout and the flock protocol)
//   refs/<key>                           what an image reference resolved to, while its mount lives
//   sandboxes/<id>.lock, <id>.json       the sandbox's liveness lock and its record (for `lazyfs ps`)
//   /var/tmp/lazyfs-run.<id>/            overlay upper/, work/, merged/ and the bundle's config.json
// A record whose lock is free belongs to a `lazyfs run` that died: the next `lazyfs run` cleans it up
// (container, overlay, temp dir, image reference).
//
// The image mount outlives its last sandbox by --keep-mount seconds (default 60): the run that mounts it
// starts the daemon with --idle-timeout, and the daemon unmounts itself once idle (tools/idle_watch.h).
// A repeat start meanwhile skips the manifest fetch, the mount and the tree load: it finds the reference
// in refs/, the mount live, the config in the image directory. With --keep-mount 0 the last sandbox to
// leave unmounts the image at once. Mount settings (--cache-dir, --log-file, source flags, --trace,
// --prefetch, --keep-mount's idle timeout) apply only when this run mounts the image; a run that finds
// the image mounted uses the mount as it is.
//
// Thread safety: single-threaded command code; cross-process safety comes from the flocks above.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/result.h"
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
};

// What `lazyfs ps` shows of one sandbox.
struct SandboxRecord {
  std::string id;
  std::string image;            // the reference as given
  std::string manifest_digest;  // "sha256:..."
  int64_t pid = 0;              // the `lazyfs run` process
  std::vector<std::string> command;
  int64_t started = 0;          // unix seconds
  std::string dir;              // the sandbox's temp dir (overlay + bundle)

  nlohmann::json ToJson() const;
  static std::optional<SandboxRecord> FromJson(const nlohmann::json& j);
};

// Fixed, not TempRoot(): cleaning up after a dead run removes only directories under this prefix, which
// must not depend on the $TMPDIR of whichever run does the cleaning.
inline constexpr const char* kSandboxTmpBase = "/var/tmp";

std::string SandboxesDir();
// Records of running sandboxes (those whose lock is held), oldest first.
std::vector<SandboxRecord> ListLiveSandboxes();

// What an image reference names: its manifest and the image config.
struct ResolvedRef {
  Sha256Digest manifest;
  std::string config_json;
};
// Resolves an absolute image reference (registry or OCI layout access) with the run's source flags and
// cache. lazyfs-core resolves in process (tools/run_resolve.h); the `lazyfs` front end has no resolver:
// see kRunNeedsResolver.
using ImageResolver = Result<ResolvedRef> (*)(const std::string& ref, const RunCommandOptions& options);

// RunRun's result when it was given no resolver and no live mount serves the reference. It has then
// changed nothing but cleaning up after dead runs, and the caller hands the command to lazyfs-core.
inline constexpr int kRunNeedsResolver = -1;

// Returns the process exit code: the container's (128+signal when it was killed), or 125 when lazyfs
// itself failed before or around the container, or kRunNeedsResolver (see there).
int RunRun(const RunCommandOptions& options, ImageResolver resolve);

}  // namespace lazyfs::tools
