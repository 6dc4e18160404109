// `lazyfs run --packages` (see run_packages.h): probe the image's python3, get a lock for it, and turn the
// run into the image mounted with the lock's package layers.
#include "tools/run_packages.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/temp_dir.h"
#include "fetch/image_ref.h"
#include "pkg/lock_file.h"
#include "run/image_use.h"
#include "run/oci_bundle.h"
#include "run/process.h"
#include "tools/commands.h"
#include "tools/package_layers.h"
#include "tools/run_resolve.h"

namespace lazyfs::tools {
namespace {

using nlohmann::json;

constexpr const char* kPackagesAt = "/packages";
constexpr const char* kSite = "/packages/site";
constexpr const char* kProbeMount = "/lazyfs-probe";
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr const char* kPthName = "lazyfs-packages.pth";

// Writes what the interpreter is to argv[1] as JSON; existing site directories first (the .pth goes to
// the first). Only modules every python3 start loads anyway (sys, os, site): on a lazy mount each other
// module is files to fetch for the probe alone (json, re, platform: 38 files, and platform.libc_ver()
// reads the whole python3 binary). The C library comes from confstr.
constexpr const char* kProbeProgram = R"(import os, site, sys
try:
    libc = os.confstr("CS_GNU_LIBC_VERSION").split()
except (AttributeError, OSError, ValueError):
    libc = []
if len(libc) != 2:
    musl = any(n.startswith("ld-musl-") for d in ("/lib", "/usr/lib") if os.path.isdir(d) for n in os.listdir(d))
    libc = ["musl" if musl else "", ""]
dirs = site.getsitepackages()
dirs = [d for d in dirs if os.path.isdir(d)] + [d for d in dirs if not os.path.isdir(d)]
def s(v):
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
fields = {"implementation": s(sys.implementation.name), "version": s("%d.%d.%d" % sys.version_info[:3]),
          "cache_tag": s(sys.implementation.cache_tag), "machine": s(os.uname().machine),
          "libc": s(libc[0]), "libc_version": s(libc[1]), "site_dirs": "[" + ", ".join(s(d) for d in dirs) + "]"}
with open(sys.argv[1], "w") as f:
    f.write("{" + ", ".join(s(k) + ": " + v for k, v in fields.items()) + "}")
)";

std::string CacheDir(const RunCommandOptions& options) {
  return options.cache_dir.empty() ? DefaultCacheDir() : options.cache_dir;
}

Result<PythonProbe> ParseProbe(const std::string& text, const std::string& where) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return Corrupt(where + ": not a JSON object");
  PythonProbe p;
  try {
    p.implementation = j.at("implementation").get<std::string>();
    p.version = j.at("version").get<std::string>();
    p.cache_tag = j.at("cache_tag").get<std::string>();
    p.machine = j.at("machine").get<std::string>();
    p.libc = j.at("libc").get<std::string>();
    p.libc_version = j.at("libc_version").get<std::string>();
    p.site_dirs = j.at("site_dirs").get<std::vector<std::string>>();
  } catch (const json::exception& e) {
    return Corrupt(where + ": " + e.what());
  }
  if (p.version.empty() || p.machine.empty()) return Corrupt(where + ": no version or machine");
  return p;
}

std::string LockMachine(const pkg::LockFile& lock) {
  const json& markers = lock.environment.contains("markers") ? lock.environment["markers"] : json();
  return markers.is_object() ? markers.value("platform_machine", "") : "";
}

// The lock of a requirement list, resolved for the probed interpreter by `lazyfs pkg resolve`.
Result<std::string> ResolveForImage(const RunCommandOptions& options, const PythonProbe& probe) {
  std::string platform = LAZYFS_TRY(probe.Platform());
  std::string dir = CacheDir(options) + "/package-locks";
  LAZYFS_TRY(MakeDirs(dir, 0700));
  TempDir scratch = LAZYFS_TRY(TempDir::Create(dir, ".resolve-"));
  std::string out = scratch.path() + "/lock.json";
  std::vector<std::string> args = {"/proc/self/exe", "pkg", "resolve", "-q", "--python-version", probe.version,
                                   "--platform", platform, "--cache-dir", CacheDir(options), "-o", out};
  if (!options.index_url.empty()) args.insert(args.end(), {"--index-url", options.index_url});
  args.push_back("--");
  args.insert(args.end(), options.packages.begin(), options.packages.end());
  run::ExitStatus st = LAZYFS_TRY(run::SpawnAndWait(args, true));
  if (st.code != 0) {
    return InvalidArgument(fmt::format("resolving {} for the python3 of {} ({} {}) failed (see above)",
                                       fmt::join(options.packages, " "), options.ref, probe.Interpreter(), platform));
  }
  return ReadWholeFile(out);
}

}  // namespace

std::string PythonProbe::Interpreter() const {
  std::string prefix = implementation == "cpython" ? "cp" : implementation == "pypy" ? "pp" : implementation;
  std::string digits;
  int dots = 0;
  for (char c : version) {
    if (c == '.' && ++dots == 2) break;
    if (c != '.') digits += c;
  }
  return prefix + digits;
}

Result<std::string> PythonProbe::Platform() const {
  if (libc != "glibc") {
    return Unsupported(fmt::format("the image's python3 runs on {} (not glibc): make the lock with `lazyfs pkg "
                                   "resolve --platform` for it and pass the lock file",
                                   libc.empty() ? "an unknown libc" : libc));
  }
  size_t dot = libc_version.find('.');
  if (dot == std::string::npos) return Corrupt("glibc version " + libc_version);
  return fmt::format("manylinux_{}_{}_{}", libc_version.substr(0, dot), libc_version.substr(dot + 1), machine);
}

Result<PythonProbe> ProbeImagePython(const RunCommandOptions& options, const std::string& ref,
                                     const Sha256Digest& manifest) {
  std::string cached = CacheDir(options) + "/python-probes/" + manifest.Hex() + ".json";
  if (Result<std::string> text = ReadWholeFile(cached)) {
    if (Result<PythonProbe> probe = ParseProbe(*text, cached)) return probe;
    LogWarn("{} is unreadable; probing the image again", cached);
  }
  TempDir scratch = LAZYFS_TRY(TempDir::Create(TempRoot(), "lazyfs-probe-"));
  RunCommandOptions run;
  run.ref = ref;
  run.command = {"python3", "-c", kProbeProgram, std::string(kProbeMount) + "/probe.json"};
  run.volumes = {scratch.path() + ":" + kProbeMount + ":rw"};
  run.user = "0:0";
  run.network = "none";
  run.cache_dir = CacheDir(options);
  run.log_file = options.log_file;
  run.source = options.source;
  run.keep_mount_seconds = options.keep_mount_seconds;  // the layers' compile runs the same image next
  int code = RunRun(run, ResolveImageRef);
  if (code == 127) return NotFound("the image " + ref + " has no python3 to run packages with");
  if (code != 0) return Internal(fmt::format("probing the python3 of {} failed (exit {})", ref, code));
  // Written by the image: read inside the scratch directory only (no symlink out, no FIFO), bounded.
  std::string text = LAZYFS_TRY(ReadFileInRoot(scratch.path(), "probe.json", 1 << 20));
  PythonProbe probe = LAZYFS_TRY(ParseProbe(text, "the probe of " + ref));
  LAZYFS_TRY(MakeDirs(CacheDir(options) + "/python-probes", 0700));
  if (Status kept = WriteFileAtomic(cached, text); !kept) LogWarn("{}", kept.error().ToString());
  LogInfo("{}: python3 is {} {} ({}, {} {})", ref, probe.implementation, probe.version, probe.machine, probe.libc,
          probe.libc_version);
  return probe;
}

namespace {

bool IsOneFile(const std::vector<std::string>& packages) {
  struct stat st {};
  return packages.size() == 1 && ::stat(packages[0].c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Keeps a resolved lock by its digest; returns its path.
Result<std::string> KeepLock(const RunCommandOptions& options, const std::string& lock_text) {
  std::string locks = CacheDir(options) + "/package-locks";
  LAZYFS_TRY(MakeDirs(locks, 0700));
  std::string lock_path = locks + "/" + Sha256Of(lock_text).Hex() + ".lock";
  if (::access(lock_path.c_str(), R_OK) != 0) LAZYFS_TRY(WriteFileAtomic(lock_path, lock_text));
  return lock_path;
}

}  // namespace

Result<std::string> LockFileFor(const std::vector<std::string>& packages, const std::string& image,
                                const RunCommandOptions& context) {
  if (IsOneFile(packages)) return packages[0];
  if (image.empty()) {
    return InvalidArgument("requirements (" + fmt::format("{}", fmt::join(packages, " ")) +
                           ") are resolved for an image's python3: give the image (or --compile-in IMAGE), or "
                           "make a lock with `lazyfs pkg resolve --python-version X.Y -o LOCK` and pass it");
  }
  RunCommandOptions options = context;
  options.ref = LAZYFS_TRY(AbsoluteRef(image));
  options.packages = packages;
  run::ResolvedRef resolved = LAZYFS_TRY(ResolveImageRef(options.ref, options));
  options.ref = run::PinnedRef(options.ref, resolved.manifest);
  PythonProbe probe = LAZYFS_TRY(ProbeImagePython(options, options.ref, resolved.manifest));
  std::string text = LAZYFS_TRY(ResolveForImage(options, probe));
  LAZYFS_TRY(pkg::ParseLockFile(text, "the lock resolved for " + image));
  return KeepLock(options, text);
}

Result<RunCommandOptions> PrepareRunPackages(const RunCommandOptions& given) {
  RunCommandOptions options = given;
  options.ref = LAZYFS_TRY(AbsoluteRef(given.ref));
  run::ResolvedRef image = LAZYFS_TRY(ResolveImageRef(options.ref, options));
  // From here on the image is named by the manifest just resolved: the probe, the compile and the run all
  // see that image (a tag moving meanwhile changes nothing), and each resolves it from the cache instead
  // of asking the registry again.
  options.ref = run::PinnedRef(options.ref, image.manifest);
  PythonProbe probe = LAZYFS_TRY(ProbeImagePython(options, options.ref, image.manifest));

  // A lock file, or requirements to resolve for this interpreter.
  std::string lock_text;
  std::string lock_from;
  if (IsOneFile(options.packages)) {
    lock_from = options.packages[0];
    lock_text = LAZYFS_TRY(ReadWholeFile(lock_from));
  } else {
    lock_from = "the lock resolved for " + given.ref;
    lock_text = LAZYFS_TRY(ResolveForImage(options, probe));
  }
  pkg::LockFile lock = LAZYFS_TRY(pkg::ParseLockFile(lock_text, lock_from));
  std::string lock_interpreter = LAZYFS_TRY(LockInterpreter(lock));
  std::string lock_machine = LockMachine(lock);
  if (lock_interpreter != probe.Interpreter() || (!lock_machine.empty() && lock_machine != probe.machine)) {
    return InvalidArgument(fmt::format(
        "{} was made for {} on {}, but the python3 of {} is {} ({} {}) on {}: resolve for this image instead "
        "(lazyfs run --packages REQUIREMENT... resolves for the image's own interpreter, or lazyfs pkg resolve "
        "--python-version {})",
        lock_from, lock_interpreter, lock_machine.empty() ? "any machine" : lock_machine, given.ref,
        probe.Interpreter(), probe.implementation, probe.version, probe.machine, probe.version));
  }

  // The lock the mount reads, kept by its digest: every run of the same lock and image shares one mount.
  Sha256Digest lock_digest = Sha256Of(lock_text);
  std::string lock_path = LAZYFS_TRY(KeepLock(options, lock_text));
  std::string locks = CacheDir(options) + "/package-locks";

  std::string variant = "packages " + lock_digest.ToString() + " " + options.package_registry;
  options.mount_variant = variant;
  options.mount_variant_key = [variant](const Sha256Digest& manifest) {
    return Sha256Of(manifest.ToString() + "\n" + variant);
  };
  options.mount_extra_args = {"--packages", lock_path, "--packages-at", kPackagesAt, "--compile-in", options.ref};
  if (!options.package_registry.empty()) {
    options.mount_extra_args.insert(options.mount_extra_args.end(), {"--package-registry", options.package_registry});
  }

  // PYTHONPATH and PATH in front of the image's own; the user's --env still overrides both.
  run::ImageConfig config = LAZYFS_TRY(run::ParseImageConfig(image.config_json));
  std::string path = kDefaultPath;
  std::string pythonpath;
  for (const std::string& e : config.env) {
    if (e.starts_with("PATH=")) path = e.substr(5);
    if (e.starts_with("PYTHONPATH=")) pythonpath = e.substr(11);
  }
  std::vector<std::string> env = {std::string("PYTHONPATH=") + kSite + (pythonpath.empty() ? "" : ":" + pythonpath),
                                  std::string("PATH=") + kSite + "/bin:" + path};
  options.env.insert(options.env.begin(), env.begin(), env.end());
  if (probe.site_dirs.empty()) {
    LogWarn("{}: its python3 has no site directory: the dists' .pth files will not be processed", options.ref);
  } else {
    std::string pth = locks + "/" + kPthName;
    if (::access(pth.c_str(), R_OK) != 0) {
      LAZYFS_TRY(WriteFileAtomic(pth, fmt::format("import site; site.addsitedir('{}')\n", kSite)));
    }
    options.volumes.push_back(pth + ":" + probe.site_dirs.front() + "/" + kPthName + ":ro");
  }
  return options;
}

}  // namespace lazyfs::tools
