// `lazyfs ps`: the sandboxes `lazyfs run` is running on this host, from their records under
// /run/lazyfs/sandboxes (only those whose `lazyfs run` still holds its lock).
//
// Thread safety: single-threaded command code.
#include <cstdio>
#include <ctime>

#include <fmt/format.h>

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

int RunPs(bool json) {
  std::vector<SandboxRecord> sandboxes = ListLiveSandboxes();
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const SandboxRecord& r : sandboxes) out.push_back(r.ToJson());
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%-12s  %-8s  %-6s  %-40s  %s\n", "ID", "PID", "AGE", "IMAGE", "COMMAND");
  for (const SandboxRecord& r : sandboxes) {
    std::printf("%-12s  %-8lld  %-6s  %-40s  %s\n", r.id.c_str(), static_cast<long long>(r.pid), Age(r.started).c_str(),
                r.image.c_str(), Joined(r.command).c_str());
  }
  return 0;
}

}  // namespace

void AddPsCommand(CLI::App& app, int& exit_code) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("ps", "List the sandboxes `lazyfs run` is running on this host");
  cmd->add_flag("--json", *json, "machine-readable output: [{id, image, manifest_digest, pid, command, started, dir}]");
  cmd->callback([json, &exit_code] { exit_code = RunPs(*json); });
}

}  // namespace lazyfs::tools
