// `lazyfs pkg show REQ`: the core metadata of the newest dist an index offers for a requirement, for an
// explicit target Python, read the cheapest way the index allows (a PEP 658 metadata file, else Range
// reads into the wheel), with the index pages and metadata kept in the shared cache.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cache/chunk_store.h"
#include "common/log.h"
#include "fetch/http_transport.h"
#include "pkg/candidates.h"
#include "pkg/index_client.h"
#include "pkg/metadata.h"
#include "pkg/requirement.h"
#include "pkg/target.h"
#include "tools/commands.h"

namespace lazyfs::tools {
namespace {

constexpr const char* kDefaultIndexUrl = "https://pypi.org/simple/";

struct PkgFlags {
  std::string index_url = kDefaultIndexUrl;
  std::vector<std::string> extra_index_urls;
  std::string ca_file;
  std::string netrc;  // default: $NETRC, else ~/.netrc when it exists
  std::string python_version;  // "": the host python3's
  std::string platform;
  bool pre = false;
  bool json = false;
  std::string cache_dir;
};

// The index's pages and metadata in the shared cache's meta table.
class StoreIndexCache : public pkg::IndexCache {
 public:
  explicit StoreIndexCache(std::unique_ptr<cache::ChunkStore> store) : store_(std::move(store)) {}
  std::optional<std::string> Get(std::string_view key) override {
    Result<std::optional<std::string>> value = store_->GetMeta(key);
    return value ? *value : std::nullopt;
  }
  void Put(std::string_view key, std::string_view value) override {
    if (Status put = store_->PutMeta(key, value); !put) LogDebug("index cache: {}", put.error().ToString());
  }

 private:
  std::unique_ptr<cache::ChunkStore> store_;
};

// The host python3's version, the default target when none is given ("3.11.2"), or an error that says
// to pass --python-version.
Result<std::string> HostPythonVersion() {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(
      ::popen("python3 -c 'import sys; print(\"%d.%d.%d\" % sys.version_info[:3])' 2>/dev/null", "r"), ::pclose);
  char line[64] = {};
  if (!pipe || std::fgets(line, sizeof line, pipe.get()) == nullptr) {
    return NotFound("no python3 on this host to take the target from; pass --python-version 3.X");
  }
  std::string version(line);
  while (!version.empty() && (version.back() == '\n' || version.back() == '\r')) version.pop_back();
  return version;
}

std::string NetrcFile(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("NETRC"); env && *env) return env;
  if (const char* home = std::getenv("HOME"); home && *home) {
    std::string path = std::string(home) + "/.netrc";
    if (std::filesystem::exists(path)) return path;
  }
  return "";
}

Result<nlohmann::json> Show(const PkgFlags& flags, const std::string& text) {
  pkg::Requirement requirement = LAZYFS_TRY(pkg::Requirement::Parse(text));
  if (requirement.url) {
    return InvalidArgument("'" + text + "' names a URL; lazyfs resolves requirements from an index only");
  }
  std::string python = flags.python_version.empty() ? LAZYFS_TRY(HostPythonVersion()) : flags.python_version;
  pkg::TargetEnvironment target = LAZYFS_TRY(pkg::MakeTarget(python, flags.platform));

  fetch::CurlTransportOptions transport_options;
  transport_options.ca_file = flags.ca_file;
  transport_options.netrc_file = NetrcFile(flags.netrc);
  std::shared_ptr<fetch::HttpTransport> transport = LAZYFS_TRY(fetch::NewCurlTransport(transport_options));
  cache::CacheOptions cache_options;
  cache_options.dir = flags.cache_dir;
  auto cache = std::make_shared<StoreIndexCache>(LAZYFS_TRY(cache::ChunkStore::Open(cache_options)));
  pkg::IndexClientOptions index_options;
  index_options.index_urls.push_back(flags.index_url);
  for (const std::string& url : flags.extra_index_urls) index_options.index_urls.push_back(url);
  pkg::IndexClient index(transport, index_options, cache);

  std::vector<pkg::IndexFile> files = LAZYFS_TRY(index.ProjectFiles(requirement.name));
  // PEP 592: a yanked file is only for a requirement that pins its version exactly.
  bool pinned = requirement.specifier.clauses().size() == 1 &&
                (requirement.specifier.clauses()[0].op() == pkg::Specifier::Operator::kEqual ||
                 requirement.specifier.clauses()[0].op() == pkg::Specifier::Operator::kArbitrary) &&
                !requirement.specifier.clauses()[0].wildcard();
  pkg::CandidateSet set = pkg::WheelCandidates(files, requirement.name, target, pinned);
  std::vector<const pkg::Candidate*> admitted =
      pkg::Admitted(set, requirement.specifier, flags.pre ? std::optional(true) : std::nullopt);
  if (admitted.empty()) return NotFound(pkg::NoCandidateMessage(set, requirement.name, requirement.specifier, target));
  const pkg::Candidate& chosen = *admitted.front();
  pkg::FetchedMetadata fetched = LAZYFS_TRY(index.Metadata(chosen.file, requirement.name));
  pkg::CoreMetadata metadata = LAZYFS_TRY(pkg::ParseCoreMetadata(fetched.text, chosen.file.url));

  auto sha256 = chosen.file.hashes.find("sha256");
  const pkg::IndexCounters& c = index.counters();
  return nlohmann::json{
      {"name", metadata.name},
      {"version", metadata.version},
      {"summary", metadata.summary},
      {"requires_python", metadata.requires_python ? nlohmann::json(*metadata.requires_python) : nlohmann::json()},
      {"requires_dist", metadata.requires_dist},
      {"provides_extra", metadata.provides_extra},
      {"file", chosen.file.filename},
      {"url", fetch::RedactUrl(chosen.file.url)},
      {"sha256", sha256 == chosen.file.hashes.end() ? nlohmann::json() : nlohmann::json(sha256->second)},
      {"size", chosen.file.size ? nlohmann::json(*chosen.file.size) : nlohmann::json()},
      {"tag", chosen.wheel.tags.empty() ? "" : chosen.wheel.tags.front().ToString()},
      {"metadata_source", std::string(pkg::MetadataSourceName(fetched.source))},
      {"index", {{"requests", c.requests.load()}, {"bytes", c.bytes.load()}, {"not_modified", c.not_modified.load()},
                 {"cache_hits", c.cache_hits.load()}}},
  };
}

void PrintShow(const nlohmann::json& j) {
  std::printf("Name: %s\nVersion: %s\n", j["name"].get<std::string>().c_str(), j["version"].get<std::string>().c_str());
  if (!j["summary"].get<std::string>().empty()) std::printf("Summary: %s\n", j["summary"].get<std::string>().c_str());
  if (!j["requires_python"].is_null()) std::printf("Requires-Python: %s\n", j["requires_python"].get<std::string>().c_str());
  for (const auto& r : j["requires_dist"]) std::printf("Requires-Dist: %s\n", r.get<std::string>().c_str());
  for (const auto& e : j["provides_extra"]) std::printf("Provides-Extra: %s\n", e.get<std::string>().c_str());
  std::printf("File: %s\nURL: %s\n", j["file"].get<std::string>().c_str(), j["url"].get<std::string>().c_str());
  if (!j["sha256"].is_null()) std::printf("SHA256: %s\n", j["sha256"].get<std::string>().c_str());
  std::printf("Metadata from: %s (%llu index requests, %llu bytes)\n", j["metadata_source"].get<std::string>().c_str(),
              static_cast<unsigned long long>(j["index"]["requests"].get<uint64_t>()),
              static_cast<unsigned long long>(j["index"]["bytes"].get<uint64_t>()));
}

void AddIndexFlags(CLI::App& cmd, PkgFlags& flags) {
  cmd.add_option("-i,--index-url", flags.index_url, "base URL of a PEP 503/691 package index")->capture_default_str();
  cmd.add_option("--extra-index-url", flags.extra_index_urls, "more indexes, searched after --index-url");
  cmd.add_option("--ca-file", flags.ca_file, "PEM bundle to trust for https indexes instead of the system's");
  cmd.add_option("--netrc", flags.netrc, "netrc file with index credentials (default: $NETRC, else ~/.netrc)");
  cmd.add_option("--python-version", flags.python_version, "target Python, 3.X or 3.X.Y (default: the host's python3)");
  cmd.add_option("--platform", flags.platform,
                 "target platform tag, e.g. manylinux_2_28_x86_64 or musllinux_1_2_aarch64 (default: "
                 "manylinux_2_36_x86_64, Debian 12)");
  cmd.add_flag("--pre", flags.pre, "admit pre-releases even when a final release matches");
  cmd.add_option("--cache-dir", flags.cache_dir, "shared cache (index pages and metadata are kept there)")
      ->capture_default_str();
  cmd.add_flag("--json", flags.json, "print JSON");
}

}  // namespace

void AddPkgCommand(CLI::App& app, int& exit_code) {
  CLI::App* pkg = app.add_subcommand("pkg", "Python packages from a PEP 503/691 index");
  pkg->require_subcommand(1);
  auto flags = std::make_shared<PkgFlags>();
  flags->cache_dir = DefaultCacheDir();
  auto requirement = std::make_shared<std::string>();
  CLI::App* show = pkg->add_subcommand("show", "Print the metadata of the newest dist that fits a requirement");
  show->add_option("requirement", *requirement, "NAME, NAME==VERSION or any PEP 508 requirement")->required();
  AddIndexFlags(*show, *flags);
  show->callback([flags, requirement, &exit_code] {
    Result<nlohmann::json> shown = Show(*flags, *requirement);
    if (!shown) {
      std::fprintf(stderr, "lazyfs pkg show: %s\n", shown.error().ToString().c_str());
      exit_code = 1;
      return;
    }
    if (flags->json) {
      std::printf("%s\n", shown->dump(2).c_str());
    } else {
      PrintShow(*shown);
    }
    exit_code = 0;
  });
}

}  // namespace lazyfs::tools
