#include "tools/stats_command.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "common/log.h"
#include "tools/commands.h"
#include "tools/control_socket.h"

namespace lazyfs::tools {
namespace {

std::string Bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {}", v, units[u]);
}

double Percent(uint64_t part, uint64_t whole) { return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole); }

void PrintTable(const nlohmann::json& s) {
  uint64_t files = s.value("files_bytes", uint64_t{0});
  uint64_t read = s.value("bytes_read", uint64_t{0});
  uint64_t fetched = s.value("bytes_fetched", uint64_t{0});
  uint64_t hits = s.value("chunk_hits", uint64_t{0});
  uint64_t misses = s.value("chunk_misses", uint64_t{0});
  std::printf("mount         %s\n", s.value("mountpoint", "").c_str());
  std::printf("image         %s\n", s.value("image", "").c_str());
  std::printf("manifest      %s\n", s.value("manifest_digest", "").c_str());
  size_t lazy = 0;
  for (const auto& l : s["layers"]) lazy += l.value("lazy", false) ? 1 : 0;
  std::printf("layers        %zu (%zu lazy, %zu read whole)\n", s["layers"].size(), lazy, s["layers"].size() - lazy);
  std::printf("image size    %s compressed, %s in files (%llu inodes)\n",
              Bytes(s.value("image_bytes_compressed", uint64_t{0})).c_str(), Bytes(files).c_str(),
              static_cast<unsigned long long>(s.value("inodes", uint64_t{0})));
  std::printf("read          %s in %llu reads (%.2f%% of the file bytes)\n", Bytes(read).c_str(),
              static_cast<unsigned long long>(s.value("reads", uint64_t{0})), Percent(read, files));
  std::printf("fetched       %s in %llu chunk fetches (%.2f%% of the compressed image)\n", Bytes(fetched).c_str(),
              static_cast<unsigned long long>(s.value("fetches", uint64_t{0})),
              Percent(fetched, s.value("image_bytes_compressed", uint64_t{0})));
  std::printf("chunk cache   %llu hits, %llu misses (%.1f%% hits)\n", static_cast<unsigned long long>(hits),
              static_cast<unsigned long long>(misses), Percent(hits, hits + misses));
  std::printf("read errors   %llu\n", static_cast<unsigned long long>(s.value("read_errors", uint64_t{0})));
}

}  // namespace

nlohmann::json StatsJson(const std::string& mountpoint, const fs::LoadedImage& image, const fs::ReadCounters& c) {
  nlohmann::json layers = nlohmann::json::array();
  uint64_t compressed = 0;
  uint64_t uncompressed = 0;
  for (const fs::LayerInfo& l : image.layers) {
    layers.push_back({{"digest", l.descriptor.digest.ToString()}, {"size", l.descriptor.size}, {"lazy", l.lazy}});
    compressed += l.descriptor.size;
    uncompressed += l.uncompressed_size;
  }
  return {
      {"version", 1},
      {"mountpoint", mountpoint},
      {"image", image.name},
      {"manifest_digest", image.manifest_digest.ToString()},
      {"pid", ::getpid()},
      {"image_bytes_compressed", compressed},
      {"image_bytes_uncompressed", uncompressed},
      {"files_bytes", image.tree.total_file_bytes()},
      {"inodes", image.tree.node_count()},
      {"layers", layers},
      {"reads", c.reads.load()},
      {"bytes_read", c.bytes_read.load()},
      {"chunk_hits", c.chunk_hits.load()},
      {"chunk_misses", c.chunk_misses.load()},
      {"fetches", c.fetches.load()},
      {"bytes_fetched", c.fetched_bytes.load()},
      {"read_errors", c.errors.load()},
  };
}

int RunStats(const std::string& mountpoint, bool all, bool json) {
  std::vector<std::string> sockets;
  if (all) {
    sockets = ListControlSockets();
  } else {
    std::error_code ec;
    std::string canonical = std::filesystem::weakly_canonical(mountpoint, ec).string();
    sockets.push_back(ControlSocketPath(ec ? mountpoint : canonical));
  }
  nlohmann::json out = nlohmann::json::array();
  int rc = 0;
  for (const std::string& socket : sockets) {
    Result<std::string> reply = ControlRequest(socket, "stats");
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
