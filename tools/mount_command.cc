#include "tools/mount_command.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>

#include "common/fd.h"
#include "fs/fuse_mount.h"
#include "pkg/lock_file.h"
#include "run/signal_watch.h"
#include "tools/commands.h"
#include "tools/mount_daemon.h"
#include "tools/mount_table.h"
#include "tools/package_layers.h"
#include "tools/run_packages.h"

namespace lazyfs::tools {
namespace {

// Tells the waiting parent how the mount went: "ok\n" or an error message. Closing without a message
// means the daemon died.
class ReadyPipe {
 public:
  explicit ReadyPipe(UniqueFd fd) : fd_(std::move(fd)) {}
  void Send(std::string_view message) {
    if (!fd_.valid()) return;
    [[maybe_unused]] ssize_t n = ::write(fd_.get(), message.data(), message.size());
    fd_.Reset();
  }

 private:
  UniqueFd fd_;
};

Status MountAndServe(const MountCommandOptions& options, ReadyPipe& ready) {
  fs::RouteFuseLogs();
  std::unique_ptr<MountDaemon> daemon = LAZYFS_TRY(MountDaemon::Start(options));
  ready.Send("ok\n");
  if (!options.foreground) {
    // Detached from the terminal: stdio goes nowhere, log lines go to the log file.
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, STDIN_FILENO);
      ::dup2(null, STDOUT_FILENO);
      ::dup2(null, STDERR_FILENO);
      ::close(null);
    }
  }
  return daemon->Serve();
}

int RunInForeground(const MountCommandOptions& options) {
  ReadyPipe none{UniqueFd()};
  if (!options.log_file.empty() && !SetLogFile(options.log_file)) {
    std::fprintf(stderr, "lazyfs: cannot open log file %s\n", options.log_file.c_str());
    return 1;
  }
  Status status = MountAndServe(options, none);
  if (!status) {
    LogError("mount {} at {}: {}", options.ref, options.mountpoint, status.error().ToString());
    if (!options.log_file.empty()) std::fprintf(stderr, "lazyfs: %s\n", status.error().ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

namespace {

// The package layers of options.packages, as the daemon's parts.
Result<std::vector<PackagePart>> PackageParts(const MountCommandOptions& options) {
  pkg::LockFile lock = LAZYFS_TRY(pkg::ParseLockFile(LAZYFS_TRY(ReadWholeFile(options.lock)), options.lock));
  PackageLayerOptions layer_options;
  layer_options.cache_dir = options.cache_dir;
  layer_options.compile_in = options.compile_in.empty() ? options.ref : options.compile_in;
  layer_options.registry = options.package_registry;
  layer_options.source = options.source;
  std::vector<PackageLayer> layers = LAZYFS_TRY(EnsurePackageLayers(lock, layer_options));
  // The compile sandboxes blocked the forwarded signals (run/signal_watch.h); the mount daemon needs them
  // delivered to unmount cleanly on SIGINT/SIGTERM.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : run::kForwardedSignals) sigaddset(&set, sig);
  sigaddset(&set, SIGCHLD);
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  std::vector<PackagePart> parts;
  for (const PackageLayer& layer : layers) parts.push_back({layer.dist.name + "==" + layer.dist.version, layer.ref});
  return parts;
}

}  // namespace

int RunMount(const MountCommandOptions& given) {
  MountCommandOptions options = given;
  struct stat st {};
  if (std::optional<MountEntry> mounted = MountAt(options.mountpoint); mounted && mounted->fstype == kLazyfsFsType) {
    // A second mount would stack on the first and hide it while its daemon goes on serving nobody.
    std::fprintf(stderr, "lazyfs: %s is a lazyfs mount already; run `lazyfs umount %s` first\n",
                 options.mountpoint.c_str(), options.mountpoint.c_str());
    return 1;
  }
  if (::stat(options.mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "lazyfs: mountpoint %s is not a directory\n", options.mountpoint.c_str());
    return 1;
  }
  if (options.ref.empty() && options.packages.empty()) {
    std::fprintf(stderr, "lazyfs: mount needs an image, --packages LOCK, or both\n");
    return 2;
  }
  if (!options.packages.empty()) {
    RunCommandOptions context;
    context.cache_dir = options.cache_dir;
    context.log_file = options.log_file;
    context.source = options.source;
    context.index_url = options.index_url;
    context.keep_mount_seconds = 0;
    Result<std::string> lock = LockFileFor(options.packages, options.compile_in.empty() ? options.ref : options.compile_in,
                                           context);
    if (!lock) {
      std::fprintf(stderr, "lazyfs: --packages: %s\n", lock.error().ToString().c_str());
      return 1;
    }
    options.lock = *lock;
    Result<std::vector<PackagePart>> parts = PackageParts(options);
    if (!parts) {
      std::fprintf(stderr, "lazyfs: packages of %s: %s\n", options.lock.c_str(), parts.error().ToString().c_str());
      return 1;
    }
    options.parts = std::move(*parts);
  }
  if (options.foreground) return RunInForeground(options);

  std::string log_file = options.log_file.empty() ? kDefaultLogFile : options.log_file;
  if (Status made = MakeDirs(std::filesystem::path(log_file).parent_path().string()); !made ||
      !SetLogFile(log_file)) {
    std::fprintf(stderr, "lazyfs: cannot open log file %s\n", log_file.c_str());
    return 1;
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::perror("lazyfs: pipe");
    return 1;
  }
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("lazyfs: fork");
    return 1;
  }
  if (pid == 0) {
    read_end.Reset();
    ::setsid();
    // A second fork so the daemon is not a session leader and can never regain a terminal.
    pid_t grandchild = ::fork();
    if (grandchild < 0) _exit(1);
    if (grandchild > 0) _exit(0);
    if (::chdir("/") != 0) _exit(1);
    ReadyPipe ready(std::move(write_end));
    Status status = MountAndServe(options, ready);
    if (!status) {
      LogError("mount {} at {}: {}", options.ref, options.mountpoint, status.error().ToString());
      ready.Send(status.error().ToString() + "\n");
      _exit(1);
    }
    _exit(0);
  }
  write_end.Reset();
  int child_status = 0;
  ::waitpid(pid, &child_status, 0);
  std::string message;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    message.append(buf, static_cast<size_t>(n));
  }
  if (message == "ok\n") return 0;
  if (message.empty()) message = "the mount daemon exited before mounting; see " + log_file + "\n";
  std::fprintf(stderr, "lazyfs: %s", message.c_str());
  return 1;
}

int RunUmount(const std::string& mountpoint) {
  // Root may unmount anything: act only on what is a lazyfs mount (the top one, where several stack).
  std::optional<MountEntry> mounted = MountAt(mountpoint);
  if (!mounted) {
    std::fprintf(stderr, "lazyfs: %s is not a mount point\n", mountpoint.c_str());
    return 1;
  }
  if (mounted->fstype != kLazyfsFsType) {
    std::fprintf(stderr, "lazyfs: %s is a %s mount, not a lazyfs one; left alone (use umount(8) for it)\n",
                 mountpoint.c_str(), mounted->fstype.c_str());
    return 1;
  }
  // As root, unmount directly; otherwise fusermount3 does it for the user who mounted.
  if (::geteuid() == 0) {
    if (::umount2(mountpoint.c_str(), 0) == 0) return 0;
    if (errno != EPERM) {
      std::fprintf(stderr, "lazyfs: umount %s: %s\n", mountpoint.c_str(), std::strerror(errno));
      return 1;
    }
  }
  ::execlp("fusermount3", "fusermount3", "-u", mountpoint.c_str(), static_cast<char*>(nullptr));
  std::fprintf(stderr, "lazyfs: cannot run fusermount3: %s\n", std::strerror(errno));
  return 1;
}

void AddMountCommands(CLI::App& app, int& exit_code) {
  auto mount = std::make_shared<MountCommandOptions>();
  mount->cache_dir = DefaultCacheDir();
  CLI::App* cmd = app.add_subcommand("mount", "Mount an image read-only; file contents are fetched lazily");
  auto positional = std::make_shared<std::vector<std::string>>();
  cmd->add_option("[image] mountpoint", *positional,
                  "the image (oci:DIR[:TAG] or docker://HOST[:PORT]/NAME[:TAG|@DIGEST]; may be left out with "
                  "--packages) and an existing directory")
      ->required()
      ->expected(1, 2);
  cmd->add_option("--packages", mount->packages,
                  "a lock file (lazyfs pkg resolve -o), or requirements resolved for the image's python3 (repeatable): "
                  "the dists at PACKAGES_AT/NAME==VERSION/files and merged at PACKAGES_AT/site")
      ->allow_extra_args(false);
  cmd->add_option("--index-url", mount->index_url, "package index for --packages requirements (PEP 503/691)");
  cmd->add_option("--packages-at", mount->packages_at, "where the package tree sits in the mount")
      ->capture_default_str();
  cmd->add_option("--package-registry", mount->package_registry,
                  "docker://REG/PREFIX holding package layers (lazyfs pkg install --push) to mount before building");
  cmd->add_option("--compile-in", mount->compile_in,
                  "image whose python3 compiles the .pyc of layers built now (default: the mounted image)");
  cmd->add_flag("-f,--foreground", mount->foreground, "stay in the foreground, log to stderr");
  cmd->add_option("--cache-dir", mount->cache_dir, "shared chunk cache ($LAZYFS_CACHE_DIR)")->capture_default_str();
  cmd->add_option("--cache-size", mount->cache_size,
                  "cap on cached chunk bytes, e.g. 20G (default: the cap recorded in the cache, else 10G)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("--log-file", mount->log_file,
                  std::string("log file (default in the background: ") + kDefaultLogFile + ")");
  cmd->add_flag("--allow-other", mount->allow_other, "let other users access the mount");
  cmd->add_flag("--debug-fuse", mount->debug_fuse, "trace every FUSE request (foreground only)");
  AddSourceFlags(*cmd, mount->source);
  cmd->add_option("--threads", mount->threads, "FUSE worker threads")->capture_default_str();
  cmd->add_option("--fetch-ahead", mount->fetch_ahead,
                  "compressed bytes following a missed chunk in its layer to fetch with it, e.g. 256K or 0 "
                  "(default: 256K for docker:// images, 0 for local ones)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("--trace", mount->observability.trace_file, "record every read to this trace file (lazyfs trace show)");
  cmd->add_option("--prefetch", mount->observability.prefetch,
                  "prefetch the chunks a trace read, in the background: a trace file, or auto (stored next to a "
                  "docker:// image by lazyfs trace push)");
  cmd->add_option("--prefetch-threads", mount->observability.prefetch_threads, "parallel prefetch requests")
      ->capture_default_str();
  CLI::Option* image_dir = cmd->add_option(
      "--image-dir", mount->image_dir,
      "a lazyfs run image directory (lock, users/): its sandboxes keep the mount (with --idle-timeout)");
  cmd->add_option("--idle-timeout", mount->idle_timeout_seconds,
                  "unmount and exit once no sandbox in --image-dir has used the mount for SECONDS (lazyfs run "
                  "--keep-mount sets it)")
      ->check(CLI::NonNegativeNumber)
      ->needs(image_dir);
  cmd->callback([mount, positional, &exit_code] {
    mount->mountpoint = positional->back();
    if (positional->size() == 2) mount->ref = positional->front();
    mount->observability.MakePathsAbsolute();
    exit_code = RunMount(*mount);
  });

  auto mountpoint = std::make_shared<std::string>();
  CLI::App* umount = app.add_subcommand("umount", "Unmount a lazyfs mount (the daemon then exits)");
  umount->add_option("mountpoint", *mountpoint)->required();
  umount->callback([mountpoint, &exit_code] { exit_code = RunUmount(*mountpoint); });
}

}  // namespace lazyfs::tools
