#include "fs/fuse_mount.h"

#include <fuse_log.h>

#include <cstdarg>
#include <vector>

#include "common/log.h"

namespace lazyfs::fs {
namespace {

void FuseLog(enum fuse_log_level level, const char* format, va_list ap) {
  char line[1024];
  vsnprintf(line, sizeof line, format, ap);
  std::string_view text(line);
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  LogLevel ours = level <= FUSE_LOG_ERR ? LogLevel::kError : level <= FUSE_LOG_WARNING ? LogLevel::kWarn
                  : level <= FUSE_LOG_INFO ? LogLevel::kInfo : LogLevel::kDebug;
  if (LogEnabled(ours)) LogLine(ours, std::string("fuse: ") + std::string(text));
}

}  // namespace

void RouteFuseLogs() { fuse_set_log_func(FuseLog); }

Result<std::unique_ptr<FuseMount>> FuseMount::Mount(Filesystem& fs, const MountOptions& options) {
  std::unique_ptr<FuseMount> mount(new FuseMount());
  mount->ctx_.fs = &fs;
  mount->options_ = options;
  std::string opts = "ro,nodev,nosuid,default_permissions,fsname=lazyfs,subtype=lazyfs";
  if (options.allow_other) opts += ",allow_other";
  std::vector<std::string> argv_strings = {"lazyfs", "-o", opts};
  if (options.debug) argv_strings.push_back("-d");
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  mount->session_ = fuse_session_new(&args, &LowlevelOps(), sizeof(fuse_lowlevel_ops), &mount->ctx_);
  fuse_opt_free_args(&args);
  if (!mount->session_) return InvalidArgument("could not create the FUSE session (bad mount options?)");
  if (fuse_set_signal_handlers(mount->session_) != 0) return Internal("could not install signal handlers");
  mount->signals_installed_ = true;
  if (fuse_session_mount(mount->session_, options.mountpoint.c_str()) != 0) {
    return IoError("could not mount at " + options.mountpoint + " (does it exist? is /dev/fuse usable?)");
  }
  mount->mounted_ = true;
  return mount;
}

FuseMount::~FuseMount() {
  if (!session_) return;
  if (signals_installed_) fuse_remove_signal_handlers(session_);
  if (mounted_) fuse_session_unmount(session_);
  fuse_session_destroy(session_);
}

Status FuseMount::Serve() {
  fuse_loop_config* config = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(config, options_.max_threads);
  fuse_loop_cfg_set_idle_threads(config, 4);
  int rc = fuse_session_loop_mt(session_, config);
  fuse_loop_cfg_destroy(config);
  if (rc < 0) return Internal("FUSE loop failed: " + std::string(strerror(-rc)));
  return Ok();
}

}  // namespace lazyfs::fs
