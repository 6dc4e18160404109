// `lazyfs run --packages LOCK|REQUIREMENT... IMAGE -- CMD` (lazyfs-core only): the image mounted with a
// lock's package layers in its tree at /packages (tools/mount_command.h --packages), shared by every
// sandbox of that image and lock and lingering like a plain image mount (its own image directory, keyed
// by the image manifest and the lock's sha256).
//
// The target is the image's own python3, never the host's: probed once per image manifest by running
// `python3 -c …` in the image (network off) and kept in <cache-dir>/python-probes/<manifest hex>.json
// (implementation, version, cache tag, machine, libc, site directories). Requirements are resolved for
// it (`lazyfs pkg resolve --python-version V --platform manylinux_2_X_<machine>`, the lock kept in
// <cache-dir>/package-locks/); a lock made for another interpreter or machine is refused, naming both.
//
// How the sandbox finds the packages: PYTHONPATH=/packages/site (before the image's own PYTHONPATH: the
// lock's versions win over what the image ships, as with OpenLambda's sys.path), PATH=/packages/site/bin
// first, and a `lazyfs-packages.pth` bound read-only into the image's first site directory whose line
// `import site; site.addsitedir('/packages/site')` makes the interpreter process the dists' own .pth files
// (PYTHONPATH alone does not). The .pyc were compiled by the image's python3 when the layers were built,
// so imports compile and write nothing.
//
// Thread safety: single-threaded command code.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "tools/run_command.h"

namespace lazyfs::tools {

// What the image's python3 is.
struct PythonProbe {
  std::string implementation;  // sys.implementation.name: "cpython", "pypy"
  std::string version;         // "3.11.2"
  std::string cache_tag;       // "cpython-311"
  std::string machine;         // "x86_64"
  std::string libc;            // "glibc", or "" when platform.libc_ver() does not know it
  std::string libc_version;    // "2.36"
  std::vector<std::string> site_dirs;  // site.getsitepackages(), existing ones first

  std::string Interpreter() const;  // "cp311", "pp39"
  // The --platform tag to resolve for: manylinux_2_<glibc minor>_<machine>. kUnsupported without glibc.
  Result<std::string> Platform() const;
};

// The probe of the image `ref` (manifest `manifest`), from the cache or by running the image.
Result<PythonProbe> ProbeImagePython(const RunCommandOptions& options, const std::string& ref,
                                     const Sha256Digest& manifest);

// The lock file for `packages`: the file itself when it is one argument naming a regular file, else the
// lock of those requirements resolved (at context.index_url) for the python3 of `image`, which is
// probed as above and may not be empty then; the resolved lock is kept in <cache-dir>/package-locks/ by
// its digest, and its path returned. context gives the cache dir, log file and source flags.
Result<std::string> LockFileFor(const std::vector<std::string>& packages, const std::string& image,
                                const RunCommandOptions& context);

// `options` with options.packages turned into the mount variant, env and volume above. Errors: the
// image's, the probe's, the resolver's (its message), a foreign lock.
Result<RunCommandOptions> PrepareRunPackages(const RunCommandOptions& options);

}  // namespace lazyfs::tools
