// The lazyfs command line: global options here, one subcommand per job, each registered by its own file.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>

#include "cache/chunk_store.h"
#include "common/log.h"
#include "tools/commands.h"

namespace lazyfs::tools {

std::string DefaultCacheDir() {
  const char* env = std::getenv("LAZYFS_CACHE_DIR");
  return env && *env ? env : cache::kDefaultCacheDir;
}

}  // namespace lazyfs::tools

int main(int argc, char** argv) {
  CLI::App app{"lazyfs: mount container images lazily; chunks are fetched on first read into a shared cache"};
  app.require_subcommand(1);
  app.fallthrough();  // global options such as --log-level may also follow the subcommand
  app.set_version_flag("--version", "lazyfs 0.1.0");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn, error or off")->capture_default_str();
  app.parse_complete_callback([&] {
    lazyfs::LogLevel level;
    if (!lazyfs::ParseLogLevel(log_level, &level)) throw CLI::ValidationError("--log-level", "unknown level " + log_level);
    lazyfs::SetLogLevel(level);
  });

  int exit_code = 0;
  lazyfs::tools::AddMountCommands(app, exit_code);
  lazyfs::tools::AddConvertCommand(app, exit_code);
  lazyfs::tools::AddStatsCommand(app, exit_code);
  lazyfs::tools::AddCacheCommand(app, exit_code);
  lazyfs::tools::AddTraceCommand(app, exit_code);
  lazyfs::tools::AddPushCommand(app, exit_code);
  lazyfs::tools::AddRunCommand(app, exit_code);
  lazyfs::tools::AddPsCommand(app, exit_code);

  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
