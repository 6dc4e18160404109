// lazyfs-core, the whole lazyfs command line: global options here, one subcommand per job, each
// registered by its own file. Users call `lazyfs` (tools/lazyfs.cc), which runs `lazyfs run` on a live
// mount itself and hands everything else to this binary.
#include <CLI/CLI.hpp>

#include "tools/commands.h"
#include "tools/run_packages.h"
#include "tools/run_resolve.h"

int main(int argc, char** argv) {
  CLI::App app{"lazyfs: mount container images lazily; chunks are fetched on first read into a shared cache"};
  std::string log_level = "info";
  lazyfs::tools::AddGlobalOptions(app, log_level);

  int exit_code = 0;
  lazyfs::tools::AddMountCommands(app, exit_code);
  lazyfs::tools::AddConvertCommand(app, exit_code);
  lazyfs::tools::AddStatsCommand(app, exit_code);
  lazyfs::tools::AddCacheCommand(app, exit_code);
  lazyfs::tools::AddTraceCommand(app, exit_code);
  lazyfs::tools::AddPushCommand(app, exit_code);
  lazyfs::tools::AddRunCommand(app, exit_code, lazyfs::tools::ResolveImageRef, lazyfs::tools::PrepareRunPackages);
  lazyfs::tools::AddPsCommand(app, exit_code);
  lazyfs::tools::AddPkgCommand(app, exit_code);

  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
