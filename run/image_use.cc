// Attaching to and releasing the shared image mount (see image_use.h).
//
// Thread safety: single-threaded per ImageUse; cross-process coordination through the image directory's
// flocks, taken in the order run/image_dir.h gives.
#include "run/image_use.h"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/fd.h"
#include "common/log.h"
#include "fetch/image_ref.h"
#include "run/control_socket.h"
#include "run/process.h"

namespace lazyfs::run {
namespace {

using nlohmann::json;

constexpr int kDaemonExitTimeoutMs = 10000;

// The reference cache's platform part: a variant is another mount of the same reference.
std::string RefKey(const ImageMountOptions& options) {
  return options.variant.empty() ? options.platform : options.platform + "\n" + options.variant;
}

}  // namespace

std::string PinnedRef(const std::string& ref, const Sha256Digest& manifest) {
  Result<fetch::ImageRef> parsed = fetch::ImageRef::Parse(ref);
  if (!parsed || parsed->transport != fetch::ImageRef::Transport::kDocker) return ref;
  parsed->tag.clear();
  parsed->digest = manifest;
  return parsed->ToString();
}

std::optional<json> MountInfo(const std::string& rootfs) {
  Result<std::string> reply = ControlRequest(ControlSocketPath(rootfs), "info");
  if (!reply) return std::nullopt;
  json info = json::parse(*reply, nullptr, false);
  if (!info.is_object() || !info.contains("pid")) return std::nullopt;
  return info;
}

void ReleaseImageUser(const ImageDir& dir, const std::string& id, bool keep) {
  UniqueFd daemon;  // pidfd of the daemon of a mount we unmount
  {
    Result<FileLock> lock = dir.Lock();
    if (!lock) {
      LogWarn("image {}: {}", dir.path(), lock.error().ToString());
      return;
    }
    ::unlink(dir.user_path(id).c_str());
    if (dir.LiveUsers(true) > 0) return;
    std::string rootfs = dir.rootfs();
    std::optional<json> info = MountInfo(rootfs);
    if (keep && info && (*info)["idle"].is_object()) {
      LogDebug("{} stays mounted for {} s without a sandbox", rootfs, (*info)["idle"].value("timeout_s", 0.0));
      return;
    }
    if (info && info->value("pid", 0) > 0) {
      daemon = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, info->value("pid", 0), 0)));
    }
    Unmount(rootfs);
  }
  // Waited for with the lock released (the daemon's idle watch may take it on its way out), bounded. When
  // `lazyfs run` returns, the daemon has finished: its --trace file is complete.
  if (daemon.valid()) {
    pollfd exited{daemon.get(), POLLIN, 0};
    if (::poll(&exited, 1, kDaemonExitTimeoutMs) == 0) LogWarn("the mount daemon of {} has not exited", dir.rootfs());
  }
}

Result<std::unique_ptr<ImageUse>> ImageUse::Acquire(const std::string& ref, const std::string& id,
                                                    const ImageMountOptions& options, const ResolveFn& resolve) {
  const std::string platform = RefKey(options);
  if (std::optional<Sha256Digest> known = LookupRef(ref, platform)) {
    std::unique_ptr<ImageUse> use = LAZYFS_TRY(Attach(*known, std::nullopt, id, options));
    if (use) {
      LogDebug("reusing the mount of {} at {}", ref, use->rootfs());
      return use;
    }
  }
  if (!resolve) return std::unique_ptr<ImageUse>();  // the caller hands over to lazyfs-core
  ResolvedRef image = LAZYFS_TRY(resolve(ref));
  if (!options.variant.empty() && !options.variant_key) return Internal("a mount variant without its key");
  Sha256Digest key = options.variant.empty() ? image.manifest : options.variant_key(image.manifest);
  std::unique_ptr<ImageUse> use = LAZYFS_TRY(Attach(key, image.config_json, id, options, ref, image.manifest));
  if (Status remembered = RememberRef(ref, platform, key); !remembered) {
    LogWarn("{}", remembered.error().ToString());  // the next run resolves the image again
  }
  return use;
}

ImageUse::~ImageUse() {
  if (!attached_) return;
  user_lock_.Release();
  ReleaseImageUser(dir_, id_, keep_);
}

Result<std::unique_ptr<ImageUse>> ImageUse::Attach(const Sha256Digest& manifest,
                                                   const std::optional<std::string>& config_json,
                                                   const std::string& id, const ImageMountOptions& options,
                                                   const std::string& ref, const Sha256Digest& image_manifest) {
  ImageDir dir = ImageDir::ForManifest(manifest);
  if (config_json) {
    LAZYFS_TRY(dir.Create());
    LAZYFS_TRY(WriteFileAtomic(dir.config_path(), *config_json));
  }
  // Made before the lock: on an early return after attaching, the lock goes first, then ~ImageUse takes it.
  std::unique_ptr<ImageUse> use(new ImageUse(dir, id, manifest, options.keep_mount_seconds > 0));
  Result<FileLock> lock = dir.Lock();
  if (!lock && !config_json) return std::unique_ptr<ImageUse>();  // no such image directory (any more)
  if (!lock) return std::move(lock).error();
  std::string rootfs = dir.rootfs();
  bool live = IsLiveMount(rootfs);
  if (config_json) {
    use->config_json_ = *config_json;
  } else {
    Result<std::string> stored = ReadWholeFile(dir.config_path());
    if (!live || !stored) return std::unique_ptr<ImageUse>();
    use->config_json_ = std::move(*stored);
  }
  // The user file is locked before the image lock is dropped, so no one sees it stale.
  use->user_lock_ = LAZYFS_TRY(FileLock::Acquire(dir.user_path(id), true));
  if (!use->user_lock_.held()) return Internal("sandbox id " + id + " already in use");
  use->attached_ = true;
  if (live) {
    if (!options.trace_file.empty() || !options.prefetch.empty()) {
      LogWarn("{} is mounted already: --trace and --prefetch apply only to a new mount", rootfs);
    }
    return use;
  }
  if (IsMountPoint(rootfs)) {
    LogWarn("image mount {} does not answer: replacing it", rootfs);
    Unmount(rootfs);
  }
  std::vector<std::string> args = {"/proc/self/exe", "--log-level", LogLevelName(GetLogLevel()), "mount", "--allow-other",
                                   "--cache-dir", options.cache_dir};
  args.insert(args.end(), options.source_args.begin(), options.source_args.end());
  if (!options.log_file.empty()) args.insert(args.end(), {"--log-file", options.log_file});
  if (!options.trace_file.empty()) args.insert(args.end(), {"--trace", options.trace_file});
  if (!options.prefetch.empty()) args.insert(args.end(), {"--prefetch", options.prefetch});
  if (options.keep_mount_seconds > 0) {
    args.insert(args.end(), {"--idle-timeout", fmt::format("{}", options.keep_mount_seconds), "--image-dir", dir.path()});
  }
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  args.insert(args.end(), {PinnedRef(ref, image_manifest), rootfs});
  ExitStatus st = LAZYFS_TRY(SpawnAndWait(args, true));
  if (st.code != 0) return IoError("lazyfs mount " + ref + " failed (exit " + std::to_string(st.code) + ")");
  LogDebug("mounted {} at {}", ref, rootfs);
  return use;
}

}  // namespace lazyfs::run
