// The lock file `lazyfs pkg resolve -o` writes and `--lock` and the package mounts read: the target
// environment, the requirements as given, and one pinned wheel per project with the sha256 it must
// have. JSON, lock_version 1; the README documents every field.
//
// Thread safety: values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "pkg/resolver.h"
#include "pkg/target.h"

namespace lazyfs::pkg {

inline constexpr int kLockVersion = 1;

struct LockedPackage {
  std::string name;      // PEP 503 canonical
  std::string version;   // normalised PEP 440
  std::string filename;  // the wheel's
  std::string url;       // where to fetch it (credentials removed)
  std::string sha256;    // lower-case hex; the wheel is checked against it
  std::optional<uint64_t> size;  // bytes, when the index said (PEP 700) or a range read learned it
  std::vector<std::string> extras;       // extras in effect, normalised
  std::vector<std::string> depends_on;     // canonical names of its dependencies, sorted
  std::vector<std::string> required_by;  // why it is there, for people
};

struct LockFile {
  nlohmann::json environment;             // EnvironmentJson of the target
  std::vector<std::string> requirements;  // as given, canonical strings
  std::vector<std::string> constraints;
  std::vector<LockedPackage> packages;    // by name
};

// The target as the lock records it: every marker variable, the interpreter and ABI, and the platform
// tags in order of preference.
nlohmann::json EnvironmentJson(const TargetEnvironment& target);

// The lock for a resolution. kInvalidArgument naming the dist when the index gave no sha256 for a
// chosen wheel: lazyfs never installs a wheel it cannot verify.
Result<LockFile> MakeLockFile(const ResolveRequest& request, const Resolution& resolution);

std::string LockFileText(const LockFile& lock);  // pretty JSON with a trailing newline

// kCorrupt naming `where` and the field for anything that is not a lock_version 1 file this code
// wrote: missing or mistyped fields, a name that is not canonical, a version that does not parse, a
// sha256 that is not 64 hex digits, a project twice.
Result<LockFile> ParseLockFile(std::string_view text, std::string_view where);

}  // namespace lazyfs::pkg
