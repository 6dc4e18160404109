// Package layers of a lock (see package_layers.h): lookup (host, registry), the once-per-host build
// (download, install, compile in the target image, pack) and the push.
#include "tools/package_layers.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "common/fd.h"
#include "common/human_size.h"
#include "common/log.h"
#include "common/temp_dir.h"
#include "fetch/http_transport.h"
#include "fetch/image.h"
#include "fetch/image_ref.h"
#include "fetch/oci_layout.h"
#include "fetch/registry_push.h"
#include "cache/chunk_store.h"
#include "fs/package_layer.h"
#include "fs/store_documents.h"
#include "pkg/wheel_download.h"
#include "pkg/wheel_install.h"
#include "run/image_dir.h"
#include "run/signal_watch.h"
#include "tools/commands.h"
#include "tools/pkg_transport.h"
#include "tools/run_command.h"
#include "tools/run_resolve.h"

namespace lazyfs::tools {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kLayerTag = "layer";
constexpr const char* kInstallMount = "/lazyfs-install";

std::string CacheDirOf(const PackageLayerOptions& options) {
  return options.cache_dir.empty() ? DefaultCacheDir() : options.cache_dir;
}

std::string StoreRoot(const PackageLayerOptions& options) {
  return CacheDirOf(options) + "/package-layers";
}

std::string HostRef(const std::string& layout_dir) { return "oci:" + layout_dir + ":" + kLayerTag; }

std::string RegistryRef(const PackageLayerOptions& options, const PackageLayerKey& key) {
  std::string prefix = options.registry;
  while (prefix.ends_with('/')) prefix.pop_back();
  return prefix + "/" + key.name + ":" + key.Tag();
}

// The config architecture of this host, as OCI spells it.
std::string HostArchitecture() {
  struct utsname u {};
  ::uname(&u);
  std::string_view machine = u.machine;
  if (machine == "x86_64") return "amd64";
  if (machine == "aarch64") return "arm64";
  return std::string(machine);
}

// sys.implementation.cache_tag of the lock's interpreter ("cp311" -> "cpython-311", "pp39" -> "pypy39").
std::string CacheTag(const std::string& interpreter) {
  if (interpreter.starts_with("cp")) return "cpython-" + interpreter.substr(2);
  if (interpreter.starts_with("pp")) return "pypy" + interpreter.substr(2);
  return interpreter;
}

// Every .pyc the compile wrote must be for the lock's interpreter: an image whose python3 is another
// version would leave .pyc that interpreter never reads (and every import would compile again).
Status CheckPycTags(const std::string& tree, const std::string& interpreter, const std::string& image) {
  std::string want = "." + CacheTag(interpreter) + ".pyc";
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(tree, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!name.ends_with(".pyc") || name.ends_with(want)) continue;
    return InvalidArgument(fmt::format("the python3 of {} compiled {}, but the lock is for {} (want *{}): make the "
                                       "lock for that image's interpreter, or compile in an image that has {}",
                                       image, name, interpreter, want, interpreter));
  }
  if (ec) return PosixError(ec.value(), "listing " + tree);
  return Ok();
}


// The installer program run by the target image's python3: compiles every .py of the tree (argv[1]) with
// unchecked-hash invalidation and argv[2] as the path written into code objects (tracebacks), exactly as
// `python3 -m compileall -q --invalidation-mode unchecked-hash -d DDIR TREE` (exit 1 when a file does not
// compile); then imports each top-level module of the dist, best effort and bounded (other dists'
// modules are stand-ins, a module that fails or hangs is skipped), and writes to argv[3] the tree's
// files those imports opened (an audit hook sees every open), in order: what `import NAME` reads, the
// layer's prefetch list.
constexpr const char* kInstallerProgram = R"PY(import compileall, importlib, importlib.abc, importlib.machinery, os, py_compile, signal, sys, types
tree, ddir, out = sys.argv[1], sys.argv[2], sys.argv[3]
if not compileall.compile_dir(tree, ddir=ddir, quiet=1,
                              invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH):
    sys.exit(1)
sys.dont_write_bytecode = True
loaded = []
def audit(event, args):
    if event == "open" and isinstance(args[0], str) and args[0].startswith(tree + "/"):
        loaded.append(os.path.relpath(args[0], tree))
sys.addaudithook(audit)
# The dist's dependencies are other layers, absent here: a module nobody provides becomes an empty
# stand-in, so the import goes on as far as it can.
class Stub(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Stub(self.__name__ + "." + name)
    def __call__(self, *a, **k):
        return Stub(self.__name__ + "()")
class StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec):
        return Stub(spec.name)
    def exec_module(self, module):
        module.__path__ = []
sys.path.insert(0, tree)
sys.meta_path.append(StubFinder())
def stop(*_):
    raise TimeoutError
signal.signal(signal.SIGALRM, stop)
signal.alarm(20)
try:
    for entry in sorted(os.listdir(tree)):
        path = os.path.join(tree, entry)
        name = None
        if entry.endswith((".dist-info", ".data")) or entry in ("bin", "__pycache__"):
            continue
        if os.path.isdir(path) and entry.isidentifier():
            name = entry
        elif entry.endswith(".py") and entry[:-3].isidentifier():
            name = entry[:-3]
        elif entry.endswith(".so") and entry.split(".")[0].isidentifier():
            name = entry.split(".")[0]
        if name:
            try:
                importlib.import_module(name)
            except TimeoutError:
                raise
            except BaseException:
                pass
except TimeoutError:
    pass
signal.alarm(0)
with open(out, "w") as f:
    f.write("".join(p + "\n" for p in dict.fromkeys(p for p in loaded if os.path.isfile(os.path.join(tree, p)))))
)PY";

constexpr const char* kInstallOut = "/lazyfs-install-out";
// The directory written into the .pyc as their source's: the merged view, where every dist's files are
// in every package mount. Not /packages/NAME==VERSION/files: the version in it would make the .pyc of a
// module that did not change differ between two versions of a dist, and share no chunks.
constexpr const char* kCompiledPath = "/packages/site";

}  // namespace

pkg::WheelInstallOptions::FinishTree CompileFinisher(const PackageLayerOptions& options, const PackageLayerKey& key,
                                                     std::shared_ptr<std::vector<std::string>> imported) {
  return [&options, key, imported](const std::string& tree) -> Status {
    TempDir out = LAZYFS_TRY(TempDir::Create(TempRoot(), "lazyfs-install-out-"));
    RunCommandOptions run;
    run.ref = options.compile_in;
    run.command = {"timeout", std::to_string(options.installer_timeout), "python3", "-c", kInstallerProgram,
                   kInstallMount, kCompiledPath,
                   std::string(kInstallOut) + "/imported"};
    run.memory = options.installer_memory;
    run.volumes = {tree + ":" + kInstallMount + ":rw", out.path() + ":" + kInstallOut + ":rw"};
    run.user = "0:0";
    run.network = "none";
    run.cache_dir = CacheDirOf(options);
    run.source = options.source;
    // No image mount outlives the install (a lingering one would serve later runs with this run's
    // settings); each dist's compile mounts the image again, from the warm cache.
    run.keep_mount_seconds = 0;
    int code = RunRun(run, ResolveImageRef);
    if (code == 124) {
      return Error(ErrorCode::kTimeout, "compiling .pyc in " + options.compile_in + " took longer than " +
                                            std::to_string(options.installer_timeout) + " s (--installer-timeout)");
    }
    if (code != 0) {
      return Internal("compiling .pyc in " + options.compile_in + " failed (exit " + std::to_string(code) +
                      (code == 127 ? ": the image has no python3 or timeout" : "") + ")");
    }
    LAZYFS_TRY(CheckPycTags(tree, key.interpreter, options.compile_in));
    if (imported) {
      // Written by code the wheel ran as root: read inside its directory only (no symlink out, no FIFO),
      // and bounded.
      constexpr uint64_t kMaxImportList = 4 << 20;
      if (Result<std::string> list = ReadFileInRoot(out.path(), "imported", kMaxImportList)) {
        for (size_t at = 0; at < list->size();) {
          size_t nl = list->find('\n', at);
          if (nl == std::string::npos) nl = list->size();
          std::string name = list->substr(at, nl - at);
          // Only plain relative names of the tree: the list comes from code the wheel ran.
          if (!name.empty() && !name.starts_with('/') && name.find("..") == std::string::npos) imported->push_back(name);
          at = nl + 1;
        }
      }
    }
    return Ok();
  };
}

namespace {

struct Packed {
  uint64_t blob_bytes = 0;
  uint64_t tree_bytes = 0;
};

// Packs `tree` into a one-layer OCI layout at `layout_dir` tagged kLayerTag.
Result<Packed> PackLayout(const std::string& tree, const std::string& layout_dir, const PackageLayerKey& key,
                          uint64_t tree_bytes, const std::vector<std::string>& prefetch) {
  fetch::OciLayout layout = LAZYFS_TRY(fetch::OciLayout::Create(layout_dir));
  std::string blob_file = layout_dir + "/layer.tmp";
  fs::EstargzLayerInfo info;
  {
    UniqueFd out = LAZYFS_TRY(OpenFile(blob_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    fs::EstargzWriterOptions writer;
    writer.spool_dir = layout_dir;
    writer.prioritized_files = prefetch;  // what `import NAME` read at build: first, then the landmark
    info = LAZYFS_TRY(fs::PackTreeAsEstargz(tree, out.get(), writer));
    if (::fsync(out.get()) != 0) return PosixError(errno, "fsync " + blob_file);
  }
  LAZYFS_TRY(layout.AdoptBlobFile(blob_file, info.blob_digest));

  nlohmann::ordered_json config{{"architecture", HostArchitecture()},
                                {"os", "linux"},
                                {"rootfs", {{"type", "layers"}, {"diff_ids", {info.diff_id.ToString()}}}}};
  std::string config_json = config.dump();
  fetch::Manifest manifest;
  manifest.media_type = std::string(fetch::kMediaTypeOciManifest);
  manifest.config.media_type = std::string(fetch::kMediaTypeOciConfig);
  manifest.config.digest = LAZYFS_TRY(layout.AddBlob(config_json));
  manifest.config.size = config_json.size();
  fetch::Descriptor layer;
  layer.media_type = std::string(fetch::kMediaTypeOciLayerGzip);
  layer.digest = info.blob_digest;
  layer.size = info.blob_size;
  layer.annotations[std::string(fetch::kAnnotationTocDigest)] = info.toc_digest.ToString();
  layer.annotations[std::string(fetch::kAnnotationUncompressedSize)] = std::to_string(info.uncompressed_size);
  layer.annotations[std::string(fetch::kAnnotationTocOffset)] = std::to_string(info.toc_offset);
  manifest.layers.push_back(std::move(layer));
  manifest.annotations[kAnnotationPackageName] = key.name;
  manifest.annotations[kAnnotationPackageVersion] = key.version;
  manifest.annotations[kAnnotationPackageInterpreter] = key.interpreter;
  manifest.annotations[kAnnotationWheelSha256] = key.wheel_sha256;
  std::string manifest_json = fetch::ManifestToJson(manifest);
  fetch::Descriptor tagged;
  tagged.media_type = std::string(fetch::kMediaTypeOciManifest);
  tagged.digest = LAZYFS_TRY(layout.AddBlob(manifest_json));
  tagged.size = manifest_json.size();
  LAZYFS_TRY(layout.Tag(tagged, kLayerTag));
  return Packed{info.blob_size, tree_bytes};
}

// The compressed size of a host layer (its manifest's one layer).
uint64_t HostBlobBytes(const std::string& layout_dir) {
  Result<fetch::OciLayout> layout = fetch::OciLayout::Open(layout_dir);
  if (!layout) return 0;
  Result<fetch::Descriptor> tagged = layout->Resolve(kLayerTag);
  if (!tagged) return 0;
  Result<std::string> json = ReadWholeFile(layout->BlobPath(tagged->digest));
  if (!json) return 0;
  Result<fetch::Manifest> manifest = fetch::ParseManifest(*json);
  return manifest && manifest->layers.size() == 1 ? manifest->layers[0].size : 0;
}

// The layer's artifact in the registry, pinned by digest (docker://REG/PREFIX/NAME@sha256:…), when it has
// one built from the lock's wheel; nullopt when it has none.
// Manifests and configs it fetches are kept in `documents`, where the mount daemon then finds them.
Result<std::optional<std::string>> InRegistry(const PackageLayerOptions& options, const PackageLayerKey& key,
                                              const std::shared_ptr<fetch::DocumentCache>& documents) {
  fetch::ImageRef ref = LAZYFS_TRY(fetch::ImageRef::Parse(RegistryRef(options, key)));
  fetch::SourceOptions source = LAZYFS_TRY(ToSourceOptions(options.source));
  source.documents = documents;
  std::unique_ptr<fetch::ImageSource> image = LAZYFS_TRY(fetch::OpenImageSource(ref, source));
  Result<fetch::ResolvedImage> resolved = image->Resolve();
  if (!resolved && resolved.error().code() == ErrorCode::kNotFound) return std::optional<std::string>();
  // Registries that hide which repositories exist answer 401/403 for one that does not: build here.
  if (!resolved && resolved.error().code() == ErrorCode::kPermission) {
    LogWarn("{}: {}; building the layer here", ref.ToString(), resolved.error().ToString());
    return std::optional<std::string>();
  }
  if (!resolved) return std::move(resolved).error();
  auto sha = resolved->manifest.annotations.find(kAnnotationWheelSha256);
  if (sha == resolved->manifest.annotations.end() || sha->second != key.wheel_sha256 ||
      resolved->manifest.layers.size() != 1) {
    LogWarn("{}: not built from the lock's wheel (sha256 {}); building it here", ref.ToString(), key.wheel_sha256);
    return std::optional<std::string>();
  }
  ref.tag.clear();
  ref.digest = resolved->manifest_digest;
  return std::optional<std::string>(ref.ToString());
}

// Registry lookups of every dist in `keys` at once (each is a round trip or two; a lock has dozens).
std::vector<Result<std::optional<std::string>>> InRegistryAll(const PackageLayerOptions& options,
                                                              const std::vector<PackageLayerKey>& keys) {
  constexpr size_t kParallelLookups = 8;
  if (keys.empty()) return {};
  // The host cache, for the documents only; closed again before this process forks a mount daemon.
  cache::CacheOptions cache_options;
  cache_options.dir = CacheDirOf(options);
  cache_options.access_flush_interval = std::chrono::milliseconds(0);
  cache_options.background_eviction = false;
  std::unique_ptr<cache::ChunkStore> store;
  std::shared_ptr<fetch::DocumentCache> documents;
  if (Result<std::unique_ptr<cache::ChunkStore>> opened = cache::ChunkStore::Open(cache_options)) {
    store = std::move(*opened);
    documents = fs::StoreDocuments(*store);
  } else {
    LogWarn("package layer lookups without the cache's documents: {}", opened.error().ToString());
  }
  std::vector<std::optional<Result<std::optional<std::string>>>> slots(keys.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < keys.size();) slots[i] = InRegistry(options, keys[i], documents);
  };
  {
    std::vector<std::jthread> helpers;
    for (size_t t = 1; t < std::min(keys.size(), kParallelLookups); ++t) helpers.emplace_back(work);
    work();
  }
  std::vector<Result<std::optional<std::string>>> out;
  for (auto& slot : slots) out.push_back(std::move(*slot));
  return out;
}

Status Push(const PackageLayerOptions& options, const PackageLayerKey& key, const std::string& layout_dir) {
  fetch::ImageRef dst = LAZYFS_TRY(fetch::ImageRef::Parse(RegistryRef(options, key)));
  fetch::OciLayout layout = LAZYFS_TRY(fetch::OciLayout::Open(layout_dir));
  fetch::SourceOptions source = LAZYFS_TRY(ToSourceOptions(options.source));
  return fetch::PushImage(layout, kLayerTag, dst, source.registry, {});
}

class Builder {
 public:
  explicit Builder(const PackageLayerOptions& options) : options_(options), root_(StoreRoot(options)) {}

  // The layer at `final_dir`, built once per host (see the header's flock protocol).
  Result<PackageLayer> BuildOnce(const pkg::LockedPackage& dist, const PackageLayerKey& key, const std::string& final_dir) {
    run::FileLock lock = LAZYFS_TRY(run::FileLock::Acquire(root_ + "/" + key.Id() + ".lock", false));
    PackageLayer layer{dist, key, "host", HostRef(final_dir)};
    if (std::filesystem::exists(final_dir)) {
      layer.blob_bytes = HostBlobBytes(final_dir);
      return layer;  // another process built it while this one waited
    }
    auto started = Clock::now();
    TempDir build = TempDir::Adopt(root_ + "/.build-" + key.Id());
    std::error_code ec;
    std::filesystem::remove_all(build.path(), ec);  // a build that died
    LAZYFS_TRY(MakeDirs(build.path()));
    if (!transport_) transport_ = LAZYFS_TRY(PkgTransport(options_.ca_file, options_.netrc));
    std::string wheel = build.path() + "/" + dist.filename;
    layer.wheel_bytes = LAZYFS_TRY(pkg::DownloadWheel(*transport_, dist.url, dist.sha256, wheel));
    pkg::WheelInstallOptions install;
    install.interpreter = options_.interpreter;
    auto imported = std::make_shared<std::vector<std::string>>();
    if (!options_.compile_in.empty()) install.finish_tree = CompileFinisher(options_, key, imported);
    std::string tree = build.path() + "/tree";
    pkg::InstalledWheel installed = LAZYFS_TRY(pkg::InstallWheel(wheel, dist.sha256, tree, install));
    std::filesystem::remove(wheel, ec);
    std::string staged = build.path() + "/layout";
    Packed packed = LAZYFS_TRY(PackLayout(tree, staged, key, installed.bytes, *imported));
    if (::rename(staged.c_str(), final_dir.c_str()) != 0) return PosixError(errno, "rename into " + final_dir);
    layer.where = "built";
    layer.blob_bytes = packed.blob_bytes;
    LogInfo("package layer {}=={} ({}): {} files, {} -> {} eStargz in {} ms", key.name, key.version, key.interpreter,
            installed.files, HumanSize(installed.bytes), HumanSize(packed.blob_bytes),
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
    return layer;
  }

  const std::string& root() const { return root_; }

 private:
  const PackageLayerOptions& options_;
  const std::string root_;
  std::shared_ptr<fetch::HttpTransport> transport_;  // made on the first build
};

}  // namespace

std::string PackageLayerKey::Tag() const {
  std::string tag = version;
  for (char& c : tag) {
    if (c == '+' || c == '!') c = '_';
  }
  return tag + "-" + interpreter;
}

Result<std::string> LockInterpreter(const pkg::LockFile& lock) {
  const nlohmann::json& python = lock.environment.contains("python") ? lock.environment["python"] : nlohmann::json();
  if (!python.is_object() || !python.contains("implementation") || !python["implementation"].is_string() ||
      !python.contains("version") || !python["version"].is_string()) {
    return Corrupt("lock file: environment.python has no implementation and version");
  }
  std::string version = python["version"].get<std::string>();
  std::erase(version, '.');
  return python["implementation"].get<std::string>() + version;
}

Result<std::vector<PackageLayer>> EnsurePackageLayers(const pkg::LockFile& lock, const PackageLayerOptions& options) {
  if (options.push && options.registry.empty()) return InvalidArgument("--push needs a registry (docker://REG/PREFIX)");
  if (!options.registry.empty() && !options.registry.starts_with("docker://")) {
    return InvalidArgument("package registry " + options.registry + ": want docker://HOST[:PORT]/PREFIX");
  }
  std::string interpreter = options.compile_in.empty() ? kNoPycInterpreter : LAZYFS_TRY(LockInterpreter(lock));
  // Compile sandboxes read SIGCHLD and the signals they forward from a signalfd, which sees only signals
  // every thread blocks: block them before any transport starts a thread. They are checked between dists.
  std::optional<run::SignalWatch> signals;
  if (!options.compile_in.empty()) signals.emplace(LAZYFS_TRY(run::SignalWatch::Start()));
  Builder builder(options);
  LAZYFS_TRY(MakeDirs(builder.root()));

  // Layers this host found in the registry before are remembered by digest (<id>.ref): a later mount
  // asks the registry nothing, and reads manifests and indexes from the cache. The rest are looked up
  // together.
  std::vector<PackageLayerKey> keys;
  std::vector<std::string> remote_refs(lock.packages.size());
  std::vector<PackageLayerKey> lookups;
  std::vector<size_t> lookup_of;
  for (size_t i = 0; i < lock.packages.size(); ++i) {
    const pkg::LockedPackage& dist = lock.packages[i];
    keys.push_back(PackageLayerKey{dist.name, dist.version, dist.sha256, interpreter});
    std::string base = builder.root() + "/" + keys.back().Id();
    if (std::filesystem::exists(base) || options.registry.empty() || options.push) continue;
    // Only a layer remembered from this registry: another --registry looks the layer up there.
    std::string from_here = RegistryRef(options, keys.back());
    from_here = from_here.substr(0, from_here.rfind(':')) + "@sha256:";
    if (Result<std::string> known = ReadWholeFile(base + ".ref"); known && known->starts_with(from_here)) {
      remote_refs[i] = *known;
      continue;
    }
    lookups.push_back(keys.back());
    lookup_of.push_back(i);
  }
  std::vector<Result<std::optional<std::string>>> found = InRegistryAll(options, lookups);
  for (size_t j = 0; j < found.size(); ++j) {
    const pkg::LockedPackage& dist = lock.packages[lookup_of[j]];
    if (!found[j]) return std::move(found[j]).error().Context(dist.name + "==" + dist.version);
    if (!*found[j]) continue;
    remote_refs[lookup_of[j]] = **found[j];
    std::string ref_file = builder.root() + "/" + lookups[j].Id() + ".ref";
    if (Status kept = WriteFileAtomic(ref_file, **found[j]); !kept) LogWarn("{}", kept.error().ToString());
  }

  std::vector<PackageLayer> layers;
  for (size_t i = 0; i < lock.packages.size(); ++i) {
    const pkg::LockedPackage& dist = lock.packages[i];
    while (signals) {
      int sig = signals->Next();
      if (sig == 0) break;
      if (sig != SIGCHLD) return Error(ErrorCode::kInternal, "interrupted by signal " + std::to_string(sig));
    }
    const PackageLayerKey& key = keys[i];
    std::string final_dir = builder.root() + "/" + key.Id();
    auto fail = [&](Error e) { return std::move(e).Context(dist.name + "==" + dist.version); };
    PackageLayer layer{dist, key, "host", HostRef(final_dir)};
    if (std::filesystem::exists(final_dir)) {
      layer.blob_bytes = HostBlobBytes(final_dir);
    } else if (!remote_refs[i].empty()) {
      layer.where = "registry";
      layer.ref = remote_refs[i];
    }
    if (layer.where == "host" && !std::filesystem::exists(final_dir)) {
      Result<PackageLayer> built = builder.BuildOnce(dist, key, final_dir);
      if (!built) return fail(std::move(built).error());
      layer = std::move(*built);
    }
    if (options.push) {
      if (Status pushed = Push(options, key, final_dir); !pushed) return fail(std::move(pushed).error());
      layer.pushed = true;
    }
    if (!options.quiet) {
      std::fprintf(stderr, "%s %s==%s (%s)%s\n", layer.where == "built" ? "built" : ("found on " + layer.where).c_str(),
                   dist.name.c_str(), dist.version.c_str(), interpreter.c_str(),
                   layer.pushed ? (" pushed to " + RegistryRef(options, key)).c_str() : "");
    }
    layers.push_back(std::move(layer));
  }
  return layers;
}

nlohmann::json PackageLayerJson(const PackageLayer& layer) {
  return nlohmann::json{{"name", layer.dist.name},       {"version", layer.dist.version},
                        {"interpreter", layer.key.interpreter}, {"wheel_sha256", layer.key.wheel_sha256},
                        {"where", layer.where},           {"ref", layer.ref},
                        {"wheel_bytes", layer.wheel_bytes}, {"blob_bytes", layer.blob_bytes},
                        {"pushed", layer.pushed}};
}

}  // namespace lazyfs::tools
