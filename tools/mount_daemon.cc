#include "tools/mount_daemon.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "common/log.h"
#include "fs/store_documents.h"
#include "run/image_dir.h"
#include "tools/stats_command.h"

namespace lazyfs::tools {

Result<std::unique_ptr<MountDaemon>> MountDaemon::Start(const MountCommandOptions& options) {
  std::unique_ptr<MountDaemon> d(new MountDaemon());
  d->options_ = options;
  fetch::ImageRef ref;  // none for a packages-only mount
  if (!options.ref.empty()) ref = LAZYFS_TRY(fetch::ImageRef::Parse(options.ref));
  const std::string name = options.ref.empty() ? "packages of " + options.lock : options.ref;
  std::error_code ec;
  d->mountpoint_ = std::filesystem::canonical(options.mountpoint, ec).string();
  if (ec) return PosixError(ec.value(), "resolve mountpoint " + options.mountpoint);

  cache::CacheOptions cache_options;
  if (!options.cache_dir.empty()) cache_options.dir = options.cache_dir;
  cache_options.max_bytes = options.cache_size;
  d->store_ = LAZYFS_TRY(cache::ChunkStore::Open(cache_options));
  fetch::SourceOptions source_options = LAZYFS_TRY(ToSourceOptions(options.source));
  source_options.documents = fs::StoreDocuments(*d->store_);  // `lazyfs run` resolved this image a moment ago
  if (!options.ref.empty()) d->source_ = LAZYFS_TRY(fetch::OpenImageSource(ref, source_options));

  if (options.ref.empty() && options.parts.empty()) {
    return InvalidArgument(name + ": nothing to mount (the lock has no dists, and no image was given)");
  }
  auto started = std::chrono::steady_clock::now();
  if (options.parts.empty()) {
    d->image_ = LAZYFS_TRY(fs::LoadImage(options.ref, *d->source_, *d->store_));
  } else {
    std::string at = options.packages_at;
    while (at.starts_with('/')) at.erase(0, 1);
    while (at.ends_with('/')) at.pop_back();
    std::vector<fs::MountPart> parts;
    for (const PackagePart& part : options.parts) {
      fetch::ImageRef part_ref = LAZYFS_TRY(fetch::ImageRef::Parse(part.ref));
      d->part_sources_.push_back(LAZYFS_TRY(fetch::OpenImageSource(part_ref, source_options)));
      std::string files = at.empty() ? part.dist + "/files" : at + "/" + part.dist + "/files";
      parts.push_back({part.dist, d->part_sources_.back().get(), {files, at.empty() ? "site" : at + "/site"}});
    }
    d->image_ = LAZYFS_TRY(fs::LoadComposed(name, d->source_.get(), parts, *d->store_));
  }
  auto load_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  const fs::LoadedImage& image = d->image_;
  LogInfo("image {} ({}): {} layers, {} inodes, {} bytes in files; tree {} in {} ms", name,
          image.manifest_digest.ToString(), image.layers.size(), image.tree.node_count(),
          image.tree.total_file_bytes(), image.tree_from_cache ? "from cache" : "built", load_ms.count());

  if (!d->source_ && image.layers.empty()) return InvalidArgument(name + ": nothing to mount (the dists have no layers)");
  std::vector<fs::LayerSource> layers;
  for (const fs::LayerInfo& l : image.layers) layers.push_back({l.blobs, l.descriptor, l.lazy});
  fetch::BlobReader& default_blobs = d->source_ ? d->source_->blobs() : *image.layers.front().blobs;
  d->restreamers_ = std::make_unique<fs::LayerRestreamers>(default_blobs, *d->store_, image.layers);
  fs::LayerRestreamers& restreamers = *d->restreamers_;
  d->reader_ = std::make_unique<fs::ChunkReader>(
      *d->store_, std::move(layers),
      [&restreamers](uint32_t layer, const Sha256Digest& wanted) { return restreamers.Restream(layer, wanted); });
  bool remote = !options.ref.empty() && ref.transport == fetch::ImageRef::Transport::kDocker;
  for (const PackagePart& part : options.parts) remote = remote || part.ref.starts_with("docker://");
  uint64_t fetch_ahead = options.fetch_ahead.value_or(remote ? kRemoteFetchAhead : 0);
  if (fetch_ahead > 0) {
    d->blob_order_ = fs::BlobOrder::Build(image.tree, image.layers.size());
    d->reader_->SetFetchAhead(&d->blob_order_, fetch_ahead);
    LogDebug("fetch-ahead: {} bytes past a miss, over {} chunks", fetch_ahead, d->blob_order_.chunk_count());
  }
  d->filesystem_ = std::make_unique<fs::Filesystem>(name, image.tree, *d->reader_);
  MountObservabilityOptions observability_options = options.observability;
  observability_options.registry = source_options.registry;
  observability_options.landmarks = !options.parts.empty();
  d->observability_ = LAZYFS_TRY(MountObservability::Setup(observability_options, image, ref, *d->reader_, *d->filesystem_));

  fs::MountOptions mount_options;
  mount_options.mountpoint = options.mountpoint;
  mount_options.allow_other = options.allow_other;
  mount_options.debug = options.debug_fuse;
  mount_options.max_threads = options.threads;
  d->mount_ = LAZYFS_TRY(fs::FuseMount::Mount(*d->filesystem_, mount_options));
  d->finish_.daemon = d.get();  // from here on, teardown finishes the trace and logs the totals
  LogInfo("mounted {} at {}", name, d->mountpoint_);
  if (options.idle_timeout_seconds) {
    auto timeout = std::chrono::duration_cast<IdleWatch::Clock::duration>(
        std::chrono::duration<double>(*options.idle_timeout_seconds));
    d->idle_ = LAZYFS_TRY(IdleWatch::Start(run::ImageDir(options.image_dir), d->mountpoint_, timeout));
  }
  const MountDaemon* self = d.get();
  Result<std::unique_ptr<run::ControlServer>> control = run::ControlServer::Start(
      run::ControlSocketPath(d->mountpoint_), [self](const std::string& request) { return self->StatsRequest(request); });
  if (control) {
    d->control_ = std::move(*control);
  } else {
    LogWarn("no control socket for {} (lazyfs stats will not see it): {}", d->mountpoint_, control.error().ToString());
  }
  d->observability_->StartPrefetch();
  return d;
}

std::string MountDaemon::StatsRequest(const std::string& request) const {
  nlohmann::json idle_json = idle_ ? idle_->Json() : nlohmann::json();
  if (request == "stats") {
    nlohmann::json stats = StatsJson(mountpoint_, image_, reader_->counters(), observability_.get());
    stats["idle"] = idle_json;
    return stats.dump();
  }
  // Cheap: no per-file statistics (lazyfs run and ps ask this on their paths).
  if (request == "info") {
    return nlohmann::json{{"pid", ::getpid()}, {"mountpoint", mountpoint_}, {"image", options_.ref},
                          {"manifest_digest", image_.manifest_digest.ToString()}, {"idle", idle_json}}
        .dump();
  }
  return R"({"error":"unknown request"})";
}

MountDaemon::FinishAfterUnmount::~FinishAfterUnmount() {
  if (daemon == nullptr) return;  // Start failed before the mount existed
  if (Status finished = daemon->observability_->Finish(); !finished) LogWarn("{}", finished.error().ToString());
  const fs::ReadCounters& c = daemon->reader_->counters();
  LogInfo("unmounted {}: {} reads, {} bytes read, {} chunk hits, {} misses, {} fetches, {} bytes fetched",
          daemon->options_.mountpoint, c.reads.load(), c.bytes_read.load(), c.chunk_hits.load(), c.chunk_misses.load(),
          c.fetches.load(), c.fetched_bytes.load());
}

}  // namespace lazyfs::tools
