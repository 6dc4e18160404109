// `lazyfs cache stats|gc|verify|rm`: look after the host-wide chunk cache while mounts keep using it (every
// step is a few short LMDB transactions, see cache/chunk_store.h).
//
//   stats            tracked chunk count and bytes, the cap, meta and access entries, eviction totals,
//                    data file and map size
//   gc [--to SIZE]   evicts least-recently-used chunks down to SIZE (default: the cap), and removes lock
//                    files left under inflight/ by processes killed while fetching
//   verify           re-hashes every chunk with sha256 (and checks every stored value's XXH3 frame), drops
//                    the bad ones and lists them; the next read of a dropped chunk fetches it again
//   rm REF           removes the image's cached tree and layer indexes and every chunk its layers
//                    reference. Chunks it shares with other cached images go too: the cache is only a
//                    cache, and those images fetch them again on their next read. REF is resolved with
//                    the same source flags as `lazyfs mount` (the manifest is needed to name the layers).
// All take --cache-dir (default $LAZYFS_CACHE_DIR, else /var/lib/lazyfs/cache) and --json. Exit status:
// 0 on success (also when verify found and dropped bad values; the report says so), 1 on an error.
//
// Thread safety: runs on the main thread only.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

#include "cache/chunk_store.h"
#include "cache/fetch_lock.h"
#include "common/human_size.h"
#include "common/log.h"
#include "fetch/image_source.h"
#include "fs/store_documents.h"
#include "fs/image_loader.h"
#include "tools/commands.h"
#include "tools/source_flags.h"

namespace lazyfs::tools {
namespace {

struct CacheCommandOptions {
  std::string cache_dir;
  bool json = false;
  uint64_t to = 0;
  bool to_given = false;
  std::string ref;
  SourceFlags source;
};

Result<std::unique_ptr<cache::ChunkStore>> OpenCache(const CacheCommandOptions& o) {
  cache::CacheOptions options;
  options.dir = o.cache_dir;
  options.access_flush_interval = std::chrono::milliseconds(0);  // a short-lived tool reads nothing to stamp
  options.background_eviction = false;  // and stores no chunks; gc evicts in the foreground
  return cache::ChunkStore::Open(options);
}

// One value as people read it: byte counts (keys ending in "_bytes") as "64.0 GiB"; --json keeps them exact.
std::string ForPeople(const std::string& key, const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_unsigned() && key.ends_with("_bytes")) return HumanSize(value.get<uint64_t>());
  return value.dump();
}

void Print(const CacheCommandOptions& o, const nlohmann::json& out) {
  if (o.json) {
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  for (const auto& [key, value] : out.items()) {
    if (value.is_array()) {
      std::printf("%-18s %zu\n", key.c_str(), value.size());
      for (const auto& item : value) std::printf("  %s\n", item.dump().c_str());
    } else {
      std::printf("%-18s %s\n", key.c_str(), ForPeople(key, value).c_str());
    }
  }
}

Result<nlohmann::json> Stats(const CacheCommandOptions& o) {
  std::unique_ptr<cache::ChunkStore> store = LAZYFS_TRY(OpenCache(o));
  cache::CacheCounters c = LAZYFS_TRY(store->Counters());
  return nlohmann::json{{"cache_dir", o.cache_dir},         {"chunks", c.chunks},
                        {"chunk_bytes", c.chunk_bytes},     {"max_bytes", c.max_bytes},
                        {"meta_entries", c.meta_entries},   {"access_entries", c.access_entries},
                        {"evicted_chunks", c.evicted_chunks}, {"evicted_bytes", c.evicted_bytes},
                        {"file_bytes", c.file_bytes},       {"map_bytes", c.map_bytes}};
}

Result<nlohmann::json> Gc(const CacheCommandOptions& o) {
  std::unique_ptr<cache::ChunkStore> store = LAZYFS_TRY(OpenCache(o));
  uint64_t target = o.to_given ? o.to : LAZYFS_TRY(store->Counters()).max_bytes;
  cache::EvictionReport report = LAZYFS_TRY(store->Evict(target));
  uint64_t swept = LAZYFS_TRY(cache::InflightLock::SweepStale(o.cache_dir));
  return nlohmann::json{{"target_bytes", target},
                        {"evicted_chunks", report.chunks},
                        {"evicted_bytes", report.bytes},
                        {"chunk_bytes", report.remaining_bytes},
                        {"stale_locks_removed", swept}};
}

Result<nlohmann::json> Verify(const CacheCommandOptions& o) {
  std::unique_ptr<cache::ChunkStore> store = LAZYFS_TRY(OpenCache(o));
  nlohmann::json bad = nlohmann::json::array();
  cache::VerifyReport r = LAZYFS_TRY(store->Verify([&](const std::optional<Sha256Digest>& chunk, const std::string& why) {
    bad.push_back({{"kind", chunk ? "chunk" : "meta"}, {"digest", chunk ? chunk->ToString() : ""}, {"why", why}});
    LogWarn("cache {}: dropped a bad {} {}: {}", o.cache_dir, chunk ? "chunk" : "meta value",
            chunk ? chunk->ToString() : "", why);
  }));
  return nlohmann::json{{"chunks", r.chunks},
                        {"chunk_bytes", r.bytes},
                        {"bad_chunks", r.bad_chunks},
                        {"meta_entries", r.meta_entries},
                        {"bad_meta", r.bad_meta},
                        {"counters_fixed", r.counters_fixed},
                        {"bad", bad}};
}

Result<nlohmann::json> Remove(const CacheCommandOptions& o) {
  std::unique_ptr<cache::ChunkStore> store = LAZYFS_TRY(OpenCache(o));
  fetch::ImageRef ref = LAZYFS_TRY(fetch::ImageRef::Parse(o.ref));
  fetch::SourceOptions source_options = LAZYFS_TRY(ToSourceOptions(o.source));
  source_options.documents = fs::StoreDocuments(*store);
  std::unique_ptr<fetch::ImageSource> source = LAZYFS_TRY(fetch::OpenImageSource(ref, source_options));
  // From the cached tree when there is one (no layer is read); otherwise the image is indexed again, which
  // for a plain layer streams it into the cache only to remove it: rare, and always correct.
  fs::LoadedImage image = LAZYFS_TRY(fs::LoadImage(o.ref, *source, *store));
  std::vector<Sha256Digest> chunks = LAZYFS_TRY(fs::ImageChunks(image, *store));
  cache::EvictionReport removed = LAZYFS_TRY(store->DeleteChunks(chunks));
  uint64_t meta_removed = 0;
  for (const std::string& key : fs::ImageMetaKeys(image)) {
    if (LAZYFS_TRY(store->GetMeta(key))) ++meta_removed;
    LAZYFS_TRY(store->DeleteMeta(key));
  }
  return nlohmann::json{{"image", o.ref},
                        {"manifest_digest", image.manifest_digest.ToString()},
                        {"chunks_referenced", chunks.size()},
                        {"chunks_removed", removed.chunks},
                        {"bytes_removed", removed.bytes},
                        {"meta_removed", meta_removed},
                        {"chunk_bytes", removed.remaining_bytes}};
}

int Run(const CacheCommandOptions& o, Result<nlohmann::json> (*command)(const CacheCommandOptions&)) {
  Result<nlohmann::json> out = command(o);
  if (!out) {
    std::fprintf(stderr, "lazyfs cache: %s\n", out.error().ToString().c_str());
    return 1;
  }
  Print(o, *out);
  return 0;
}

}  // namespace

void AddCacheCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<CacheCommandOptions>();
  o->cache_dir = DefaultCacheDir();
  CLI::App* cmd = app.add_subcommand("cache", "Inspect and maintain the shared chunk cache");
  cmd->require_subcommand(1);
  auto common = [&](CLI::App* sub) {
    sub->add_option("--cache-dir", o->cache_dir, "shared chunk cache ($LAZYFS_CACHE_DIR)")->capture_default_str();
    sub->add_flag("--json", o->json, "print JSON");
  };
  CLI::App* stats = cmd->add_subcommand("stats", "Cache size, cap, entries and eviction totals");
  common(stats);
  stats->callback([o, &exit_code] { exit_code = Run(*o, Stats); });

  CLI::App* gc = cmd->add_subcommand("gc", "Evict least-recently-used chunks down to a size (default: the cap)");
  common(gc);
  gc->add_option("--to", o->to, "target size of the cached chunk bytes, e.g. 2G")->transform(CLI::AsSizeValue(false));
  gc->callback([o, gc, &exit_code] {
    o->to_given = gc->count("--to") > 0;
    exit_code = Run(*o, Gc);
  });

  CLI::App* verify = cmd->add_subcommand("verify", "Re-hash every chunk with sha256; drop and report bad ones");
  common(verify);
  verify->callback([o, &exit_code] { exit_code = Run(*o, Verify); });

  CLI::App* rm = cmd->add_subcommand("rm", "Remove one image's chunks, tree and layer indexes from the cache");
  common(rm);
  rm->add_option("image", o->ref, "the image reference, as given to lazyfs mount")->required();
  AddSourceFlags(*rm, o->source);
  rm->callback([o, &exit_code] { exit_code = Run(*o, Remove); });
}

}  // namespace lazyfs::tools
