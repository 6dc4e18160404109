#include "tools/mount_observability.h"

#include <filesystem>

#include "common/log.h"
#include "fetch/trace_artifact.h"

namespace lazyfs::tools {
namespace {

// The trace to prefetch from, or nullopt when there is none to use (logged).
Result<std::optional<fs::Trace>> LoadPrefetchTrace(const MountObservabilityOptions& options,
                                                   const fs::LoadedImage& image, const fetch::ImageRef& ref) {
  if (options.prefetch != "auto") return std::optional<fs::Trace>(LAZYFS_TRY(fs::ReadTraceFile(options.prefetch)));
  if (ref.transport != fetch::ImageRef::Transport::kDocker) {
    LogWarn("--prefetch auto: {} is not a docker:// image; no stored trace to look for", image.name);
    return std::optional<fs::Trace>();
  }
  std::shared_ptr<fetch::RegistryClient> client = LAZYFS_TRY(fetch::NewRegistryClient(ref.host, options.registry));
  std::optional<std::string> bytes = LAZYFS_TRY(fetch::FetchTraceArtifact(*client, ref.repository, image.manifest_digest));
  if (!bytes) {
    LogInfo("--prefetch auto: no trace stored for {} ({})", image.name, fetch::TraceArtifactTag(image.manifest_digest));
    return std::optional<fs::Trace>();
  }
  Result<fs::Trace> trace = fs::DecodeTrace(*bytes);
  if (!trace) return std::move(trace).error().Context("stored trace of " + image.name);
  return std::optional<fs::Trace>(std::move(*trace));
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
    std::optional<fs::Trace> trace = LAZYFS_TRY(LoadPrefetchTrace(options, image, ref));
    if (trace) {
      if (trace->manifest_digest != image.manifest_digest) {
        LogWarn("prefetch trace was recorded on {}, not {}: prefetching the paths that still exist",
                trace->manifest_digest.ToString(), image.manifest_digest.ToString());
      }
      fs::PrefetchPlan plan = fs::PlanPrefetch(*trace, image.tree);
      obs->plan_stats_.records = plan.records;
      obs->plan_stats_.missing_paths = plan.missing_paths;
      obs->prefetch_source_ = options.prefetch;
      LogInfo("prefetch from {}: {} chunks from {} trace records ({} for missing paths), {} threads",
              options.prefetch, plan.items.size(), plan.records, plan.missing_paths, options.prefetch_threads);
      obs->prefetcher_ = std::make_unique<fs::Prefetcher>(reader, std::move(plan), options.prefetch_threads);
    }
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
