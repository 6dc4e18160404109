// A wheel's RECORD (PEP 376/427, the packaging spec "Recording installed projects"): CSV rows of
// `path,sha256=<urlsafe base64, no padding>,size`, read to check what a wheel holds and written for what an
// install put on disk.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/result.h"

namespace lazyfs::pkg {

struct RecordRow {
  std::string path;              // '/'-separated, relative
  std::string hash;              // "sha256=..." or "" (RECORD lists itself without one)
  std::optional<uint64_t> size;  // bytes, or none
};

// Python's csv module rules (the writer of nearly every RECORD): ',' separates, '"' quotes a field and
// "" is a quote inside one, rows end in LF or CRLF. kCorrupt naming `where` and the line for a row
// without three fields, an unterminated quote, or a size that is not a number.
Result<std::vector<RecordRow>> ParseRecord(std::string_view text, std::string_view where);

// "sha256=" + the urlsafe base64 of `data`'s SHA-256 without padding, as RECORD writes it.
std::string RecordHash(std::string_view data);
std::string RecordHash(const Sha256Digest& digest);

// The CSV text of `rows`, quoting fields that need it, LF line ends.
std::string RecordText(const std::vector<RecordRow>& rows);

}  // namespace lazyfs::pkg
