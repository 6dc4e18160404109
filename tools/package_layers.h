// Package layers of a lock: each pinned dist installed once (pkg/wheel_install.h), its .pyc compiled by the
// target image's own python3 in an installer sandbox, packed as eStargz (fs/package_layer.h), kept on the
// host and optionally pushed to a registry as an OCI artifact, so a fleet builds each dist once.
//
// Where a layer lives:
//   host      <cache-dir>/package-layers/<wheel sha256>-<interpreter>/   an OCI layout, the layer tagged
//             "layer", renamed into place complete (a directory that is there is whole)
//   registry  docker://REG/PREFIX/NAME:VERSION-INTERPRETER                 the same manifest, pushed
// The manifest is an OCI image manifest (so `lazyfs mount`, skopeo and registries take it as they are)
// whose annotations name the dist, its version, the interpreter and the lock's wheel sha256; a registry
// artifact whose sha256 annotation differs from the lock's is not used.
//
// A layer found in the registry is remembered in `<id>.ref` (its artifact pinned by digest), so the next
// mount on this host asks the registry nothing: manifests and indexes come from the cache.
//
// The interpreter part of the key is the lock's (`cp311`) when the .pyc were compiled, `nopyc` when no
// image compiled them (a layer without .pyc is a different layer). Lookup order for a dist: host,
// registry (when given), build. A build holds an flock of `<id>.lock` in the host store for its whole
// length, so concurrent installs of one lock, in any number of processes, build each layer once: the
// others wait and then find it. A build that died leaves `.build-<id>` behind, which the next build of
// that id (holding the lock) removes first.
//
// Thread safety: single-threaded command code; cross-process safety from the flocks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "pkg/lock_file.h"
#include "pkg/wheel_install.h"
#include "tools/source_flags.h"

namespace lazyfs::tools {

inline constexpr const char* kAnnotationPackageName = "dev.lazyfs.python.name";
inline constexpr const char* kAnnotationPackageVersion = "dev.lazyfs.python.version";
inline constexpr const char* kAnnotationPackageInterpreter = "dev.lazyfs.python.interpreter";
inline constexpr const char* kAnnotationWheelSha256 = "dev.lazyfs.python.wheel.sha256";
inline constexpr const char* kNoPycInterpreter = "nopyc";

struct PackageLayerKey {
  std::string name;          // canonical
  std::string version;       // normalised
  std::string wheel_sha256;  // lower-case hex
  std::string interpreter;   // "cp311", or kNoPycInterpreter
  std::string Id() const { return wheel_sha256 + "-" + interpreter; }
  std::string Tag() const;   // "VERSION-INTERPRETER", '+' of a local version as '_'
};

// "cp311" for a lock resolved for CPython 3.11; kCorrupt when the lock's environment lacks it.
Result<std::string> LockInterpreter(const pkg::LockFile& lock);

struct PackageLayerOptions {
  std::string cache_dir;             // empty: the default cache directory
  std::string compile_in;            // image whose python3 compiles the .pyc; empty: no .pyc (kNoPycInterpreter)
  std::string installer_memory = "512M";
  int installer_timeout = 600;       // seconds per dist
  std::string interpreter = "/usr/bin/python3";  // #! of generated scripts
  std::string registry;              // docker://REG/PREFIX to look layers up in; empty: host only
  bool push = false;                 // push every layer of the lock to `registry`
  SourceFlags source;                // registry flags: lookups, pushes and the compile image
  std::string ca_file;               // index TLS and credentials (tools/pkg_transport.h)
  std::string netrc;
  bool quiet = false;                // no line per dist on stderr
};

struct PackageLayer {
  pkg::LockedPackage dist;
  PackageLayerKey key;
  std::string where;    // "host", "registry" or "built"
  std::string ref;      // what a mount opens: oci:DIR:layer or docker://REG/PREFIX/NAME:TAG
  uint64_t wheel_bytes = 0;  // downloaded for a build
  uint64_t blob_bytes = 0;   // the layer's compressed size (host and built layers)
  bool pushed = false;
};

// Makes sure every dist of `lock` has its layer, in lookup order; returns them in lock order. Stops at
// the first dist that fails, with an error naming it (nothing of that dist is kept). SIGINT/SIGTERM
// between dists stop the run (kInternal "interrupted").
Result<std::vector<PackageLayer>> EnsurePackageLayers(const pkg::LockFile& lock, const PackageLayerOptions& options);

// The install step that compiles a tree's .pyc in options.compile_in (`lazyfs run`, network off, the
// installer limits) with /packages/site as their source directory (the same in every version, so an
// unchanged module compiles to the same bytes), and checks they are for
// key.interpreter. It then imports the dist's top-level modules there (best effort, bounded) and, when
// `imported` is given, appends the tree's files those imports loaded, in load order (the layer's
// eStargz prefetch list: a mount fetches them in the background at once). `options` must outlive the
// returned function.
pkg::WheelInstallOptions::FinishTree CompileFinisher(const PackageLayerOptions& options, const PackageLayerKey& key,
                                                     std::shared_ptr<std::vector<std::string>> imported = nullptr);

nlohmann::json PackageLayerJson(const PackageLayer& layer);

}  // namespace lazyfs::tools
