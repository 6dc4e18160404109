// Core metadata: the header of a wheel's `METADATA` or an sdist's `PKG-INFO` (RFC 822 style, metadata
// versions 1.0 to 2.4), reduced to the fields an installer needs, kept as the raw strings the file
// holds. Requires-Dist lines become requirements with Requirement::Parse, at the caller.
//
// Thread safety: a pure function on values.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace lazyfs::pkg {

// The largest header (the fields before the first blank line) ParseCoreMetadata reads. Real headers
// are a few KiB. The description that follows is never read, so its size does not count.
inline constexpr size_t kMaxMetadataHeaderBytes = size_t{1} << 20;

struct CoreMetadata {
  std::string metadata_version;            // "2.1"; "" when the file has none
  std::string name;                        // as written; never empty
  std::string version;                     // as written; never empty
  std::vector<std::string> requires_dist;  // file order
  std::optional<std::string> requires_python;
  std::vector<std::string> provides_extra;  // file order
  std::string summary;                      // "" when absent
};

// Parses the header of `text` up to its first blank line: `Field: value` lines, field names
// case-insensitive, LF or CRLF line ends. A line that starts with a space or tab continues the field
// before it; it is unfolded as RFC 5322 says (the line break goes, the whitespace stays), so
// "Summary: a\n  b" is "a  b". Values are stripped of surrounding spaces and tabs. Fields other than
// the ones kept are skipped; for a repeated Summary the first wins.
//
// Errors name `where` (the file or URL) and the line:
//   kCorrupt: no Name or no Version (or an empty one); Name, Version, Metadata-Version or
//     Requires-Python given twice; a line that is neither a field nor a continuation (or a
//     continuation before any field); bytes in the header that are not UTF-8; a Metadata-Version
//     that is not <major>.<minor>; a header longer than kMaxMetadataHeaderBytes (found after reading
//     at most that many bytes, so a huge file costs no more).
//   kUnsupported: Metadata-Version 3.0 or later (the spec says to refuse a newer major version).
Result<CoreMetadata> ParseCoreMetadata(std::string_view text, std::string_view where);

}  // namespace lazyfs::pkg
