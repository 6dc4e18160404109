// What lazyfs (the front end) and lazyfs-core share of the command line (see commands.h).
#include <cstdlib>
#include <string>

#include "cache/chunk_store.h"
#include "common/log.h"
#include "tools/commands.h"
#include "common/version.h"

namespace lazyfs::tools {

std::string DefaultCacheDir() {
  const char* env = std::getenv("LAZYFS_CACHE_DIR");
  return env && *env ? env : cache::kDefaultCacheDir;
}

void AddGlobalOptions(CLI::App& app, std::string& log_level) {
  app.require_subcommand(1);
  app.fallthrough();  // global options such as --log-level may also follow the subcommand
  app.set_version_flag("--version", std::string("lazyfs ") + kVersion);
  app.add_option("--log-level", log_level, "debug, info, warn, error or off")->capture_default_str();
  app.parse_complete_callback([&log_level] {
    LogLevel level;
    if (!ParseLogLevel(log_level, &level)) throw CLI::ValidationError("--log-level", "unknown level " + log_level);
    SetLogLevel(level);
  });
}

}  // namespace lazyfs::tools
