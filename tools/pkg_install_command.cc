// `lazyfs pkg install LOCK --to DIR`: every dist of a lock file (`lazyfs pkg resolve -o`) installed into
// its own directory, OpenLambda's layout: DIR/NAME==VERSION/files, one wheel each (pkg/wheel_install.h),
// downloaded and verified against the lock's sha256 first (pkg/wheel_download.h). A directory that is
// there is complete (installs are renamed into place), so a second run installs only what is missing,
// and concurrent runs on one DIR never leave a half-installed dist.
//
// With --compile-in IMAGE, each tree's .pyc are compiled by the image's own python3 before the tree is
// published: `lazyfs run` of IMAGE (network off, --installer-memory, --installer-timeout) with the tree
// mounted writable, `python3 -m compileall` with unchecked-hash invalidation (a read-only mount can take
// no later writes, and the files' mtimes say nothing on a lazy mount) and the paths the dist will have in
// a sandbox (/packages/NAME==VERSION/files) written into the code objects for tracebacks.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "common/human_size.h"
#include "fetch/http_transport.h"
#include "pkg/lock_file.h"
#include "pkg/wheel_download.h"
#include "pkg/wheel_install.h"
#include "run/signal_watch.h"
#include "tools/commands.h"
#include "tools/pkg_transport.h"
#include "tools/run_command.h"
#include "tools/run_resolve.h"

namespace lazyfs::tools {
namespace {

struct InstallFlags {
  std::string lock;
  std::string to = "/packages";
  std::string interpreter = "/usr/bin/python3";
  std::string ca_file;
  std::string netrc;
  bool json = false;
  bool quiet = false;
  std::string compile_in;  // image whose python3 compiles the .pyc; "" = none
  std::string installer_memory = "512M";
  int installer_timeout = 600;  // seconds
};

constexpr const char* kInstallMount = "/lazyfs-install";

// The .pyc step: compileall in a sandbox of the target image, on the tree bound at kInstallMount.
pkg::WheelInstallOptions::FinishTree CompileIn(const InstallFlags& flags, const std::string& sandbox_path) {
  return [&flags, sandbox_path](const std::string& tree) -> Status {
    RunCommandOptions run;
    run.ref = flags.compile_in;
    run.command = {"timeout", std::to_string(flags.installer_timeout), "python3", "-m", "compileall", "-q",
                   "--invalidation-mode", "unchecked-hash", "-d", sandbox_path, kInstallMount};
    run.memory = flags.installer_memory;
    run.volumes = {tree + ":" + kInstallMount + ":rw"};
    run.network = "none";
    run.cache_dir = DefaultCacheDir();
    // No image mount outlives the install (a lingering one would serve later runs with this run's
    // settings); each dist's compile mounts the image again, from the warm cache.
    run.keep_mount_seconds = 0;
    int code = RunRun(run, ResolveImageRef);
    if (code == 0) return Ok();
    if (code == 124) {
      return Error(ErrorCode::kTimeout, "compiling .pyc in " + flags.compile_in + " took longer than " +
                                            std::to_string(flags.installer_timeout) + " s (--installer-timeout)");
    }
    return Internal("compiling .pyc in " + flags.compile_in + " failed (exit " + std::to_string(code) +
                    (code == 127 ? ": the image has no python3 or timeout" : "") + ")");
  };
}

// Removes the per-run download directory.
struct DownloadDir {
  std::string path;
  ~DownloadDir() {
    std::error_code ignored;
    if (!path.empty()) std::filesystem::remove_all(path, ignored);
  }
};

Result<nlohmann::json> Install(const InstallFlags& flags) {
  // The compile sandboxes read SIGCHLD and the signals they forward from a signalfd, which sees only
  // signals every thread blocks: block them before the transport starts its thread, and act on them
  // between dists (a download or compile in progress finishes or times out first).
  run::SignalWatch signals = LAZYFS_TRY(run::SignalWatch::Start());
  pkg::LockFile lock = LAZYFS_TRY(pkg::ParseLockFile(LAZYFS_TRY(ReadWholeFile(flags.lock)), flags.lock));
  LAZYFS_TRY(MakeDirs(flags.to));
  std::shared_ptr<fetch::HttpTransport> transport = LAZYFS_TRY(PkgTransport(flags.ca_file, flags.netrc));
  std::string pattern = flags.to + "/.download-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return IoError("creating a download directory in " + flags.to);
  DownloadDir downloads{pattern};

  pkg::WheelInstallOptions options;
  options.interpreter = flags.interpreter;
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
      std::string wheel = downloads.path + "/" + p.filename;
      uint64_t bytes = LAZYFS_TRY(pkg::DownloadWheel(*transport, p.url, p.sha256, wheel));
      downloaded += bytes;
      pkg::WheelInstallOptions dist_options = options;
      if (!flags.compile_in.empty()) {
        dist_options.finish_tree = CompileIn(flags, "/packages/" + p.name + "==" + p.version + "/files");
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
      "install", "Install every dist of a lock file into DIR/NAME==VERSION/files (wheels verified by sha256)");
  install->add_option("lock", flags->lock, "lock file written by `lazyfs pkg resolve -o`")->required();
  install->add_option("--to", flags->to, "directory of the package directories")->capture_default_str();
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
    Result<nlohmann::json> installed = Install(*flags);
    if (!installed) {
      std::fprintf(stderr, "lazyfs pkg install: %s\n", installed.error().ToString().c_str());
      exit_code = 1;
      return;
    }
    if (flags->json) {
      std::printf("%s\n", installed->dump(2).c_str());
    } else {
      size_t fresh = 0;
      for (const auto& d : (*installed)["dists"]) fresh += d["state"] == "installed";
      std::printf("%zu dists in %s (%zu installed now, %s downloaded)\n", (*installed)["dists"].size(),
                  flags->to.c_str(), fresh, HumanSize((*installed)["downloaded_bytes"].get<uint64_t>()).c_str());
    }
    exit_code = 0;
  });
}

}  // namespace lazyfs::tools
