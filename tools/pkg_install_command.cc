// `lazyfs pkg install LOCK`: a package layer for every dist of a lock file (`lazyfs pkg resolve -o`),
// kept on the host and, with --push, in a registry (tools/package_layers.h); what `lazyfs mount
// --packages` and `lazyfs run --packages` mount.
//
// `lazyfs pkg install LOCK --to DIR`: every dist installed into
// its own directory instead, OpenLambda's layout: DIR/NAME==VERSION/files, one wheel each (pkg/wheel_install.h),
// downloaded and verified against the lock's sha256 first (pkg/wheel_download.h). A directory that is
// there is complete (installs are renamed into place), so a second run installs only what is missing,
// and concurrent runs on one DIR never leave a half-installed dist.
//
// With --compile-in IMAGE, each tree's .pyc are compiled by the image's own python3 before the tree is
// published: `lazyfs run` of IMAGE (network off, --installer-memory, --installer-timeout) with the tree
// mounted writable, `python3 -m compileall` with unchecked-hash invalidation (a read-only mount can take
// no later writes, and the files' mtimes say nothing on a lazy mount) and the paths the dist will have in
// a sandbox's merged view (/packages/site) written into the code objects for tracebacks.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "common/temp_dir.h"
#include "common/human_size.h"
#include "fetch/http_transport.h"
#include "pkg/lock_file.h"
#include "pkg/wheel_download.h"
#include "pkg/wheel_install.h"
#include "run/signal_watch.h"
#include "tools/commands.h"
#include "tools/package_layers.h"
#include "tools/pkg_transport.h"
#include "tools/run_command.h"
#include "tools/run_packages.h"
#include "tools/run_resolve.h"

namespace lazyfs::tools {
namespace {

struct InstallFlags {
  std::vector<std::string> packages;  // a lock file, or requirements (resolved for --compile-in's python3)
  std::string index_url;
  std::string lock;  // the lock file used
  std::string to;  // empty: package layers
  std::string interpreter = "/usr/bin/python3";
  std::string ca_file;
  std::string netrc;
  bool json = false;
  bool quiet = false;
  std::string compile_in;  // image whose python3 compiles the .pyc; "" = none
  std::string installer_memory = "512M";
  int installer_timeout = 600;  // seconds
  // Package layers only:
  std::string cache_dir;
  std::string registry;  // docker://REG/PREFIX
  bool push = false;
  std::vector<std::string> insecure_registries;
};

PackageLayerOptions LayerOptions(const InstallFlags& flags) {
  PackageLayerOptions options;
  options.cache_dir = flags.cache_dir;
  options.compile_in = flags.compile_in;
  options.installer_memory = flags.installer_memory;
  options.installer_timeout = flags.installer_timeout;
  options.interpreter = flags.interpreter;
  options.registry = flags.registry;
  options.push = flags.push;
  options.source.insecure_registries = flags.insecure_registries;
  options.source.ca_file = flags.ca_file;
  options.ca_file = flags.ca_file;
  options.netrc = flags.netrc;
  options.quiet = flags.quiet || flags.json;
  return options;
}

Result<nlohmann::json> InstallLayers(const InstallFlags& flags) {
  pkg::LockFile lock = LAZYFS_TRY(pkg::ParseLockFile(LAZYFS_TRY(ReadWholeFile(flags.lock)), flags.lock));
  std::vector<PackageLayer> layers = LAZYFS_TRY(EnsurePackageLayers(lock, LayerOptions(flags)));
  nlohmann::json dists = nlohmann::json::array();
  uint64_t downloaded = 0;
  for (const PackageLayer& layer : layers) {
    dists.push_back(PackageLayerJson(layer));
    downloaded += layer.wheel_bytes;
  }
  return nlohmann::json{{"layers", dists}, {"downloaded_bytes", downloaded}};
}

Result<nlohmann::json> Install(const InstallFlags& flags) {
  // The compile sandboxes read SIGCHLD and the signals they forward from a signalfd, which sees only
  // signals every thread blocks: block them before the transport starts its thread, and act on them
  // between dists (a download or compile in progress finishes or times out first).
  run::SignalWatch signals = LAZYFS_TRY(run::SignalWatch::Start());
  pkg::LockFile lock = LAZYFS_TRY(pkg::ParseLockFile(LAZYFS_TRY(ReadWholeFile(flags.lock)), flags.lock));
  LAZYFS_TRY(MakeDirs(flags.to));
  std::shared_ptr<fetch::HttpTransport> transport = LAZYFS_TRY(PkgTransport(flags.ca_file, flags.netrc));
  TempDir downloads = LAZYFS_TRY(TempDir::Create(flags.to, ".download-"));

  pkg::WheelInstallOptions options;
  options.interpreter = flags.interpreter;
  const PackageLayerOptions layer_options = LayerOptions(flags);
  const std::string interpreter = flags.compile_in.empty() ? "" : LAZYFS_TRY(LockInterpreter(lock));
  nlohmann::json dists = nlohmann::json::array();
  uint64_t downloaded = 0;
  for (const pkg::LockedPackage& p : lock.packages) {
    while (int sig = signals.Next()) {
      if (sig != SIGCHLD) return Error(ErrorCode::kInternal, "interrupted by signal " + std::to_string(sig));
    }
    std::string home = flags.to + "/" + p.name + "==" + p.version;
    std::string files = home + "/files";
    nlohmann::json entry{{"name", p.name}, {"version", p.version}, {"path", files}};
    if (std::filesystem::exists(files)) {
      entry["state"] = "present";
    } else {
      LAZYFS_TRY(MakeDirs(home));
      std::string wheel = downloads.path() + "/" + p.filename;
      uint64_t bytes = LAZYFS_TRY(pkg::DownloadWheel(*transport, p.url, p.sha256, wheel));
      downloaded += bytes;
      pkg::WheelInstallOptions dist_options = options;
      if (!flags.compile_in.empty()) {
        dist_options.finish_tree = CompileFinisher(layer_options, PackageLayerKey{p.name, p.version, p.sha256, interpreter});
      }
      Result<pkg::InstalledWheel> installed = pkg::InstallWheel(wheel, p.sha256, files, dist_options);
      std::filesystem::remove(wheel);
      if (!installed && std::filesystem::exists(files)) {
        entry["state"] = "present";  // another install of the same lock won the rename
      } else if (!installed) {
        return std::move(installed).error();
      } else {
        entry["state"] = "installed";
        entry["files"] = installed->files;
        entry["bytes"] = installed->bytes;
        entry["wheel_bytes"] = bytes;
        entry["scripts"] = installed->scripts;
      }
    }
    if (!flags.quiet && !flags.json) {
      std::fprintf(stderr, "%s %s==%s\n", entry["state"].get<std::string>().c_str(), p.name.c_str(), p.version.c_str());
    }
    dists.push_back(std::move(entry));
  }
  return nlohmann::json{{"to", flags.to}, {"dists", dists}, {"downloaded_bytes", downloaded}};
}

}  // namespace

void AddPkgInstallCommand(CLI::App& pkg, int& exit_code) {
  auto flags = std::make_shared<InstallFlags>();
  CLI::App* install = pkg.add_subcommand(
      "install",
      "Make a package layer for every dist of a lock file (wheels verified by sha256), on this host and with "
      "--push in a registry; or with --to, install the dists into DIR/NAME==VERSION/files");
  install->add_option("packages", flags->packages,
                      "a lock file written by `lazyfs pkg resolve -o`, or requirements, resolved for the python3 of "
                      "--compile-in IMAGE")
      ->required();
  install->add_option("--index-url", flags->index_url, "package index for requirements (PEP 503/691)");
  install->add_option("--to", flags->to, "install plain directories here instead of making package layers");
  install->add_option("--cache-dir", flags->cache_dir, "the host cache holding package layers (default: $LAZYFS_CACHE_DIR, else /var/lib/lazyfs/cache)");
  install->add_option("--registry", flags->registry,
                      "docker://REG/PREFIX: look layers up at PREFIX/NAME:VERSION-INTERPRETER before building them");
  install->add_flag("--push", flags->push, "push every layer of the lock to --registry (built here when missing)");
  install->add_option("--insecure-registry", flags->insecure_registries, "plain http to this registry (HOST:PORT)");
  install->add_option("--interpreter", flags->interpreter, "#! of the installed scripts: the target's python3")
      ->capture_default_str();
  install->add_option("--ca-file", flags->ca_file, "PEM bundle to trust for https instead of the system's");
  install->add_option("--netrc", flags->netrc, "netrc file with index credentials (default: $NETRC, else ~/.netrc)");
  install->add_option("--compile-in", flags->compile_in,
                      "image whose python3 compiles the .pyc (oci:DIR:TAG or docker://...; default: none)");
  install->add_option("--installer-memory", flags->installer_memory, "memory limit of the compile sandbox")
      ->capture_default_str();
  install->add_option("--installer-timeout", flags->installer_timeout, "seconds the compile of one dist may take")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  install->add_flag("--json", flags->json, "print JSON");
  install->add_flag("-q,--quiet", flags->quiet, "no line per dist on stderr");
  install->callback([flags, &exit_code] {
    RunCommandOptions context;
    context.cache_dir = flags->cache_dir;
    context.source.insecure_registries = flags->insecure_registries;
    context.source.ca_file = flags->ca_file;
    context.index_url = flags->index_url;
    context.keep_mount_seconds = 0;
    Result<std::string> lock = LockFileFor(flags->packages, flags->compile_in, context);
    if (!lock) {
      std::fprintf(stderr, "lazyfs pkg install: %s\n", lock.error().ToString().c_str());
      exit_code = 1;
      return;
    }
    flags->lock = *lock;
    const bool layers = flags->to.empty();
    Result<nlohmann::json> done = layers ? InstallLayers(*flags) : Install(*flags);
    if (!done) {
      std::fprintf(stderr, "lazyfs pkg install: %s\n", done.error().ToString().c_str());
      exit_code = 1;
      return;
    }
    if (flags->json) {
      std::printf("%s\n", done->dump(2).c_str());
    } else {
      const nlohmann::json& dists = (*done)[layers ? "layers" : "dists"];
      size_t fresh = 0;
      for (const auto& d : dists) fresh += layers ? d["where"] == "built" : d["state"] == "installed";
      std::string downloaded = HumanSize((*done)["downloaded_bytes"].get<uint64_t>());
      if (layers) {
        std::printf("%zu package layers (%zu built now, %s downloaded)\n", dists.size(), fresh, downloaded.c_str());
      } else {
        std::printf("%zu dists in %s (%zu installed now, %s downloaded)\n", dists.size(), flags->to.c_str(), fresh,
                    downloaded.c_str());
      }
    }
    exit_code = 0;
  });
}

}  // namespace lazyfs::tools
