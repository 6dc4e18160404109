// PEP 425 wheel tags for an explicit target environment: the tags a target interpreter accepts, in
// pip's order of preference; `--platform` values; wheel (PEP 427) and sdist file names.
//
// Nothing here looks at the host. The target is always spelled out (TargetPython), so an install for
// Debian 12 computes the same tags wherever lazyfs runs. The order is what Debian 12's pip 23.0.1 (with
// its vendored packaging 21.3) computes in `pip._internal.utils.compatibility_tags.get_supported()`,
// the list pip installs by and `pip debug --verbose` prints. Where current packaging differs, this
// follows Debian's pip; tags.cc says where.
//
// Thread safety: values and pure functions; no shared state.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace lazyfs::pkg {

// One tag triple, lower-case as packaging stores it: {"cp311", "cp311", "manylinux_2_17_x86_64"}.
struct Tag {
  std::string interpreter;
  std::string abi;
  std::string platform;

  std::string ToString() const;  // "cp311-cp311-manylinux_2_17_x86_64"
  bool operator==(const Tag&) const = default;
};

// Which C library the target's wheels link against. kNone makes no portability promise: only the
// target's own `linux_<arch>` wheels fit (what `--platform linux_x86_64` asks for).
enum class Libc { kGlibc, kMusl, kNone };

struct TargetPlatform {
  std::string arch = "x86_64";  // as in platform tags: x86_64, aarch64, i686, armv7l, ppc64le, s390x
  Libc libc = Libc::kGlibc;
  int libc_major = 2;  // glibc 2.36 is Debian 12; for musl e.g. 1.2
  int libc_minor = 36;
};

struct TargetPython {
  std::string implementation = "cp";  // "cp" (CPython) or "pp" (PyPy)
  int major = 3;
  int minor = 11;
  // The interpreter's own ABI tag; "" derives it: "cp311" (CPython 3.8+), "cp37m" (before 3.8),
  // "pypy39_pp73" (PyPy; every PyPy 3 release since 7.3.0 is 7.3.x).
  std::string abi;
  TargetPlatform platform;
};

// A `--platform` value: the newest platform tag the target accepts; the older compatible ones follow
// it in SupportedTags. Accepted: `manylinux_2_28_x86_64`, the legacy aliases `manylinux2014_<arch>`
// (glibc 2.17), `manylinux2010_<arch>` (2.12) and `manylinux1_<arch>` (2.5), `musllinux_1_2_<arch>`,
// and `linux_<arch>` (Libc::kNone). Case is ignored.
//
// Unlike pip's own `--platform`, which takes the tag literally (only manylinux2014/2010 also admit
// the older legacy aliases), `manylinux_2_28_x86_64` here stands for a glibc 2.28 system: manylinux_2_5
// to 2_28 and linux_x86_64 all fit.
//
// kInvalidArgument naming `tag` when it is none of these, its arch is not a lower-case word, or it
// asks for manylinux on an arch Debian's pip gives no manylinux tags (riscv64, loongarch64, ...) or
// for a glibc older than that arch's first manylinux (2.17; 2.5 on x86_64 and i686).
Result<TargetPlatform> ParsePlatformTag(std::string_view tag);

// The platform tags of `platform`, most preferred first: glibc ones from manylinux_<major>_<minor>
// down (each legacy alias right after its version), or musllinux_<major>_<minor> down to
// musllinux_<major>_0; then linux_<arch> last.
std::vector<std::string> PlatformTags(const TargetPlatform& platform);

// Every tag `target` installs, most preferred first (914 for CPython 3.11 on x86_64 with glibc 2.36).
// For CPython: cpXY-<abi>, cpXY-abi3 and cpXY-none for each platform, then cp3(Y-1)..cp32-abi3; for
// PyPy: ppXY-<abi> and ppXY-none. Then for both pyXY, py3, py3(Y-1)..py30 with -none-<platform>, then
// <interpreter>-none-any and the py*-none-any tags in the same order.
std::vector<Tag> SupportedTags(const TargetPython& target);

// A compressed tag set "py2.py3-none-any", expanded in order (interpreters, then ABIs, then
// platforms, as packaging's parse_tag), lower-cased, duplicates dropped.
// kInvalidArgument naming `text` when it does not have three '-' separated parts, a part is empty, an
// interpreter is not an identifier, or the set would hold more than kMaxTagsPerSet tags.
inline constexpr size_t kMaxTagsPerSet = 256;  // real wheels carry a handful; a crafted name, millions
Result<std::vector<Tag>> ParseTagSet(std::string_view text);

// A wheel file name: `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.
struct WheelName {
  std::string name;     // as in the file: "typing_extensions" (PEP 503 canonicalisation is the caller's)
  std::string version;  // as in the file; a valid PEP 440 version
  std::string build;    // "" or a build tag, which starts with a digit ("1", "2b")
  std::vector<Tag> tags;
};

// Follows packaging's parse_wheel_filename: the name is ASCII letters, digits, '_' and '.' without
// "__" (PEP 427 escapes every other run to '_'); the version must parse; the build tag starts with a
// digit; the tags as ParseTagSet. kInvalidArgument naming `filename` otherwise (also for a name that
// does not end in ".whl").
Result<WheelName> ParseWheelFilename(std::string_view filename);

// The index in `supported` of the wheel's most preferred tag (lower is better), nullopt when no tag of
// the wheel is supported, so the wheel cannot be installed on the target. Linear in
// supported.size() * wheel.tags.size().
std::optional<size_t> BestTagRank(const WheelName& wheel, const std::vector<Tag>& supported);

// Whether `filename` names a source distribution by its extension (".tar.gz", the legacy ".zip", and
// the other archive types pip accepts: ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar"), case
// ignored. lazyfs never builds one; this lets the resolver say that a release has only an sdist.
bool IsSdistFilename(std::string_view filename);

}  // namespace lazyfs::pkg
