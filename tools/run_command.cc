// `lazyfs run`: attaches to the image's shared lazy mount (resolving the image and mounting it when no
// live mount serves the reference), stacks an overlay on it, writes the bundle and runs it with
// `crun run --detach` (waited for as a child subreaper), then tears everything down in reverse order
// through RAII. The host state it keeps is described in run_command.h and image_dir.h.
// Single-threaded; cross-process coordination through flock(2).
//
// The path to a warm start is kept short on purpose: no image resolution and no control-socket request
// when the mount lingers, one crun process, posix_spawn (no page-table copy of this process) for it.
#include "tools/run_command.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <random>

#include "common/fd.h"
#include "common/log.h"
#include "fetch/image_ref.h"
#include "run/control_socket.h"
#include "run/image_dir.h"
#include "run/oci_bundle.h"
#include "tools/commands.h"

namespace lazyfs::tools {

// The runner library's pieces this command is built from.
using run::BuildRuntimeSpec;
using run::ControlRequest;
using run::ControlSocketPath;
using run::FileLock;
using run::ImageConfig;
using run::ImageDir;
using run::IsLiveMount;
using run::IsMountPoint;
using run::kRunDir;
using run::LookupRef;
using run::ParseByteSize;
using run::ParseImageConfig;
using run::ParseVolume;
using run::ProcessArgs;
using run::RememberRef;
using run::ResolveUser;
using run::RunOptions;
using run::Unmount;
using run::UserIds;

namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;

constexpr int kLazyfsFailed = 125;  // as `docker run`: the runner failed, not the command
constexpr const char* kTiniPath = "/usr/bin/tini-static";
constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
constexpr int kDaemonExitTimeoutMs = 10000;

std::string SandboxDir(const std::string& id) { return std::string(kSandboxTmpBase) + "/lazyfs-run." + id; }
std::string LockPath(const std::string& id) { return SandboxesDir() + "/" + id + ".lock"; }
std::string RecordPath(const std::string& id) { return SandboxesDir() + "/" + id + ".json"; }

// ---------------------------------------------------------------------------------------------------
// Small pieces.

// rm -rf that never descends into another file system: a mount left below must not lose its files.
void RemoveTree(const std::string& root) {
  struct stat top {};
  if (::lstat(root.c_str(), &top) != 0) return;
  std::error_code ec;
  std::vector<stdfs::path> dirs;
  for (auto it = stdfs::recursive_directory_iterator(root, stdfs::directory_options::skip_permission_denied, ec);
       !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (st.st_dev != top.st_dev) {
      LogWarn("not removing {}: another file system is mounted there", it->path().string());
      it.disable_recursion_pending();
      return;
    }
  }
  stdfs::remove_all(root, ec);
  if (ec) LogWarn("remove {}: {}", root, ec.message());
}

struct ExitStatus {
  int code = 0;
  int signal = 0;  // nonzero when killed
};

ExitStatus Decode(int status) {
  if (WIFSIGNALED(status)) return {128 + WTERMSIG(status), WTERMSIG(status)};
  return {WEXITSTATUS(status), 0};
}

// posix_spawn's attributes and file actions, destroyed with the scope.
struct SpawnSetup {
  SpawnSetup() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
};

// Starts `args` (searched in PATH) with no signal blocked. posix_spawn vforks, so the start costs no copy
// of this process's page tables, and a failed exec is reported here. stdout goes to /dev/null when
// `quiet_stdout`; stderr is always ours (crun's and the mount daemon's errors reach the user).
Result<pid_t> Spawn(const std::vector<std::string>& args, bool quiet_stdout) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  SpawnSetup setup;
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&setup.attr, &none);
  posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGMASK);
  if (quiet_stdout) posix_spawn_file_actions_addopen(&setup.actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  if (int rc = ::posix_spawnp(&pid, argv[0], &setup.actions, &setup.attr, argv.data(), environ); rc != 0) {
    return PosixError(rc, "run " + args[0]);
  }
  return pid;
}

Result<ExitStatus> SpawnAndWait(const std::vector<std::string>& args, bool quiet_stdout) {
  pid_t pid = LAZYFS_TRY(Spawn(args, quiet_stdout));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return PosixError(errno, "waitpid " + args[0]);
  }
  return Decode(status);
}

std::string RandomId() {
  std::random_device rd;
  return fmt::format("{:08x}{:04x}", rd(), rd() & 0xffff);
}

// ---------------------------------------------------------------------------------------------------
// The shared image mount.

// What the mount daemon of `rootfs` says about itself ("info" on its control socket: pid, manifest,
// idle state), or nullopt when none answers.
std::optional<json> MountInfo(const std::string& rootfs) {
  Result<std::string> reply = ControlRequest(ControlSocketPath(rootfs), "info");
  if (!reply) return std::nullopt;
  json info = json::parse(*reply, nullptr, false);
  if (!info.is_object() || !info.contains("pid")) return std::nullopt;
  return info;
}

// Drops sandbox `id`'s reference to the image mount in `dir`. When no live user is left, the mount stays
// for its daemon's idle timeout if `keep` and the daemon has one, else it is unmounted now. Users whose
// flock is free died without detaching: their files go too.
void ReleaseImageUser(const ImageDir& dir, const std::string& id, bool keep) {
  UniqueFd daemon;  // pidfd of the daemon of a mount we unmount
  {
    Result<FileLock> lock = dir.Lock();
    if (!lock) {
      LogWarn("image {}: {}", dir.path(), lock.error().ToString());
      return;
    }
    ::unlink(dir.user_path(id).c_str());
    if (dir.LiveUsers(true) > 0) return;
    std::string rootfs = dir.rootfs();
    std::optional<json> info = MountInfo(rootfs);
    if (keep && info && (*info)["idle"].is_object()) {
      LogDebug("{} stays mounted for {} s without a sandbox", rootfs, (*info)["idle"].value("timeout_s", 0.0));
      return;
    }
    if (info && info->value("pid", 0) > 0) {
      daemon = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, info->value("pid", 0), 0)));
    }
    Unmount(rootfs);
  }
  // Waited for with the lock released (the daemon's idle watch may take it on its way out), bounded. When
  // `lazyfs run` returns, the daemon has finished: its --trace file is complete.
  if (daemon.valid()) {
    pollfd exited{daemon.get(), POLLIN, 0};
    if (::poll(&exited, 1, kDaemonExitTimeoutMs) == 0) LogWarn("the mount daemon of {} has not exited", dir.rootfs());
  }
}

// The reference the mount daemon gets: a docker:// tag pinned to the manifest this run resolved, so the
// daemon serves the image whose directory it is mounted in even when the tag moves meanwhile.
std::string PinnedRef(const std::string& ref, const Sha256Digest& manifest) {
  Result<fetch::ImageRef> parsed = fetch::ImageRef::Parse(ref);
  if (!parsed || parsed->transport != fetch::ImageRef::Transport::kDocker) return ref;
  parsed->tag.clear();
  parsed->digest = manifest;
  return parsed->ToString();
}

// One sandbox's reference to the lazy mount of its image, mounting it when no live mount serves it.
class ImageUse {
 public:
  // Attaches sandbox `id` to the image `ref` (absolute) names. A reference resolved before whose mount is
  // still live is used as it is: no registry or layout access. Otherwise the image is resolved, and
  // mounted unless a live mount of its manifest exists. Without `resolve`, only a live mount found
  // through the reference is attached to, and nullptr returned otherwise.
  static Result<std::unique_ptr<ImageUse>> Acquire(const std::string& ref, const std::string& id,
                                                   const RunCommandOptions& options, ImageResolver resolve) {
    const std::string& platform = options.source.platform;
    if (std::optional<Sha256Digest> known = LookupRef(ref, platform)) {
      std::unique_ptr<ImageUse> use = LAZYFS_TRY(Attach(*known, std::nullopt, id, options));
      if (use) {
        LogDebug("reusing the mount of {} at {}", ref, use->rootfs());
        return use;
      }
    }
    if (!resolve) return std::unique_ptr<ImageUse>();  // the caller hands over to lazyfs-core
    ResolvedRef image = LAZYFS_TRY(resolve(ref, options));
    std::unique_ptr<ImageUse> use = LAZYFS_TRY(Attach(image.manifest, image.config_json, id, options, ref));
    if (Status remembered = RememberRef(ref, platform, image.manifest); !remembered) {
      LogWarn("{}", remembered.error().ToString());  // the next run resolves the image again
    }
    return use;
  }

  ~ImageUse() {
    if (!attached_) return;
    user_lock_.Release();
    ReleaseImageUser(dir_, id_, keep_);
  }
  ImageUse(const ImageUse&) = delete;
  ImageUse& operator=(const ImageUse&) = delete;

  std::string rootfs() const { return dir_.rootfs(); }
  const Sha256Digest& manifest() const { return manifest_; }
  const std::string& config_json() const { return config_json_; }

 private:
  ImageUse(ImageDir dir, std::string id, Sha256Digest manifest, bool keep)
      : dir_(std::move(dir)), id_(std::move(id)), manifest_(manifest), keep_(keep) {}

  // Attaches to the mount of `manifest`. With `config_json` (a resolved image) the image directory is made
  // and the image mounted from `ref` when no live mount exists; without, only a live mount is attached to
  // (nullptr otherwise) and the config comes from the image directory.
  static Result<std::unique_ptr<ImageUse>> Attach(const Sha256Digest& manifest,
                                                  const std::optional<std::string>& config_json,
                                                  const std::string& id, const RunCommandOptions& options,
                                                  const std::string& ref = "") {
    ImageDir dir = ImageDir::ForManifest(manifest);
    if (config_json) {
      LAZYFS_TRY(dir.Create());
      LAZYFS_TRY(WriteFileAtomic(dir.config_path(), *config_json));
    }
    // Made before the lock: on an early return after attaching, the lock goes first, then ~ImageUse takes it.
    std::unique_ptr<ImageUse> use(new ImageUse(dir, id, manifest, options.keep_mount_seconds > 0));
    Result<FileLock> lock = dir.Lock();
    if (!lock && !config_json) return std::unique_ptr<ImageUse>();  // no such image directory (any more)
    if (!lock) return std::move(lock).error();
    std::string rootfs = dir.rootfs();
    bool live = IsLiveMount(rootfs);
    if (config_json) {
      use->config_json_ = *config_json;
    } else {
      Result<std::string> stored = ReadWholeFile(dir.config_path());
      if (!live || !stored) return std::unique_ptr<ImageUse>();
      use->config_json_ = std::move(*stored);
    }
    // The user file is locked before the image lock is dropped, so no one sees it stale.
    use->user_lock_ = LAZYFS_TRY(FileLock::Acquire(dir.user_path(id), true));
    if (!use->user_lock_.held()) return Internal("sandbox id " + id + " already in use");
    use->attached_ = true;
    if (live) {
      if (!options.trace_file.empty() || !options.prefetch.empty()) {
        LogWarn("{} is mounted already: --trace and --prefetch apply only to a new mount", rootfs);
      }
      return use;
    }
    if (IsMountPoint(rootfs)) {
      LogWarn("image mount {} does not answer: replacing it", rootfs);
      Unmount(rootfs);
    }
    std::vector<std::string> args = {"/proc/self/exe", "--log-level", LogLevelName(GetLogLevel()), "mount", "--allow-other",
                                     "--cache-dir", options.cache_dir};
    std::vector<std::string> source_args = SourceFlagArgs(options.source);
    args.insert(args.end(), source_args.begin(), source_args.end());
    if (!options.log_file.empty()) args.insert(args.end(), {"--log-file", options.log_file});
    if (!options.trace_file.empty()) args.insert(args.end(), {"--trace", options.trace_file});
    if (!options.prefetch.empty()) args.insert(args.end(), {"--prefetch", options.prefetch});
    if (options.keep_mount_seconds > 0) {
      args.insert(args.end(), {"--idle-timeout", fmt::format("{}", options.keep_mount_seconds), "--image-dir", dir.path()});
    }
    args.insert(args.end(), {PinnedRef(ref, manifest), rootfs});
    ExitStatus st = LAZYFS_TRY(SpawnAndWait(args, true));
    if (st.code != 0) return IoError("lazyfs mount " + ref + " failed (exit " + std::to_string(st.code) + ")");
    LogDebug("mounted {} at {}", ref, rootfs);
    return use;
  }

  const ImageDir dir_;
  const std::string id_;
  const Sha256Digest manifest_;
  const bool keep_;  // leave the mount to its idle timeout when this sandbox is the last to go
  std::string config_json_;
  FileLock user_lock_;
  bool attached_ = false;  // user_lock_ taken: the destructor detaches
};

// ---------------------------------------------------------------------------------------------------
// The sandbox's writable layer and its record.

class SandboxFiles {
 public:
  // Creates the temp dir with upper/, work/ and merged/ and mounts the overlay on merged/ (nosuid unless
  // `allow_setuid`).
  static Result<std::unique_ptr<SandboxFiles>> Create(const std::string& id, const std::string& lower,
                                                      bool allow_setuid) {
    std::string dir = SandboxDir(id);
    if (::mkdir(dir.c_str(), 0700) != 0) return PosixError(errno, "mkdir " + dir);
    std::unique_ptr<SandboxFiles> files(new SandboxFiles(dir));
    for (const char* sub : {"upper", "work", "merged"}) {
      if (::mkdir((dir + "/" + sub).c_str(), 0755) != 0) return PosixError(errno, "mkdir " + dir + "/" + sub);
    }
    std::string data = "lowerdir=" + lower + ",upperdir=" + dir + "/upper,workdir=" + dir + "/work";
    unsigned long flags = allow_setuid ? 0 : MS_NOSUID;
    if (::mount("overlay", files->merged().c_str(), "overlay", flags, data.c_str()) != 0) {
      return PosixError(errno, "mount overlay on " + files->merged() + " (" + data + ")");
    }
    files->mounted_ = true;
    return files;
  }

  ~SandboxFiles() {
    if (mounted_) Unmount(merged());
    RemoveTree(dir_);
  }
  SandboxFiles(const SandboxFiles&) = delete;
  SandboxFiles& operator=(const SandboxFiles&) = delete;

  const std::string& dir() const { return dir_; }
  std::string merged() const { return dir_ + "/merged"; }

 private:
  explicit SandboxFiles(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  bool mounted_ = false;
};

// The record file; removed on destruction (its lock is released after, by its owner).
class RecordFile {
 public:
  static Result<std::unique_ptr<RecordFile>> Write(const SandboxRecord& record) {
    std::string path = RecordPath(record.id);
    LAZYFS_TRY(WriteFileAtomic(path, record.ToJson().dump() + "\n"));
    return std::unique_ptr<RecordFile>(new RecordFile(path));
  }
  ~RecordFile() { ::unlink(path_.c_str()); }
  RecordFile(const RecordFile&) = delete;
  RecordFile& operator=(const RecordFile&) = delete;

 private:
  explicit RecordFile(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Cleans up after `lazyfs run`s that died: their lock is free but their record is still there. `keep`:
// as --keep-mount > 0 for the image mounts they leave unused.
void CleanStaleSandboxes(bool keep) {
  std::error_code ec;
  for (const auto& entry : stdfs::directory_iterator(SandboxesDir(), ec)) {
    if (entry.path().extension() != ".json") continue;
    std::string id = entry.path().stem().string();
    Result<FileLock> lock = FileLock::Acquire(LockPath(id), true);
    if (!lock || !lock->held()) continue;  // alive (or not ours to judge)
    Result<std::string> text = ReadWholeFile(entry.path().string());
    std::optional<SandboxRecord> record;
    if (text) record = SandboxRecord::FromJson(json::parse(*text, nullptr, false));
    LogInfo("cleaning up sandbox {} of a lazyfs run that died", id);
    [[maybe_unused]] Result<ExitStatus> deleted = SpawnAndWait({"crun", "delete", "-f", id}, true);
    std::string dir = record && !record->dir.empty() ? record->dir : SandboxDir(id);
    if (dir.starts_with(std::string(kSandboxTmpBase) + "/lazyfs-run.")) {
      Unmount(dir + "/merged");
      RemoveTree(dir);
    }
    if (record) {
      if (std::optional<Sha256Digest> digest = Sha256Digest::Parse(record->manifest_digest)) {
        ReleaseImageUser(ImageDir::ForManifest(*digest), id, keep);
      }
    }
    ::unlink(entry.path().c_str());
    ::unlink(LockPath(id).c_str());
  }
}

// ---------------------------------------------------------------------------------------------------
// The container.

// Signals that `lazyfs run` forwards, plus SIGCHLD, read from a signalfd. Blocking them first also
// means a SIGTERM during set-up waits until the RAII objects can clean up.
class SignalWatch {
 public:
  static Result<SignalWatch> Start() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : kForwardedSignals) sigaddset(&set, s);
    sigaddset(&set, SIGCHLD);
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return PosixError(errno, "sigprocmask");
    UniqueFd fd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd.valid()) return PosixError(errno, "signalfd");
    return SignalWatch(std::move(fd));
  }
  // The next pending signal, 0 if none.
  int Next() {
    signalfd_siginfo info{};
    if (::read(fd_.get(), &info, sizeof info) != sizeof info) return 0;
    return static_cast<int>(info.ssi_signo);
  }
  int fd() const { return fd_.get(); }

 private:
  explicit SignalWatch(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// A container run with `crun run --detach` (create and start in one crun process, as a native
// `crun run`); `crun delete -f` on destruction. The container's init is re-parented to this process (a
// child subreaper) when crun exits, even if it has exited already, so waitpid sees its real exit status.
class Container {
 public:
  static Result<std::unique_ptr<Container>> Start(const std::string& id, const std::string& bundle) {
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return PosixError(errno, "prctl(PR_SET_CHILD_SUBREAPER)");
    std::unique_ptr<Container> c(new Container(id));
    std::string pid_file = bundle + "/container.pid";
    ExitStatus ran = LAZYFS_TRY(
        SpawnAndWait({"crun", "run", "--detach", "--bundle", bundle, "--pid-file", pid_file, id}, false));
    if (ran.code != 0) return IoError("crun run failed (exit " + std::to_string(ran.code) + ")");
    c->created_ = true;
    std::string pid_text = LAZYFS_TRY(ReadWholeFile(pid_file));
    c->pid_ = static_cast<pid_t>(std::atoi(pid_text.c_str()));
    if (c->pid_ <= 0) return Internal("crun wrote no container pid");
    return c;
  }

  ~Container() {
    if (!created_) return;
    Result<ExitStatus> deleted = SpawnAndWait({"crun", "delete", "-f", id_}, true);
    if (!deleted || deleted->code != 0) LogWarn("crun delete -f {} failed", id_);
  }
  Container(const Container&) = delete;
  Container& operator=(const Container&) = delete;

  // Waits for the container to exit, forwarding SIGINT/SIGTERM/SIGHUP/SIGQUIT to its init; SIGKILL
  // follows `stop_timeout` seconds after the first forwarded signal.
  ExitStatus Wait(SignalWatch& signals, double stop_timeout) {
    using Clock = std::chrono::steady_clock;
    bool stopping = false;  // a signal was forwarded; SIGKILL at kill_at
    Clock::time_point kill_at{};
    for (;;) {
      int status = 0;
      pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) return Decode(status);
      bool not_ours = done < 0 && errno == ECHILD;
      // Other orphans re-parented to us (crun's helpers) are reaped here; the container may be among them
      // if it exited since the waitpid above.
      pid_t other = 0;
      while ((other = ::waitpid(-1, &status, WNOHANG)) > 0) {
        if (other == pid_) return Decode(status);
      }
      // `crun run --detach` may exit before the helper it forked to detach the container, whose child the
      // container stays until the helper exits. The helper is ours by then (we are a subreaper): its exit
      // wakes us with SIGCHLD and hands the container (or its zombie) to us. With no child left at all,
      // the container went where its exit status cannot be seen.
      if (not_ours && other < 0 && errno == ECHILD) {
        LogError("container {} (pid {}) is not a child of lazyfs run: its exit status is lost", id_, pid_);
        return {kLazyfsFailed, 0};
      }
      int timeout_ms = -1;
      if (stopping) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(kill_at - Clock::now()).count();
        if (left <= 0) {
          ::kill(pid_, SIGKILL);
          stopping = false;
          continue;
        }
        timeout_ms = static_cast<int>(left);
      }
      pollfd pfd{signals.fd(), POLLIN, 0};
      ::poll(&pfd, 1, timeout_ms);
      while (int sig = signals.Next()) {
        if (sig == SIGCHLD) continue;
        LogDebug("forwarding signal {} to the container", sig);
        ::kill(pid_, sig);
        if (!stopping) {
          stopping = true;
          kill_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(stop_timeout * 1000));
        }
      }
    }
  }

 private:
  explicit Container(std::string id) : id_(std::move(id)) {}
  std::string id_;
  pid_t pid_ = -1;
  bool created_ = false;
};

// Reads the OOM-kill count of the container's memory cgroup (v1 memory.oom_control or v2
// memory.events), before `crun delete` removes it.
uint64_t OomKills(const std::string& cgroups_path) {
  for (const char* candidate : {"/sys/fs/cgroup/memory", "/sys/fs/cgroup"}) {
    for (const char* file : {"/memory.oom_control", "/memory.events"}) {
      Result<std::string> text = ReadPseudoFile(std::string(candidate) + cgroups_path + file);
      if (!text) continue;
      size_t pos = text->find("oom_kill ");
      if (pos == std::string::npos) continue;
      return std::strtoull(text->c_str() + pos + 9, nullptr, 10);
    }
  }
  return 0;
}

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

// Makes a relative oci: path absolute: the mount daemon resolves it after chdir("/").
Result<std::string> AbsoluteRef(const std::string& text) {
  fetch::ImageRef ref = LAZYFS_TRY(fetch::ImageRef::Parse(text));
  if (ref.transport == fetch::ImageRef::Transport::kOciLayout) {
    std::error_code ec;
    ref.path = stdfs::absolute(ref.path, ec).lexically_normal().string();
    if (ec) return PosixError(ec.value(), "resolve " + ref.path);
  }
  return ref.ToString();
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
  for (const std::string& v : options.volumes) p.run.volumes.push_back(LAZYFS_TRY(ParseVolume(v)));
  if (options.network != "none" && options.network != "host") return InvalidArgument("--network must be none or host");
  p.run.host_network = options.network == "host";
  if (p.run.host_network && ::access("/etc/resolv.conf", R_OK) == 0) p.run.resolv_conf = "/etc/resolv.conf";
  p.run.workdir = options.workdir;
  p.run.allow_setuid = options.allow_setuid;
  if (!options.memory.empty()) p.run.memory_bytes = LAZYFS_TRY(ParseByteSize(options.memory));
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

Result<ExitStatus> RunSandbox(const RunCommandOptions& options, ImageResolver resolve, SignalWatch& signals) {
  Prepared p = LAZYFS_TRY(Prepare(options));
  std::string id = RandomId();
  LAZYFS_TRY(MakeDirs(SandboxesDir(), 0700));
  FileLock alive = LAZYFS_TRY(FileLock::Acquire(LockPath(id), true));
  if (!alive.held()) return Internal("sandbox id collision: " + id);
  struct LockFileRemover {
    std::string path;
    ~LockFileRemover() { ::unlink(path.c_str()); }
  } lock_file_remover{LockPath(id)};

  // A run killed before its record exists leaves only a users/ file, whose flock died with it.
  std::unique_ptr<ImageUse> image = LAZYFS_TRY(ImageUse::Acquire(p.ref, id, options, resolve));
  if (!image) return ExitStatus{kRunNeedsResolver, 0};
  ImageConfig config = LAZYFS_TRY(ParseImageConfig(image->config_json()));

  SandboxRecord record;
  record.id = id;
  record.image = options.ref;
  record.manifest_digest = image->manifest().ToString();
  record.pid = ::getpid();
  RunOptions without_init;  // the record shows the command, not tini
  without_init.command = p.run.command;
  record.command = LAZYFS_TRY(ProcessArgs(config, without_init));
  record.started = static_cast<int64_t>(std::time(nullptr));
  record.dir = SandboxDir(id);
  std::unique_ptr<RecordFile> record_file = LAZYFS_TRY(RecordFile::Write(record));
  std::unique_ptr<SandboxFiles> files = LAZYFS_TRY(SandboxFiles::Create(id, image->rootfs(), options.allow_setuid));

  p.run.rootfs = files->merged();
  p.run.hostname = "lazyfs-" + id.substr(0, 8);
  p.run.cgroups_path = "/lazyfs/" + id;
  std::string user_spec = options.user.empty() ? config.user : options.user;
  UserIds user = LAZYFS_TRY(ResolveUser(user_spec, LAZYFS_TRY(ReadUserDatabase(files->merged(), "/etc/passwd")),
                                        LAZYFS_TRY(ReadUserDatabase(files->merged(), "/etc/group"))));
  json spec = LAZYFS_TRY(BuildRuntimeSpec(config, p.run, user));
  LAZYFS_TRY(WriteFileAtomic(files->dir() + "/config.json", spec.dump(2) + "\n"));

  // A signal that arrived during set-up ends the run before the container starts.
  while (int sig = signals.Next()) {
    if (sig != SIGCHLD) return ExitStatus{128 + sig, sig};
  }
  std::unique_ptr<Container> container = LAZYFS_TRY(Container::Start(id, files->dir()));
  ExitStatus status = container->Wait(signals, options.stop_timeout);
  // 137 either way: the init itself was SIGKILLed, or tini reports its OOM-killed child as 128+9.
  if (status.code == 128 + SIGKILL && p.run.memory_bytes && OomKills(p.run.cgroups_path) > 0) {
    std::fprintf(stderr, "lazyfs: killed: out of memory (limit %s)\n", options.memory.c_str());
  }
  return status;
}

}  // namespace

std::string SandboxesDir() { return std::string(kRunDir) + "/sandboxes"; }

nlohmann::json SandboxRecord::ToJson() const {
  return {{"id", id},           {"image", image}, {"manifest_digest", manifest_digest}, {"pid", pid},
          {"command", command}, {"started", started}, {"dir", dir}};
}

std::optional<SandboxRecord> SandboxRecord::FromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("id") || !j["id"].is_string()) return std::nullopt;
  SandboxRecord r;
  try {
    r.id = j.at("id").get<std::string>();
    r.image = j.value("image", "");
    r.manifest_digest = j.value("manifest_digest", "");
    r.pid = j.value("pid", int64_t{0});
    r.command = j.value("command", std::vector<std::string>{});
    r.started = j.value("started", int64_t{0});
    r.dir = j.value("dir", "");
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  return r;
}

std::vector<SandboxRecord> ListLiveSandboxes() {
  std::vector<SandboxRecord> out;
  std::error_code ec;
  for (const auto& entry : stdfs::directory_iterator(SandboxesDir(), ec)) {
    if (entry.path().extension() != ".json") continue;
    Result<FileLock> lock = FileLock::Acquire(LockPath(entry.path().stem().string()), true);
    if (!lock || lock->held()) continue;  // free: its `lazyfs run` is gone
    Result<std::string> text = ReadWholeFile(entry.path().string());
    if (!text) continue;
    if (std::optional<SandboxRecord> r = SandboxRecord::FromJson(json::parse(*text, nullptr, false))) out.push_back(*r);
  }
  std::sort(out.begin(), out.end(), [](const SandboxRecord& a, const SandboxRecord& b) {
    return a.started != b.started ? a.started < b.started : a.id < b.id;
  });
  return out;
}

int RunRun(const RunCommandOptions& options, ImageResolver resolve) {
  Result<SignalWatch> signals = SignalWatch::Start();
  if (!signals) {
    std::fprintf(stderr, "lazyfs: run: %s\n", signals.error().ToString().c_str());
    return kLazyfsFailed;
  }
  CleanStaleSandboxes(options.keep_mount_seconds > 0);
  Result<ExitStatus> status = RunSandbox(options, resolve, *signals);
  if (!status) {
    std::fprintf(stderr, "lazyfs: run %s: %s\n", options.ref.c_str(), status.error().ToString().c_str());
    return kLazyfsFailed;
  }
  return status->code;
}

void AddRunCommand(CLI::App& app, int& exit_code, ImageResolver resolve) {
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
  cmd->add_flag("!--no-init", o->init, "run the command as PID 1 instead of under tini");
  cmd->add_option("--stop-timeout", o->stop_timeout, "seconds from a forwarded SIGTERM to SIGKILL")->capture_default_str();
  cmd->callback([o, &exit_code, resolve] { exit_code = RunRun(*o, resolve); });
}

}  // namespace lazyfs::tools
