// `lazyfs pkg install LOCK --to DIR`: every dist of a lock file (`lazyfs pkg resolve -o`) installed into
// its own directory, OpenLambda's layout: DIR/NAME==VERSION/files, one wheel each (pkg/wheel_install.h),
// downloaded and verified against the lock's sha256 first (pkg/wheel_download.h). A directory that is
// there is complete (installs are renamed into place), so a second run installs only what is missing,
// and concurrent runs on one DIR never leave a half-installed dist.
#include <cstdio>
#include <cstdlib>
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
#include "tools/commands.h"

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
};

// Removes the per-run download directory.
struct DownloadDir {
  std::string path;
  ~DownloadDir() {
    std::error_code ignored;
    if (!path.empty()) std::filesystem::remove_all(path, ignored);
  }
};

Result<nlohmann::json> Install(const InstallFlags& flags) {
  pkg::LockFile lock = LAZYFS_TRY(pkg::ParseLockFile(LAZYFS_TRY(ReadWholeFile(flags.lock)), flags.lock));
  LAZYFS_TRY(MakeDirs(flags.to));
  fetch::CurlTransportOptions transport_options;
  transport_options.ca_file = flags.ca_file;
  transport_options.netrc_file = flags.netrc;
  std::shared_ptr<fetch::HttpTransport> transport = LAZYFS_TRY(fetch::NewCurlTransport(transport_options));
  std::string pattern = flags.to + "/.download-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return IoError("creating a download directory in " + flags.to);
  DownloadDir downloads{pattern};

  pkg::WheelInstallOptions options;
  options.interpreter = flags.interpreter;
  nlohmann::json dists = nlohmann::json::array();
  uint64_t downloaded = 0;
  for (const pkg::LockedPackage& p : lock.packages) {
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
      Result<pkg::InstalledWheel> installed = pkg::InstallWheel(wheel, p.sha256, files, options);
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
  install->add_option("--netrc", flags->netrc, "netrc file with index credentials");
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
