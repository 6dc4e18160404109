// `lazyfs`, the command users call: a small front end to lazyfs-core (tools/lazyfs_core.cc).
//
// Why two binaries: a warm `lazyfs run` (its image mount lingering) is a few milliseconds of work, and
// loading libcurl's, libarchive's and libfuse's dependency trees costs about as much again (measured: 5.7 ms
// to start lazyfs-core, 2 ms for this binary). So this binary links only what `run` needs on a live mount:
// it runs such a `lazyfs run` itself; any other command, and a run whose image must be resolved or
// mounted, is exec'd as lazyfs-core (same arguments, same pid) from the directory this binary is in.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "tools/commands.h"
#include "tools/run_command.h"

namespace {

// The first argument that is neither a global option nor its value: the subcommand's name.
std::string_view SubcommandName(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--log-level") {
      ++i;
    } else if (!arg.starts_with("-")) {
      return arg;
    } else if (arg == "--") {
      return {};
    }
  }
  return {};
}

// Replaces this process with lazyfs-core and the same arguments; returns only on failure.
int ExecCore(char** argv) {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    std::fprintf(stderr, "lazyfs: readlink /proc/self/exe: %s\n", ec.message().c_str());
    return 125;
  }
  std::string core = (self.parent_path() / "lazyfs-core").string();
  ::execv(core.c_str(), argv);
  std::fprintf(stderr, "lazyfs: cannot run %s: %s\n", core.c_str(), std::strerror(errno));
  return 125;
}

}  // namespace

int main(int argc, char** argv) {
  if (SubcommandName(argc, argv) != "run") return ExecCore(argv);

  CLI::App app{"lazyfs: mount container images lazily; chunks are fetched on first read into a shared cache"};
  std::string log_level = "info";
  lazyfs::tools::AddGlobalOptions(app, log_level);
  int exit_code = 0;
  lazyfs::tools::AddRunCommand(app, exit_code, nullptr, nullptr);  // no resolver: live mounts only
  CLI11_PARSE(app, argc, argv);
  // Nothing was started: lazyfs-core resolves the image and mounts it. Signals that arrived meanwhile stay
  // blocked and pending across exec, so lazyfs-core's run sees them before it starts the container.
  if (exit_code == lazyfs::tools::kRunNeedsResolver) return ExecCore(argv);
  return exit_code;
}
