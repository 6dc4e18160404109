// `lazyfs ps`: the sandboxes `lazyfs run` is running on this host, from their records under
// /run/lazyfs/sandboxes (only those whose `lazyfs run` still holds its lock), and the image mounts they
// share, including those that linger without a sandbox (--keep-mount) until their idle timeout.
//
// Thread safety: single-threaded command code.
#include <cstdio>
#include <ctime>
#include <filesystem>

#include <fmt/format.h>

#include "run/control_socket.h"
#include "run/image_dir.h"
#include "run/sandbox_state.h"
#include "tools/commands.h"
#include "tools/run_command.h"

namespace lazyfs::tools {
namespace {

std::string Joined(const std::vector<std::string>& args) {
  std::string out;
  for (const std::string& a : args) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

std::string Age(int64_t started) {
  int64_t s = std::max<int64_t>(0, static_cast<int64_t>(std::time(nullptr)) - started);
  if (s < 120) return fmt::format("{}s", s);
  if (s < 7200) return fmt::format("{}m", s / 60);
  return fmt::format("{}h", s / 3600);
}

// The image mounts of `lazyfs run` that a daemon serves, as their daemons describe themselves:
// [{manifest_digest, image, mountpoint, pid, idle: null | {timeout_s, users, idle_s, unmounts_in_s}}].
// idle is null for a mount without an idle timeout (--keep-mount 0), which lives only while used.
nlohmann::json ImageMounts() {
  nlohmann::json out = nlohmann::json::array();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(run::ImagesDir(), ec)) {
    run::ImageDir dir(entry.path().string());
    if (!run::IsMountPoint(dir.rootfs())) continue;
    std::string socket = run::ControlSocketPath(dir.rootfs());
    Result<std::string> reply = run::ControlRequest(socket, "info");
    nlohmann::json info = reply ? nlohmann::json::parse(*reply, nullptr, false) : nlohmann::json();
    if (info.is_object() && !info.contains("pid")) {  // a daemon from before "info": ask for its stats
      reply = run::ControlRequest(socket, "stats");
      nlohmann::json stats = reply ? nlohmann::json::parse(*reply, nullptr, false) : nlohmann::json();
      info = nlohmann::json::object();
      for (const char* key : {"pid", "mountpoint", "image", "manifest_digest", "idle"}) {
        if (stats.is_object() && stats.contains(key)) info[key] = stats[key];
      }
    }
    // Without a pid no daemon answers: the mount of a dead one, which the next `lazyfs run` replaces.
    if (!info.contains("pid")) continue;
    if (!info.contains("idle")) info["idle"] = nullptr;
    out.push_back(info);
  }
  return out;
}

std::string MountState(const nlohmann::json& idle) {
  if (!idle.is_object()) return "in use";
  if (idle["idle_s"].is_null()) return fmt::format("in use by {}", idle.value("users", 0));
  return fmt::format("idle {:.0f}s, unmounts in {:.0f}s", idle.value("idle_s", 0.0), idle.value("unmounts_in_s", 0.0));
}

int RunPs(bool json, bool mounts) {
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    if (mounts) {
      out = ImageMounts();
    } else {
      for (const run::SandboxRecord& r : run::ListLiveSandboxes()) out.push_back(r.ToJson());
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  if (!mounts) {
    std::printf("%-12s  %-8s  %-6s  %-40s  %s\n", "ID", "PID", "AGE", "IMAGE", "COMMAND");
    for (const run::SandboxRecord& r : run::ListLiveSandboxes()) {
      std::printf("%-12s  %-8lld  %-6s  %-40s  %s\n", r.id.c_str(), static_cast<long long>(r.pid),
                  Age(r.started).c_str(), r.image.c_str(), Joined(r.command).c_str());
    }
  }
  nlohmann::json images = ImageMounts();
  if (images.empty() && !mounts) return 0;
  std::printf("%s%-19s  %-8s  %-32s  %s\n", mounts ? "" : "\nimage mounts:\n", "MANIFEST", "PID", "STATE", "IMAGE");
  for (const nlohmann::json& m : images) {
    std::string manifest = m.value("manifest_digest", "");
    std::printf("%-19s  %-8lld  %-32s  %s\n", manifest.substr(0, 19).c_str(), m.value("pid", 0LL),
                MountState(m["idle"]).c_str(), m.value("image", "").c_str());
  }
  return 0;
}

}  // namespace

void AddPsCommand(CLI::App& app, int& exit_code) {
  auto json = std::make_shared<bool>(false);
  auto mounts = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("ps", "List the sandboxes `lazyfs run` is running on this host, and their image mounts");
  cmd->add_flag("--json", *json, "machine-readable output: [{id, image, manifest_digest, pid, command, started, dir}]");
  cmd->add_flag("--mounts", *mounts,
                "only the image mounts, also those lingering without a sandbox (--keep-mount); with --json: "
                "[{manifest_digest, image, mountpoint, pid, idle: null|{timeout_s, users, idle_s, unmounts_in_s}}]");
  cmd->callback([json, mounts, &exit_code] { exit_code = RunPs(*json, *mounts); });
}

}  // namespace lazyfs::tools
