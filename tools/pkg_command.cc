// `lazyfs pkg show REQ`: the core metadata of the newest dist an index offers for a requirement, for an
// explicit target Python, read the cheapest way the index allows (a PEP 658 metadata file, else Range
// reads into the wheel), with the index pages and metadata kept in the shared cache.
// `lazyfs pkg resolve REQ... [-r FILE] [-c FILE] [-o LOCK]`: the pinned closure of requirements for that
// target (pkg/resolver.h), printed and written as a lock file (pkg/lock_file.h).
#include <chrono>
#include <cstdio>
#include <memory>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cache/chunk_store.h"
#include "common/fd.h"
#include "common/human_size.h"
#include "common/log.h"
#include "fetch/http_transport.h"
#include "pkg/candidates.h"
#include "pkg/index_client.h"
#include "pkg/lock_file.h"
#include "pkg/metadata.h"
#include "pkg/requirement.h"
#include "pkg/requirements_file.h"
#include "pkg/resolver.h"
#include "pkg/target.h"
#include "tools/commands.h"
#include "tools/pkg_transport.h"

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
  bool index_url_given = false;  // set from the parsed command line: a -r file's --index-url gives way to it
};

// What `pkg resolve` adds.
struct ResolveFlags {
  std::vector<std::string> requirements;
  std::vector<std::string> requirement_files;  // -r
  std::vector<std::string> constraint_files;   // -c
  std::string output;                          // -o LOCK
  std::string lock;                            // --lock LOCK: prefer its versions
  bool quiet = false;
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

Result<pkg::TargetEnvironment> TargetOf(const PkgFlags& flags) {
  std::string python = flags.python_version.empty() ? LAZYFS_TRY(HostPythonVersion()) : flags.python_version;
  return pkg::MakeTarget(python, flags.platform);
}

// An index client over --index-url and the extra indexes, with the shared cache behind it.
Result<std::unique_ptr<pkg::IndexClient>> OpenIndex(const PkgFlags& flags, const std::string& index_url,
                                                    const std::vector<std::string>& extra_index_urls) {
  std::shared_ptr<fetch::HttpTransport> transport = LAZYFS_TRY(PkgTransport(flags.ca_file, flags.netrc));
  cache::CacheOptions cache_options;
  cache_options.dir = flags.cache_dir;
  auto cache = std::make_shared<StoreIndexCache>(LAZYFS_TRY(cache::ChunkStore::Open(cache_options)));
  pkg::IndexClientOptions index_options;
  index_options.index_urls.push_back(index_url);
  for (const std::string& url : extra_index_urls) index_options.index_urls.push_back(url);
  return std::make_unique<pkg::IndexClient>(transport, index_options, cache);
}

nlohmann::json CountersJson(const pkg::IndexCounters& c) {
  return {{"requests", c.requests.load()}, {"bytes", c.bytes.load()}, {"not_modified", c.not_modified.load()},
          {"cache_hits", c.cache_hits.load()}};
}

Result<nlohmann::json> Show(const PkgFlags& flags, const std::string& text) {
  pkg::Requirement requirement = LAZYFS_TRY(pkg::Requirement::Parse(text));
  if (requirement.url) {
    return InvalidArgument("'" + text + "' names a URL; lazyfs resolves requirements from an index only");
  }
  pkg::TargetEnvironment target = LAZYFS_TRY(TargetOf(flags));
  std::unique_ptr<pkg::IndexClient> client = LAZYFS_TRY(OpenIndex(flags, flags.index_url, flags.extra_index_urls));
  pkg::IndexClient& index = *client;

  std::vector<pkg::IndexFile> files = LAZYFS_TRY(index.ProjectFiles(requirement.name));
  // PEP 592: a yanked file is only for a requirement that pins its version exactly.
  pkg::CandidateSet set = pkg::WheelCandidates(files, requirement.name, target, requirement.specifier.IsExactPin());
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
      {"index", CountersJson(c)},
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

// The request: requirements from the command line and -r files, constraints from -c files (and the
// ones -r files include), the lock's versions as preferences. A requirements file's --index-url counts
// unless the command line gives one.
struct PreparedResolve {
  pkg::ResolveRequest request;
  std::string index_url;
  std::vector<std::string> extra_index_urls;
};

Result<PreparedResolve> PrepareResolve(const PkgFlags& flags, const ResolveFlags& resolve) {
  PreparedResolve out;
  out.index_url = flags.index_url;
  out.extra_index_urls = flags.extra_index_urls;
  out.request.target = LAZYFS_TRY(TargetOf(flags));
  out.request.pre = flags.pre;
  std::optional<pkg::LockFile> lock;
  if (!resolve.lock.empty()) {
    std::string text = LAZYFS_TRY(ReadWholeFile(resolve.lock));
    lock = LAZYFS_TRY(pkg::ParseLockFile(text, resolve.lock));
    for (const pkg::LockedPackage& p : lock->packages) out.request.locked[p.name] = p.version;
  }
  for (const std::string& text : resolve.requirements) {
    out.request.requirements.push_back(pkg::RequirementLine{LAZYFS_TRY(pkg::Requirement::Parse(text)), {}, "command line"});
  }
  auto add_file = [&](const std::string& path, bool constraints_only) -> Status {
    pkg::RequirementsFile file = LAZYFS_TRY(pkg::ReadRequirementsFile(path));
    auto& into = constraints_only ? out.request.constraints : out.request.requirements;
    into.insert(into.end(), file.requirements.begin(), file.requirements.end());
    out.request.constraints.insert(out.request.constraints.end(), file.constraints.begin(), file.constraints.end());
    if (file.index_url && !flags.index_url_given) out.index_url = *file.index_url;
    out.extra_index_urls.insert(out.extra_index_urls.end(), file.extra_index_urls.begin(), file.extra_index_urls.end());
    return Ok();
  };
  for (const std::string& path : resolve.requirement_files) LAZYFS_TRY(add_file(path, false));
  for (const std::string& path : resolve.constraint_files) LAZYFS_TRY(add_file(path, true));
  if (out.request.requirements.empty() && lock) {
    // `pkg resolve --lock pkg.lock` alone: the lock's own requirements again (an upgrade check).
    for (const std::string& text : lock->requirements) {
      out.request.requirements.push_back(pkg::RequirementLine{LAZYFS_TRY(pkg::Requirement::Parse(text)), {}, resolve.lock});
    }
  }
  if (out.request.requirements.empty()) {
    return InvalidArgument("nothing to resolve: give requirements (NAME[...]), -r FILE or --lock FILE");
  }
  return out;
}

// Prints a progress line on stderr at most once a second, so a long resolution shows it is alive.
class ResolveReporter {
 public:
  explicit ResolveReporter(bool quiet) : quiet_(quiet), tty_(!quiet && ::isatty(STDERR_FILENO) == 1) {}
  ~ResolveReporter() {
    if (shown_ && tty_) std::fputc('\n', stderr);
  }
  void operator()(const pkg::ResolveProgress& p) {
    auto now = std::chrono::steady_clock::now();
    if (quiet_ || now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    shown_ = true;
    std::fprintf(stderr, "%sresolving: %zu chosen, %zu pending, %zu candidates tried, %zu backjumps%s", tty_ ? "\r" : "",
                 p.chosen, p.pending, p.attempts, p.backjumps, tty_ ? "  " : "\n");
  }

 private:
  const bool quiet_;
  const bool tty_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

Result<nlohmann::json> ResolveCommand(const PkgFlags& flags, const ResolveFlags& resolve) {
  auto started = std::chrono::steady_clock::now();
  PreparedResolve prepared = LAZYFS_TRY(PrepareResolve(flags, resolve));
  std::unique_ptr<pkg::IndexClient> index = LAZYFS_TRY(OpenIndex(flags, prepared.index_url, prepared.extra_index_urls));
  auto reporter = std::make_shared<ResolveReporter>(resolve.quiet || flags.json);
  prepared.request.progress = [reporter](const pkg::ResolveProgress& p) { (*reporter)(p); };
  pkg::Resolution resolution = LAZYFS_TRY(pkg::Resolve(prepared.request, *index));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  pkg::LockFile lock;
  Result<pkg::LockFile> made = pkg::MakeLockFile(prepared.request, resolution);
  if (!made && !resolve.output.empty()) return made.error();
  if (made) lock = std::move(*made);
  if (!resolve.output.empty()) LAZYFS_TRY(WriteFileAtomic(resolve.output, pkg::LockFileText(lock)));

  nlohmann::json packages = nlohmann::json::array();
  for (const pkg::ResolvedDist& d : resolution.dists) {
    auto sha256 = d.file.hashes.find("sha256");
    packages.push_back({{"name", d.name},
                        {"version", d.version},
                        {"filename", d.file.filename},
                        {"url", fetch::RedactUrl(d.file.url)},
                        {"sha256", sha256 == d.file.hashes.end() ? nlohmann::json() : nlohmann::json(sha256->second)},
                        {"size", d.file.size ? nlohmann::json(*d.file.size) : nlohmann::json()},
                        {"extras", d.extras},
                        {"requires", d.depends_on},
                        {"required_by", d.required_by}});
  }
  return nlohmann::json{
      {"environment", pkg::EnvironmentJson(prepared.request.target)},
      {"packages", packages},
      {"warnings", resolution.warnings},
      {"lock_file", resolve.output.empty() ? nlohmann::json() : nlohmann::json(resolve.output)},
      {"stats", {{"seconds", seconds},
                 {"attempts", resolution.attempts},
                 {"backjumps", resolution.backjumps},
                 {"index", CountersJson(index->counters())}}},
  };
}

void PrintResolve(const nlohmann::json& j) {
  for (const auto& w : j["warnings"]) std::fprintf(stderr, "warning: %s\n", w.get<std::string>().c_str());
  const auto& stats = j["stats"];
  std::printf("%zu dists for %s (Python %s), resolved in %.3f s; index: %llu requests, %s, %llu not modified\n",
              j["packages"].size(), j["environment"]["preferred_tag"].get<std::string>().c_str(),
              j["environment"]["markers"]["python_full_version"].get<std::string>().c_str(),
              stats["seconds"].get<double>(),
              static_cast<unsigned long long>(stats["index"]["requests"].get<uint64_t>()),
              HumanSize(stats["index"]["bytes"].get<uint64_t>()).c_str(),
              static_cast<unsigned long long>(stats["index"]["not_modified"].get<uint64_t>()));
  for (const auto& p : j["packages"]) {
    std::string pin = p["name"].get<std::string>() + "==" + p["version"].get<std::string>();
    std::string size = p["size"].is_null() ? "" : "  " + HumanSize(p["size"].get<uint64_t>());
    std::string sha = p["sha256"].is_null() ? "no sha256" : "sha256:" + p["sha256"].get<std::string>().substr(0, 12);
    std::string why;
    for (const auto& by : p["required_by"]) why += (why.empty() ? "" : ", ") + by.get<std::string>();
    std::printf("  %-32s %s  %s%s\n      <- %s\n", pin.c_str(), p["filename"].get<std::string>().c_str(), sha.c_str(),
                size.c_str(), why.c_str());
  }
  if (!j["lock_file"].is_null()) std::printf("wrote %s\n", j["lock_file"].get<std::string>().c_str());
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

  AddPkgInstallCommand(*pkg, exit_code);

  auto resolve_flags = std::make_shared<ResolveFlags>();
  CLI::App* resolve = pkg->add_subcommand(
      "resolve", "Pin the whole dependency closure of requirements for a target Python and write a lock file");
  resolve->add_option("requirements", resolve_flags->requirements, "PEP 508 requirements: NAME, 'NAME[extra]>=1,<2', ...");
  resolve->add_option("-r,--requirement", resolve_flags->requirement_files, "requirements file (pip's format)");
  resolve->add_option("-c,--constraint", resolve_flags->constraint_files, "constraints file: limits versions, adds nothing");
  resolve->add_option("-o,--output", resolve_flags->output, "write the lock file here (JSON, see the README)");
  resolve->add_option("--lock", resolve_flags->lock, "prefer the versions of this lock file (alone: re-resolve its requirements)");
  resolve->add_flag("-q,--quiet", resolve_flags->quiet, "no progress lines on stderr");
  AddIndexFlags(*resolve, *flags);
  resolve->callback([flags, resolve_flags, resolve, &exit_code] {
    flags->index_url_given = resolve->count("--index-url") > 0;
    Result<nlohmann::json> resolved = ResolveCommand(*flags, *resolve_flags);
    if (!resolved) {
      // A conflict is a message for people, not an error code.
      const Error& error = resolved.error();
      std::fprintf(stderr, "lazyfs pkg resolve: %s\n",
                   (error.code() == ErrorCode::kInvalidArgument ? error.message() : error.ToString()).c_str());
      exit_code = 1;
      return;
    }
    if (flags->json) {
      std::printf("%s\n", resolved->dump(2).c_str());
    } else {
      PrintResolve(*resolved);
    }
    exit_code = 0;
  });
}

}  // namespace lazyfs::tools
