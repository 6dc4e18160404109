// MountObservability: everything a mount keeps for `lazyfs stats` and traces beyond ChunkReader's
// totals — the AccessStats (per layer, per file, unique bytes, fetch latency), the optional trace
// recorder (`mount --trace FILE`) and the optional background prefetcher (`mount --prefetch TRACE|auto`).
//
// Life cycle, driven by mount_command.cc: Setup before the FUSE session starts (it registers observers
// and the fetch listener), StartPrefetch once the mount is live, Finish after unmounting (stops the
// prefetcher, flushes and closes the trace), destruction before the ChunkReader.
//
// `--prefetch auto` looks for a trace artifact next to a docker:// image (fetch/trace_artifact.h); for
// other sources, when there is none, or when it cannot be used (the lookup fails, it does not verify,
// it refers to another image or holds a trace recorded on another image), the mount goes on without
// prefetching (logged). Only an explicit trace file that cannot be read fails the mount.
//
// Thread safety: Json() may be called from the control-socket thread while the mount serves.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "common/result.h"
#include "fetch/image_ref.h"
#include "fetch/registry_source.h"
#include "fs/access_stats.h"
#include "fs/chunk_reader.h"
#include "fs/filesystem.h"
#include "fs/image_loader.h"
#include "fs/prefetcher.h"
#include "fs/trace.h"

namespace lazyfs::tools {

struct MountObservabilityOptions {
  std::string trace_file;        // record every read here (empty: no trace)
  std::string prefetch;          // a trace file, "auto", or empty
  unsigned prefetch_threads = 4;
  fetch::RegistryOptions registry;  // for --prefetch auto on docker:// images
  // Without a trace, prefetch the files the image's eStargz landmarks list (LoadedImage::prefetch): set
  // for package mounts, whose layers list what `import NAME` read when they were built.
  bool landmarks = false;

  // The daemon changes directory to /: relative paths must be made absolute before it forks.
  void MakePathsAbsolute();
};

class MountObservability {
 public:
  static Result<std::unique_ptr<MountObservability>> Setup(const MountObservabilityOptions& options,
                                                           const fs::LoadedImage& image, const fetch::ImageRef& ref,
                                                           fs::ChunkReader& reader, fs::Filesystem& filesystem);
  ~MountObservability();

  void StartPrefetch();
  // Stops prefetching, drains and closes the trace. Call after unmounting.
  Status Finish();

  const fs::AccessStats& access() const { return access_; }
  // {"trace": {...}|null, "prefetch": {...}|null} for the stats JSON.
  nlohmann::json Json() const;

 private:
  MountObservability(const fs::LoadedImage& image);

  fs::AccessStats access_;
  std::unique_ptr<fs::TraceRecorder> trace_;
  std::unique_ptr<fs::Prefetcher> prefetcher_;
  std::string prefetch_source_;
  fs::PrefetchPlan plan_stats_;  // only the counts (items moved into the prefetcher)
};

}  // namespace lazyfs::tools
