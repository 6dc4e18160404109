#include "tools/mount_observability.h"

#include <filesystem>

#include "common/log.h"
#include "fetch/trace_artifact.h"

namespace lazyfs::tools {
namespace {

// `--prefetch auto`: the trace artifact stored next to a docker:// image, and the artifact's reference
// (for the stats). Best effort: a missing artifact, a lookup that fails, an artifact that does not verify
// or whose trace was recorded on another image is logged and the mount goes on without prefetching — a
// registry-supplied trace must never decide whether an image mounts, nor prefetch for another image.
std::optional<std::pair<fs::Trace, std::string>> LoadStoredTrace(const MountObservabilityOptions& options,
                                                                 const fs::LoadedImage& image,
                                                                 const fetch::ImageRef& ref) {
  if (ref.transport != fetch::ImageRef::Transport::kDocker) {
    LogWarn("--prefetch auto: {} is not a docker:// image; no stored trace to look for", image.name);
    return std::nullopt;
  }
  std::string where =
      "docker://" + ref.host + "/" + ref.repository + ":" + fetch::TraceArtifactTag(image.manifest_digest);
  auto lookup = [&]() -> Result<std::optional<fs::Trace>> {
    std::shared_ptr<fetch::RegistryClient> client = LAZYFS_TRY(fetch::NewRegistryClient(ref.host, options.registry));
    std::optional<std::string> bytes =
        LAZYFS_TRY(fetch::FetchTraceArtifact(*client, ref.repository, image.manifest_digest));
    if (!bytes) return std::optional<fs::Trace>();
    fs::Trace trace = LAZYFS_TRY(fs::DecodeTrace(*bytes));
    if (trace.manifest_digest != image.manifest_digest) {
      return Corrupt("its trace was recorded on image " + trace.manifest_digest.ToString());
    }
    return std::optional<fs::Trace>(std::move(trace));
  };
  Result<std::optional<fs::Trace>> found = lookup();
  if (!found) {
    LogWarn("--prefetch auto: not using the stored trace {}: {}; mounting without prefetch", where,
            found.error().ToString());
    return std::nullopt;
  }
  if (!*found) {
    LogInfo("--prefetch auto: no trace stored for {} ({})", image.name, where);
    return std::nullopt;
  }
  LogInfo("--prefetch auto: using the stored trace {} ({} records)", where, (*found)->records.size());
  return std::make_pair(std::move(**found), where);
}

// The trace to prefetch from and where it came from, or nullopt when there is none to use (logged).
// Errors only for an explicit trace file that cannot be read.
Result<std::optional<std::pair<fs::Trace, std::string>>> LoadPrefetchTrace(const MountObservabilityOptions& options,
                                                                           const fs::LoadedImage& image,
                                                                           const fetch::ImageRef& ref) {
  if (options.prefetch == "auto") return LoadStoredTrace(options, image, ref);
  fs::Trace trace = LAZYFS_TRY(fs::ReadTraceFile(options.prefetch));
  return std::optional<std::pair<fs::Trace, std::string>>(std::make_pair(std::move(trace), options.prefetch));
}

}  // namespace

void MountObservabilityOptions::MakePathsAbsolute() {
  std::error_code ec;
  if (!trace_file.empty()) trace_file = std::filesystem::absolute(trace_file, ec).string();
  if (!prefetch.empty() && prefetch != "auto") prefetch = std::filesystem::absolute(prefetch, ec).string();
}

MountObservability::MountObservability(const fs::LoadedImage& image) : access_(image.tree, image.layers.size()) {}

MountObservability::~MountObservability() {
  if (Status finished = Finish(); !finished) LogWarn("{}", finished.error().ToString());
}

Result<std::unique_ptr<MountObservability>> MountObservability::Setup(const MountObservabilityOptions& options,
                                                                      const fs::LoadedImage& image,
                                                                      const fetch::ImageRef& ref,
                                                                      fs::ChunkReader& reader,
                                                                      fs::Filesystem& filesystem) {
  std::unique_ptr<MountObservability> obs(new MountObservability(image));
  fs::AccessStats* access = &obs->access_;
  reader.SetFetchListener([access](uint32_t layer, uint64_t bytes, std::chrono::nanoseconds latency) {
    access->OnFetch(layer, bytes, latency);
  });
  filesystem.AddObserver(access);
  if (!options.trace_file.empty()) {
    obs->trace_ = LAZYFS_TRY(fs::TraceRecorder::Open(options.trace_file, image.tree, image.manifest_digest, image.name));
    filesystem.AddObserver(obs->trace_.get());
    LogInfo("recording a trace of {} to {}", image.name, options.trace_file);
  }
  if (!options.prefetch.empty()) {
    std::optional<std::pair<fs::Trace, std::string>> loaded = LAZYFS_TRY(LoadPrefetchTrace(options, image, ref));
    if (loaded) {
      auto& [trace, source] = *loaded;
      if (trace.manifest_digest != image.manifest_digest) {
        LogWarn("prefetch trace was recorded on {}, not {}: prefetching the paths that still exist",
                trace.manifest_digest.ToString(), image.manifest_digest.ToString());
      }
      fs::PrefetchPlan plan = fs::PlanPrefetch(trace, image.tree);
      obs->plan_stats_.records = plan.records;
      obs->plan_stats_.missing_paths = plan.missing_paths;
      obs->prefetch_source_ = source;
      LogInfo("prefetch from {}: {} chunks from {} trace records ({} for missing paths), {} threads",
              source, plan.items.size(), plan.records, plan.missing_paths, options.prefetch_threads);
      obs->prefetcher_ = std::make_unique<fs::Prefetcher>(reader, std::move(plan), options.prefetch_threads);
    }
  } else if (options.landmarks && !image.prefetch.empty()) {
    fs::PrefetchPlan plan = fs::PlanPathsPrefetch(image.prefetch, image.tree);
    obs->plan_stats_.records = plan.records;
    obs->plan_stats_.missing_paths = plan.missing_paths;
    obs->prefetch_source_ = "eStargz landmarks";
    LogInfo("prefetch of {} landmark files: {} chunks, {} threads", plan.records, plan.items.size(),
            options.prefetch_threads);
    obs->prefetcher_ = std::make_unique<fs::Prefetcher>(reader, std::move(plan), options.prefetch_threads);
  }
  return obs;
}

void MountObservability::StartPrefetch() {
  if (prefetcher_) prefetcher_->Start();
}

Status MountObservability::Finish() {
  prefetcher_.reset();
  if (!trace_) return Ok();
  Status closed = trace_->Close();
  if (closed) LogInfo("trace {}: {} records", trace_->path(), trace_->records_written());
  return closed;
}

nlohmann::json MountObservability::Json() const {
  nlohmann::json out = {{"trace", nullptr}, {"prefetch", nullptr}};
  if (trace_) out["trace"] = {{"file", trace_->path()}, {"records_written", trace_->records_written()}};
  if (prefetcher_) {
    fs::PrefetchProgress p = prefetcher_->progress();
    out["prefetch"] = {{"source", prefetch_source_}, {"trace_records", plan_stats_.records},
                       {"missing_paths", plan_stats_.missing_paths}, {"planned_chunks", p.planned},
                       {"done_chunks", p.done}, {"fetched_chunks", p.fetched}, {"cached_chunks", p.cached},
                       {"errors", p.errors}, {"yields", p.yields}, {"finished", p.finished},
                       {"elapsed_ms", p.elapsed_ms}};
  }
  return out;
}

}  // namespace lazyfs::tools
