// Subcommand registration: each *_command.cc adds its own subcommand(s) to the CLI11 app, with a callback
// that runs the command and stores the process exit code. lazyfs_core.cc only lists them, so adding a command
// touches one line there.
#pragma once

#include <CLI/CLI.hpp>

#include "tools/run_command.h"

namespace lazyfs::tools {

void AddMountCommands(CLI::App& app, int& exit_code);    // mount, umount
void AddConvertCommand(CLI::App& app, int& exit_code);   // convert
void AddStatsCommand(CLI::App& app, int& exit_code);     // stats
void AddCacheCommand(CLI::App& app, int& exit_code);     // cache stats|gc|verify|rm
void AddTraceCommand(CLI::App& app, int& exit_code);     // trace show|merge|replay|push
void AddPushCommand(CLI::App& app, int& exit_code);      // push
void AddRunCommand(CLI::App& app, int& exit_code, ImageResolver resolve,
                   RunPackagesPreparer prepare_packages);  // run
void AddPsCommand(CLI::App& app, int& exit_code);        // ps
void AddPkgCommand(CLI::App& app, int& exit_code);       // pkg show|resolve|install
void AddPkgInstallCommand(CLI::App& pkg, int& exit_code);  // pkg install (under `pkg`)

// --version and --log-level (default "info", bound to `log_level`, which must outlive the parse); one
// subcommand required.
void AddGlobalOptions(CLI::App& app, std::string& log_level);

// The default cache directory: $LAZYFS_CACHE_DIR, else cache::kDefaultCacheDir.
std::string DefaultCacheDir();

}  // namespace lazyfs::tools
