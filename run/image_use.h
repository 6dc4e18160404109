// One sandbox's use of the shared lazy mount of its image (the per-host mount under
// /run/lazyfs/images/<manifest hex>/rootfs, whose directory layout and flock protocol run/image_dir.h
// describes): attaching to a live mount, or mounting the image by starting `lazyfs mount` (this
// executable, /proc/self/exe) when none serves it, and releasing it again.
//
// The mount outlives its last user by its daemon's idle timeout when mounted with keep_mount_seconds > 0
// (the daemon unmounts itself: tools/idle_watch.h); with 0, the last user to leave unmounts it at once.
//
// Thread safety: single-threaded use per ImageUse; cross-process safety comes from the image directory's
// flocks (its `lock` is held only inside Acquire and ReleaseImageUser, never across a sandbox's life).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/result.h"
#include "run/image_dir.h"

namespace lazyfs::run {

// What an image reference names: its manifest and the image config.
struct ResolvedRef {
  Sha256Digest manifest;
  std::string config_json;
};

// Resolves an absolute image reference (registry or OCI layout access). Empty: this process cannot
// resolve (the `lazyfs` front end), and only live mounts found through the reference cache are used.
using ResolveFn = std::function<Result<ResolvedRef>(const std::string& ref)>;

// How to mount an image when no live mount serves it; ignored (but for `platform`) when one does.
struct ImageMountOptions {
  std::string platform;                  // part of the reference cache's key (run/image_dir.h LookupRef)
  std::string cache_dir;                 // the daemon's --cache-dir
  std::string log_file;                  // the daemon's --log-file; empty: its default
  std::vector<std::string> source_args;  // image-source flags handed to `lazyfs mount` as they are
  std::string trace_file;                // --trace: record the mount's reads
  std::string prefetch;                  // --prefetch TRACE|auto
  double keep_mount_seconds = 60;        // the mount's idle timeout; 0: the last user unmounts it
  // A variant of the image's mount (`lazyfs run --packages`: the image with a lock's package layers in
  // its tree): mounted and shared under its own key, variant_key(image manifest), with `extra_args` handed
  // to `lazyfs mount`; `variant` names it in the reference cache. The key is a function so that this
  // library does not hash (the `lazyfs` front end loads no libcrypto: it never mounts a variant). Empty:
  // the plain image, keyed by its manifest.
  std::string variant;
  std::function<Sha256Digest(const Sha256Digest& manifest)> variant_key;
  std::vector<std::string> extra_args;
};

// `ref` with a docker:// tag replaced by `manifest` (other references as they are): what a mount daemon or
// a sandbox of the image this run resolved gets, so it sees that image even when the tag moves meanwhile.
std::string PinnedRef(const std::string& ref, const Sha256Digest& manifest);

// What the mount daemon of `rootfs` says about itself ("info" on its control socket: pid, manifest,
// idle state), or nullopt when none answers.
std::optional<nlohmann::json> MountInfo(const std::string& rootfs);

// Drops sandbox `id`'s reference to the image mount in `dir`. When no live user is left, the mount stays
// for its daemon's idle timeout if `keep` and the daemon has one, else it is unmounted now, and its daemon
// waited for (bounded: 10 s) so that its --trace file is complete on return. Users whose flock is free
// died without detaching: their files go too. Failures are logged: it runs in teardown.
void ReleaseImageUser(const ImageDir& dir, const std::string& id, bool keep);

// One sandbox's reference to the lazy mount of its image, mounting it when no live mount serves it.
// Destruction releases it (ReleaseImageUser).
class ImageUse {
 public:
  // Attaches sandbox `id` to the image `ref` (absolute) names. A reference resolved before whose mount is
  // still live is used as it is: no registry or layout access. Otherwise the image is resolved, and
  // mounted unless a live mount of its manifest exists. Without `resolve`, only a live mount found
  // through the reference is attached to, and nullptr returned otherwise. Errors: the resolver's, the
  // image directory's I/O, or kIo when `lazyfs mount` fails.
  static Result<std::unique_ptr<ImageUse>> Acquire(const std::string& ref, const std::string& id,
                                                   const ImageMountOptions& options, const ResolveFn& resolve);

  ~ImageUse();
  ImageUse(const ImageUse&) = delete;
  ImageUse& operator=(const ImageUse&) = delete;

  std::string rootfs() const { return dir_.rootfs(); }
  // The mount's key (MountKey: the image manifest, or the variant's key).
  const Sha256Digest& manifest() const { return manifest_; }
  const std::string& config_json() const { return config_json_; }

 private:
  ImageUse(ImageDir dir, std::string id, Sha256Digest manifest, bool keep)
      : dir_(std::move(dir)), id_(std::move(id)), manifest_(manifest), keep_(keep) {}

  // Attaches to the mount of `manifest`. With `config_json` (a resolved image) the image directory is made
  // and the image mounted from `ref` when no live mount exists; without, only a live mount is attached to
  // (nullptr otherwise) and the config comes from the image directory.
  // `manifest` is the mount's key; `image_manifest` the image's own, which pins a docker:// tag.
  static Result<std::unique_ptr<ImageUse>> Attach(const Sha256Digest& manifest,
                                                  const std::optional<std::string>& config_json,
                                                  const std::string& id, const ImageMountOptions& options,
                                                  const std::string& ref = "",
                                                  const Sha256Digest& image_manifest = {});

  const ImageDir dir_;
  const std::string id_;
  const Sha256Digest manifest_;
  const bool keep_;  // leave the mount to its idle timeout when this sandbox is the last to go
  std::string config_json_;
  FileLock user_lock_;
  bool attached_ = false;  // user_lock_ taken: the destructor detaches
};

}  // namespace lazyfs::run
