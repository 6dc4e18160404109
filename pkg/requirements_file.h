// pip's requirements files (`-r FILE`, `-c FILE`): one PEP 508 requirement per line, `#` comments, `\`
// continuations, `--hash=ALG:HEX` after a requirement, nested `-r`/`-c` (relative to the including file),
// and the index options `-i/--index-url` and `--extra-index-url`. What pip accepts that lazyfs does not
// act on (editable installs, `--find-links`, `--no-binary`, other options) is an error naming the file
// and line, never silently dropped.
//
// Thread safety: pure functions (file reads through the given loader).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "pkg/requirement.h"

namespace lazyfs::pkg {

struct RequirementLine {
  Requirement requirement;
  std::vector<std::string> hashes;  // "sha256:<hex>" as written after --hash=
  std::string where;                // "FILE:LINE", for messages
};

struct RequirementsFile {
  std::vector<RequirementLine> requirements;
  std::vector<RequirementLine> constraints;  // from -c files: limit versions, never add a project
  std::optional<std::string> index_url;
  std::vector<std::string> extra_index_urls;
};

// Reads a file's text; ReadRequirementsFile uses the real file system, tests a map.
using FileLoader = std::function<Result<std::string>(const std::string& path)>;

// Parses `path` and every file it includes. kInvalidArgument (with FILE:LINE) for a line that does not
// parse, kNotFound for a missing file, and an error for an include cycle.
Result<RequirementsFile> ReadRequirementsFile(const std::string& path, const FileLoader& load);
Result<RequirementsFile> ReadRequirementsFile(const std::string& path);

}  // namespace lazyfs::pkg
