// The lazyfs command line: one subcommand per job, each in its own *_command.cc.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cache/chunk_store.h"
#include "common/log.h"
#include "fetch/image_ref.h"
#include "tools/convert_command.h"
#include "tools/mount_command.h"
#include "tools/stats_command.h"

namespace {

lazyfs::LogLevel ParseLevelOrDie(const std::string& text) {
  lazyfs::LogLevel level = lazyfs::LogLevel::kInfo;
  if (!lazyfs::ParseLogLevel(text, &level)) {
    std::fprintf(stderr, "lazyfs: unknown log level '%s'\n", text.c_str());
    std::exit(2);
  }
  return level;
}

std::string DefaultCacheDir() {
  const char* env = std::getenv("LAZYFS_CACHE_DIR");
  return env && *env ? env : lazyfs::cache::kDefaultCacheDir;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lazyfs: mount container images lazily; chunks are fetched on first read into a shared cache"};
  app.require_subcommand(1);
  app.fallthrough();  // global options such as --log-level may also follow the subcommand
  app.set_version_flag("--version", "lazyfs 0.1.0");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn, error or off")->capture_default_str();

  // mount
  lazyfs::tools::MountCommandOptions mount;
  mount.cache_dir = DefaultCacheDir();
  CLI::App* mount_cmd = app.add_subcommand("mount", "Mount an image read-only; file contents are fetched lazily");
  mount_cmd->add_option("image", mount.ref, "oci:DIR[:TAG]")->required();
  mount_cmd->add_option("mountpoint", mount.mountpoint, "an existing directory")->required();
  mount_cmd->add_flag("-f,--foreground", mount.foreground, "stay in the foreground, log to stderr");
  mount_cmd->add_option("--cache-dir", mount.cache_dir, "shared chunk cache ($LAZYFS_CACHE_DIR)")->capture_default_str();
  mount_cmd->add_option("--log-file", mount.log_file, std::string("log file (default in the background: ") +
                                                          lazyfs::tools::kDefaultLogFile + ")");
  mount_cmd->add_flag("--allow-other", mount.allow_other, "let other users access the mount");
  mount_cmd->add_flag("--debug-fuse", mount.debug_fuse, "trace every FUSE request (foreground only)");
  mount_cmd->add_option("--platform", mount.platform, "platform to pick from a multi-platform image")->capture_default_str();
  mount_cmd->add_option("--threads", mount.threads, "FUSE worker threads")->capture_default_str();

  // umount
  std::string umount_point;
  CLI::App* umount_cmd = app.add_subcommand("umount", "Unmount a lazyfs mount (the daemon then exits)");
  umount_cmd->add_option("mountpoint", umount_point)->required();

  // convert
  std::string convert_src, convert_dst;
  lazyfs::tools::ConvertOptions convert;
  CLI::App* convert_cmd = app.add_subcommand("convert", "Rewrite an image's layers as eStargz (still an ordinary image)");
  convert_cmd->add_option("source", convert_src, "oci:DIR[:TAG] or docker-archive:FILE")->required();
  convert_cmd->add_option("destination", convert_dst, "oci:DIR[:TAG]")->required();
  convert_cmd->add_option("--chunk-size", convert.chunk_size, "uncompressed bytes per chunk")->capture_default_str();
  convert_cmd->add_option("--platform", convert.platform)->capture_default_str();
  convert_cmd->add_flag("-q,--quiet", convert.quiet, "no progress output");

  // stats
  std::string stats_point;
  bool stats_all = false;
  bool stats_json = false;
  CLI::App* stats_cmd = app.add_subcommand("stats", "Amplification report of a running mount: needed vs fetched");
  stats_cmd->add_option("mountpoint", stats_point);
  stats_cmd->add_flag("--all", stats_all, "every lazyfs mount on this host");
  stats_cmd->add_flag("--json", stats_json, "machine-readable output (schema in tools/stats_command.h)");

  CLI11_PARSE(app, argc, argv);
  lazyfs::SetLogLevel(ParseLevelOrDie(log_level));

  if (*mount_cmd) return lazyfs::tools::RunMount(mount);
  if (*umount_cmd) return lazyfs::tools::RunUmount(umount_point);
  if (*stats_cmd) {
    if (stats_point.empty() && !stats_all) {
      std::fprintf(stderr, "lazyfs: stats needs a MOUNTPOINT or --all\n");
      return 2;
    }
    return lazyfs::tools::RunStats(stats_point, stats_all, stats_json);
  }
  if (*convert_cmd) {
    auto src = lazyfs::fetch::ImageRef::Parse(convert_src);
    auto dst = lazyfs::fetch::ImageRef::Parse(convert_dst);
    if (!src || !dst) {
      std::fprintf(stderr, "lazyfs: %s\n", (!src ? src.error() : dst.error()).ToString().c_str());
      return 2;
    }
    lazyfs::Status status = lazyfs::tools::ConvertImage(*src, *dst, convert);
    if (!status) {
      std::fprintf(stderr, "lazyfs: convert: %s\n", status.error().ToString().c_str());
      return 1;
    }
    return 0;
  }
  return 2;
}
