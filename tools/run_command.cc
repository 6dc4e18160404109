// `lazyfs run`: attaches to the image's shared lazy mount (resolving the image and mounting it when no
// live mount serves it), stacks an overlay on it, writes the bundle and runs it with
// `crun run --detach` (waited for as a child subreaper), then tears everything down in reverse order
// through RAII. The pieces are the runner library's (run/); this file turns the command line into them
// and orders them. Single-threaded; cross-process coordination through flock(2).
//
// The path to a warm start is kept short on purpose: no image resolution and no control-socket request
// when the mount lingers, one crun process, posix_spawn (no page-table copy of this process) for it.
#include "tools/run_command.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "common/fd.h"
#include "common/log.h"
#include "fetch/image_ref.h"
#include "run/container.h"
#include "run/image_dir.h"
#include "run/image_use.h"
#include "run/oci_bundle.h"
#include "run/sandbox_state.h"
#include "run/signal_watch.h"
#include "tools/commands.h"

namespace lazyfs::tools {
namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;
using run::ExitStatus;
using run::RunOptions;

constexpr int kLazyfsFailed = run::kRunnerFailed;
constexpr const char* kTiniPath = "/usr/bin/tini-static";

// The image's /etc/passwd or /etc/group, resolved inside the rootfs: an image's absolute symlink must not
// hand us a host file, nor a FIFO hang the run before its signals are watched. Absent is empty, as in
// Docker; anything else that is not a small regular file fails the run.
Result<std::string> ReadUserDatabase(const std::string& rootfs, const std::string& path) {
  constexpr uint64_t kMaxUserDatabase = 16 << 20;
  Result<std::string> text = ReadFileInRoot(rootfs, path, kMaxUserDatabase);
  if (!text && text.error().code() == ErrorCode::kNotFound) return std::string();
  if (!text) return std::move(text).error().Context("the image's user database");
  return text;
}

struct Prepared {
  std::string ref;
  RunOptions run;
};

// Checks the options and turns them into RunOptions; touches neither the image nor the host state.
Result<Prepared> Prepare(const RunCommandOptions& options) {
  Prepared p;
  p.ref = LAZYFS_TRY(AbsoluteRef(options.ref));
  if (options.keep_mount_seconds < 0) return InvalidArgument("--keep-mount must be >= 0 seconds");
  if (!options.command.empty()) p.run.command = options.command;
  for (const std::string& e : options.env) {
    if (e.find('=') == std::string::npos) return InvalidArgument("--env " + e + ": want K=V");
  }
  p.run.env = options.env;
  for (const std::string& v : options.volumes) p.run.volumes.push_back(LAZYFS_TRY(run::ParseVolume(v)));
  if (options.network != "none" && options.network != "host") return InvalidArgument("--network must be none or host");
  p.run.host_network = options.network == "host";
  if (p.run.host_network && ::access("/etc/resolv.conf", R_OK) == 0) p.run.resolv_conf = "/etc/resolv.conf";
  p.run.workdir = options.workdir;
  p.run.allow_setuid = options.allow_setuid;
  if (!options.memory.empty()) p.run.memory_bytes = LAZYFS_TRY(run::ParseByteSize(options.memory));
  if (options.cpus > 0) p.run.cpus = options.cpus;
  if (options.pids > 0) p.run.pids = options.pids;
  if (options.init) {
    if (::access(kTiniPath, X_OK) == 0) {
      p.run.init_path = kTiniPath;
    } else {
      LogWarn("{} not installed (Debian package tini): the command runs as PID 1 and may ignore SIGTERM", kTiniPath);
    }
  }
  return p;
}

// The image mount's settings from the command line (used only when this run mounts the image).
run::ImageMountOptions MountOptions(const RunCommandOptions& options) {
  run::ImageMountOptions mount;
  mount.platform = options.source.platform;
  mount.cache_dir = options.cache_dir;
  mount.log_file = options.log_file;
  mount.source_args = SourceFlagArgs(options.source);
  mount.trace_file = options.trace_file;
  mount.prefetch = options.prefetch;
  mount.keep_mount_seconds = options.keep_mount_seconds;
  mount.variant = options.mount_variant;
  mount.variant_key = options.mount_variant_key;
  mount.extra_args = options.mount_extra_args;
  return mount;
}

Result<ExitStatus> RunSandbox(const RunCommandOptions& options, ImageResolver resolve, run::SignalWatch& signals) {
  Prepared p = LAZYFS_TRY(Prepare(options));
  std::string id = run::NewSandboxId();
  LAZYFS_TRY(MakeDirs(run::SandboxesDir(), 0700));
  run::FileLock alive = LAZYFS_TRY(run::FileLock::Acquire(run::SandboxLockPath(id), true));
  if (!alive.held()) return Internal("sandbox id collision: " + id);
  struct LockFileRemover {
    std::string path;
    ~LockFileRemover() { ::unlink(path.c_str()); }
  } lock_file_remover{run::SandboxLockPath(id)};

  run::ResolveFn resolve_ref;  // empty without a resolver, as ImageUse::Acquire expects
  if (resolve) resolve_ref = [&options, resolve](const std::string& ref) { return resolve(ref, options); };
  // A run killed before its record exists leaves only a users/ file, whose flock died with it.
  std::unique_ptr<run::ImageUse> image =
      LAZYFS_TRY(run::ImageUse::Acquire(p.ref, id, MountOptions(options), resolve_ref));
  if (!image) return ExitStatus{kRunNeedsResolver, 0};
  run::ImageConfig config = LAZYFS_TRY(run::ParseImageConfig(image->config_json()));

  run::SandboxRecord record;
  record.id = id;
  record.image = options.ref;
  record.manifest_digest = image->manifest().ToString();
  record.pid = ::getpid();
  RunOptions without_init;  // the record shows the command, not tini
  without_init.command = p.run.command;
  record.command = LAZYFS_TRY(run::ProcessArgs(config, without_init));
  record.started = static_cast<int64_t>(std::time(nullptr));
  record.dir = run::SandboxDir(id);
  std::unique_ptr<run::RecordFile> record_file = LAZYFS_TRY(run::RecordFile::Write(record));
  std::unique_ptr<run::SandboxFiles> files =
      LAZYFS_TRY(run::SandboxFiles::Create(id, image->rootfs(), options.allow_setuid));

  p.run.rootfs = files->merged();
  p.run.hostname = "lazyfs-" + id.substr(0, 8);
  p.run.cgroups_path = "/lazyfs/" + id;
  std::string user_spec = options.user.empty() ? config.user : options.user;
  run::UserIds user =
      LAZYFS_TRY(run::ResolveUser(user_spec, LAZYFS_TRY(ReadUserDatabase(files->merged(), "/etc/passwd")),
                                  LAZYFS_TRY(ReadUserDatabase(files->merged(), "/etc/group"))));
  json spec = LAZYFS_TRY(run::BuildRuntimeSpec(config, p.run, user));
  LAZYFS_TRY(WriteFileAtomic(files->dir() + "/config.json", spec.dump(2) + "\n"));

  // A signal that arrived during set-up ends the run before the container starts.
  while (int sig = signals.Next()) {
    if (sig != SIGCHLD) return ExitStatus{128 + sig, sig};
  }
  std::unique_ptr<run::Container> container = LAZYFS_TRY(run::Container::Start(id, files->dir()));
  ExitStatus status = container->Wait(signals, options.stop_timeout);
  // 137 either way: the init itself was SIGKILLed, or tini reports its OOM-killed child as 128+9.
  if (status.code == 128 + SIGKILL && p.run.memory_bytes && run::OomKills(p.run.cgroups_path) > 0) {
    std::fprintf(stderr, "lazyfs: killed: out of memory (limit %s)\n", options.memory.c_str());
  }
  return status;
}

}  // namespace

Result<std::string> AbsoluteRef(const std::string& text) {
  fetch::ImageRef ref = LAZYFS_TRY(fetch::ImageRef::Parse(text));
  if (ref.transport == fetch::ImageRef::Transport::kOciLayout) {
    std::error_code ec;
    ref.path = stdfs::absolute(ref.path, ec).lexically_normal().string();
    if (ec) return PosixError(ec.value(), "resolve " + ref.path);
  }
  return ref.ToString();
}

int RunRun(const RunCommandOptions& options, ImageResolver resolve) {
  Result<run::SignalWatch> signals = run::SignalWatch::Start();
  if (!signals) {
    std::fprintf(stderr, "lazyfs: run: %s\n", signals.error().ToString().c_str());
    return kLazyfsFailed;
  }
  run::CleanStaleSandboxes(options.keep_mount_seconds > 0);
  Result<ExitStatus> status = RunSandbox(options, resolve, *signals);
  if (!status) {
    std::fprintf(stderr, "lazyfs: run %s: %s\n", options.ref.c_str(), status.error().ToString().c_str());
    return kLazyfsFailed;
  }
  return status->code;
}

void AddRunCommand(CLI::App& app, int& exit_code, ImageResolver resolve, RunPackagesPreparer prepare_packages) {
  auto o = std::make_shared<RunCommandOptions>();
  o->cache_dir = DefaultCacheDir();
  CLI::App* cmd = app.add_subcommand("run", "Run a command in a container whose rootfs is a lazy mount of IMAGE");
  cmd->add_option("image", o->ref, "oci:DIR[:TAG] or docker://HOST/NAME[:TAG]")->required();
  cmd->add_option("command", o->command, "command and arguments (after --); default: the image's Cmd");
  cmd->add_option("--memory", o->memory, "memory limit, e.g. 256M");
  cmd->add_option("--cpus", o->cpus, "CPU limit in CPUs, e.g. 1.5");
  cmd->add_option("--pids", o->pids, "maximum number of processes");
  // One value per occurrence, so `--env K=V IMAGE` does not swallow IMAGE.
  cmd->add_option("--env,-e", o->env, "K=V, repeatable")->allow_extra_args(false);
  cmd->add_option("--volume,-v", o->volumes, "SRC:DST[:ro], repeatable")->allow_extra_args(false);
  cmd->add_option("--network", o->network, "none (own namespace, loopback only) or host")->capture_default_str();
  cmd->add_option("--workdir,-w", o->workdir, "working directory in the container");
  cmd->add_option("--user,-u", o->user, "USER[:GROUP] or UID[:GID]");
  cmd->add_flag("--allow-setuid", o->allow_setuid,
                "let setuid/setgid files and file capabilities raise privileges, as Docker does (default: the "
                "processes run with no_new_privs on a nosuid rootfs)");
  // The image mount's settings: used only when this run mounts the image (no live mount serves it).
  cmd->add_option("--cache-dir", o->cache_dir, "shared chunk cache for a new mount ($LAZYFS_CACHE_DIR)")->capture_default_str();
  cmd->add_option("--log-file", o->log_file, "log file of a new mount daemon");
  AddSourceFlags(*cmd, o->source);  // also used to resolve the image
  cmd->add_option("--trace", o->trace_file, "a new mount records every read to this trace file (complete once "
                                            "the mount ends: see --keep-mount)");
  cmd->add_option("--prefetch", o->prefetch, "a new mount prefetches the chunks a trace read: a trace file, or auto");
  cmd->add_option("--keep-mount", o->keep_mount_seconds,
                  "seconds a new image mount stays after its last sandbox exits, for the next start to reuse; "
                  "0: unmount at once (also when this run is the last user of a kept mount)")
      ->capture_default_str();
  cmd->add_option("--packages", o->packages,
                  "a lock file (lazyfs pkg resolve -o), or requirements resolved for the image's own python3: "
                  "the dists at /packages/NAME==VERSION/files and merged at /packages/site, on PYTHONPATH and PATH")
      ->allow_extra_args(false);
  cmd->add_option("--index-url", o->index_url, "package index for --packages requirements (PEP 503/691)");
  cmd->add_option("--package-registry", o->package_registry,
                  "docker://REG/PREFIX holding package layers (lazyfs pkg install --push) to mount before building");
  cmd->add_flag("!--no-init", o->init, "run the command as PID 1 instead of under tini");
  cmd->add_option("--stop-timeout", o->stop_timeout, "seconds from a forwarded SIGTERM to SIGKILL")->capture_default_str();
  cmd->callback([o, &exit_code, resolve, prepare_packages] {
    if (o->packages.empty()) {
      exit_code = RunRun(*o, resolve);
      return;
    }
    if (prepare_packages == nullptr) {
      exit_code = kRunNeedsResolver;  // lazyfs-core resolves the packages
      return;
    }
    Result<RunCommandOptions> prepared = prepare_packages(*o);
    if (!prepared) {
      std::fprintf(stderr, "lazyfs: run %s --packages: %s\n", o->ref.c_str(), prepared.error().ToString().c_str());
      exit_code = kLazyfsFailed;
      return;
    }
    exit_code = RunRun(*prepared, resolve);
  });
}

}  // namespace lazyfs::tools
