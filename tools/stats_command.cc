#include "tools/stats_command.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "common/human_size.h"
#include "common/log.h"
#include "run/control_socket.h"
#include "tools/commands.h"
#include "tools/mount_observability.h"

namespace lazyfs::tools {
namespace {

double Percent(uint64_t part, uint64_t whole) { return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole); }

uint64_t U(const nlohmann::json& s, const char* key) {
  return s.contains(key) && s[key].is_number() ? s[key].get<uint64_t>() : 0;
}

std::string Latency(uint64_t micros) {
  return micros >= 1000 ? fmt::format("{:.1f} ms", static_cast<double>(micros) / 1000) : fmt::format("{} µs", micros);
}

void PrintTable(const nlohmann::json& s) {
  uint64_t files = U(s, "files_bytes");
  uint64_t needed = U(s, "bytes_needed");
  uint64_t fetched = U(s, "bytes_fetched");
  uint64_t hits = U(s, "chunk_hits");
  uint64_t misses = U(s, "chunk_misses");
  std::printf("mount           %s\n", s.value("mountpoint", "").c_str());
  std::printf("image           %s\n", s.value("image", "").c_str());
  std::printf("manifest        %s\n", s.value("manifest_digest", "").c_str());
  const nlohmann::json layers = s.value("layers", nlohmann::json::array());
  size_t lazy = 0;
  for (const auto& l : layers) lazy += l.value("lazy", false) ? 1 : 0;
  std::printf("layers          %zu (%zu lazy, %zu read whole)\n", layers.size(), lazy, layers.size() - lazy);
  std::printf("image size      %s compressed, %s uncompressed, %s in files (%llu inodes)\n",
              HumanSize(U(s, "image_bytes_compressed")).c_str(), HumanSize(U(s, "image_bytes_uncompressed")).c_str(),
              HumanSize(files).c_str(), static_cast<unsigned long long>(U(s, "inodes")));
  std::printf("read            %s in %llu reads\n", HumanSize(U(s, "bytes_read")).c_str(),
              static_cast<unsigned long long>(U(s, "reads")));
  std::printf("needed          %s unique (%.2f%% of the file bytes)\n", HumanSize(needed).c_str(), Percent(needed, files));
  std::printf("fetched         %s: %llu chunks in %llu requests (%.2f%% of the compressed image)\n",
              HumanSize(fetched).c_str(), static_cast<unsigned long long>(U(s, "fetches")),
              static_cast<unsigned long long>(U(s, "requests")), Percent(fetched, U(s, "image_bytes_compressed")));
  std::printf("amplification   %.2fx (fetched / needed)\n", s.value("amplification", 0.0));
  std::printf("chunk cache     %llu hits, %llu misses (%.1f%% hits)\n", static_cast<unsigned long long>(hits),
              static_cast<unsigned long long>(misses), Percent(hits, hits + misses));
  if (s.contains("fetch_latency_us") && s["fetch_latency_us"].is_object()) {
    const nlohmann::json& l = s["fetch_latency_us"];
    std::printf("fetch latency   p50 <= %s, p99 <= %s over %llu requests\n", Latency(U(l, "p50")).c_str(),
                Latency(U(l, "p99")).c_str(), static_cast<unsigned long long>(U(l, "count")));
  }
  std::printf("read errors     %llu\n", static_cast<unsigned long long>(U(s, "read_errors")));
  for (const auto& l : layers) {
    if (!l.value("lazy", true)) std::printf("not lazy        %s (streamed whole)\n", l.value("digest", "").c_str());
  }
  if (s.contains("prefetch") && s["prefetch"].is_object()) {
    const nlohmann::json& p = s["prefetch"];
    std::printf("prefetch        %llu/%llu chunks (%llu fetched, %llu cached, %llu errors)%s in %llu ms\n",
                static_cast<unsigned long long>(U(p, "done_chunks")), static_cast<unsigned long long>(U(p, "planned_chunks")),
                static_cast<unsigned long long>(U(p, "fetched_chunks")), static_cast<unsigned long long>(U(p, "cached_chunks")),
                static_cast<unsigned long long>(U(p, "errors")), p.value("finished", false) ? ", finished" : "",
                static_cast<unsigned long long>(U(p, "elapsed_ms")));
  }
  if (s.contains("trace") && s["trace"].is_object()) {
    std::printf("trace           %s (%llu records written)\n", s["trace"].value("file", "").c_str(),
                static_cast<unsigned long long>(U(s["trace"], "records_written")));
  }
  const nlohmann::json top = s.value("top_files", nlohmann::json::array());
  if (!top.empty()) {
    std::printf("\n%-12s %-12s %-8s %s\n", "needed", "read", "misses", "top files");
    for (const auto& f : top) {
      std::printf("%-12s %-12s %-8llu %s\n", HumanSize(U(f, "bytes_needed")).c_str(), HumanSize(U(f, "bytes_read")).c_str(),
                  static_cast<unsigned long long>(U(f, "chunk_misses")), f.value("path", "").c_str());
    }
  }
}

nlohmann::json CountersJson(const fs::AccessSnapshot& c) {
  return {{"reads", c.reads},           {"bytes_read", c.bytes_read}, {"bytes_needed", c.unique_bytes},
          {"chunk_hits", c.chunk_hits}, {"chunk_misses", c.chunk_misses}};
}

double Ratio(uint64_t a, uint64_t b) { return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b); }

}  // namespace

nlohmann::json StatsJson(const std::string& mountpoint, const fs::LoadedImage& image, const fs::ReadCounters& c,
                         const MountObservability* obs) {
  std::vector<fs::AccessSnapshot> per_layer = obs ? obs->access().Layers() : std::vector<fs::AccessSnapshot>();
  nlohmann::json layers = nlohmann::json::array();
  nlohmann::json not_lazy = nlohmann::json::array();
  uint64_t compressed = 0;
  uint64_t uncompressed = 0;
  for (size_t i = 0; i < image.layers.size(); ++i) {
    const fs::LayerInfo& l = image.layers[i];
    nlohmann::json layer = {{"digest", l.descriptor.digest.ToString()}, {"size", l.descriptor.size},
                            {"uncompressed_size", l.uncompressed_size}, {"lazy", l.lazy}};
    fs::AccessSnapshot a = i < per_layer.size() ? per_layer[i] : fs::AccessSnapshot{};
    layer.update(CountersJson(a));
    layer["requests"] = a.fetches;
    layer["bytes_fetched"] = a.fetched_bytes;
    layers.push_back(std::move(layer));
    if (!l.lazy) not_lazy.push_back(l.descriptor.digest.ToString());
    compressed += l.descriptor.size;
    uncompressed += l.uncompressed_size;
  }
  uint64_t needed = obs ? obs->access().Total().unique_bytes : 0;
  uint64_t hits = c.chunk_hits.load();
  uint64_t misses = c.chunk_misses.load();
  uint64_t fetched = c.fetched_bytes.load();
  fs::LatencyHistogram::Counts latency = obs ? obs->access().FetchLatency() : fs::LatencyHistogram::Counts{};
  uint64_t latency_count = 0;
  for (uint64_t n : latency) latency_count += n;
  nlohmann::json top = nlohmann::json::array();
  if (obs) {
    for (const fs::FileAccess& f : obs->access().TopFiles(10)) {
      const fs::Node* n = image.tree.Find(f.ino);
      nlohmann::json file = {{"path", image.tree.PathOf(f.ino)}, {"size", n ? n->size : 0}, {"layer", n ? n->layer : 0}};
      file.update(CountersJson(f.counters));
      top.push_back(std::move(file));
    }
  }
  nlohmann::json out = {
      {"version", 2},
      {"mountpoint", mountpoint},
      {"image", image.name},
      {"manifest_digest", image.manifest_digest.ToString()},
      {"pid", ::getpid()},
      {"image_bytes_compressed", compressed},
      {"image_bytes_uncompressed", uncompressed},
      {"files_bytes", image.tree.total_file_bytes()},
      {"inodes", image.tree.node_count()},
      {"reads", c.reads.load()},
      {"bytes_read", c.bytes_read.load()},
      {"bytes_needed", needed},
      {"needed_percent", 100.0 * Ratio(needed, image.tree.total_file_bytes())},
      {"chunk_hits", hits},
      {"chunk_misses", misses},
      {"cache_hit_ratio", Ratio(hits, hits + misses)},
      {"fetches", c.fetches.load()},
      {"requests", obs ? obs->access().Total().fetches : 0},
      {"bytes_fetched", fetched},
      {"amplification", Ratio(fetched, needed)},
      {"read_errors", c.errors.load()},
      {"fetch_latency_us", {{"count", latency_count},
                            {"p50", fs::LatencyHistogram::Quantile(latency, 0.50)},
                            {"p99", fs::LatencyHistogram::Quantile(latency, 0.99)},
                            {"buckets", latency}}},
      {"layers", layers},
      {"not_lazy_layers", not_lazy},
      {"package_conflicts", image.conflicts},
      {"top_files", top},
      {"trace", nullptr},
      {"prefetch", nullptr},
  };
  if (obs) out.update(obs->Json());
  return out;
}

int RunStats(const std::string& mountpoint, bool all, bool json) {
  std::vector<std::string> sockets;
  if (all) {
    sockets = run::ListControlSockets();
  } else {
    std::error_code ec;
    std::string canonical = std::filesystem::weakly_canonical(mountpoint, ec).string();
    sockets.push_back(run::ControlSocketPath(ec ? mountpoint : canonical));
  }
  nlohmann::json out = nlohmann::json::array();
  int rc = 0;
  for (const std::string& socket : sockets) {
    Result<std::string> reply = run::ControlRequest(socket, "stats");
    if (!reply) {
      if (!all) {
        std::fprintf(stderr, "lazyfs: stats %s: %s\n", mountpoint.c_str(), reply.error().ToString().c_str());
        rc = 1;
      }
      continue;
    }
    nlohmann::json s = nlohmann::json::parse(*reply, nullptr, false);
    if (s.is_discarded()) {
      std::fprintf(stderr, "lazyfs: stats: malformed reply from %s\n", socket.c_str());
      rc = 1;
      continue;
    }
    out.push_back(std::move(s));
  }
  if (json) {
    std::printf("%s\n", (all ? out : (out.empty() ? nlohmann::json() : out[0])).dump(2).c_str());
  } else {
    for (size_t i = 0; i < out.size(); ++i) {
      if (i) std::printf("\n");
      PrintTable(out[i]);
    }
  }
  return rc;
}

void AddStatsCommand(CLI::App& app, int& exit_code) {
  struct Options {
    std::string mountpoint;
    bool all = false;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("stats", "Amplification report of a running mount: needed vs fetched");
  cmd->add_option("mountpoint", options->mountpoint);
  cmd->add_flag("--all", options->all, "every lazyfs mount on this host");
  cmd->add_flag("--json", options->json, "machine-readable output (schema in tools/stats_command.h)");
  cmd->callback([options, &exit_code] {
    if (options->mountpoint.empty() && !options->all) throw CLI::ValidationError("stats", "needs a MOUNTPOINT or --all");
    exit_code = RunStats(options->mountpoint, options->all, options->json);
  });
}

}  // namespace lazyfs::tools
