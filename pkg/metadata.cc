// Core metadata header parsing (see metadata.h).
//
// Python's email parser, which packaging and pip use, is lenient where this is strict: a line that is
// not a field ends its header and starts the body (the fields after it are silently lost), and bytes
// that are not UTF-8 survive as surrogates. An installer that keeps going on half a header can miss
// Requires-Dist lines, so here both are errors. Folded values are unfolded, where packaging keeps the
// line break inside the value.
//
// One pass over the header; each byte is looked at a bounded number of times, and appending a
// continuation to its field is amortised constant per byte.
//
// Thread safety: pure functions.
#include "pkg/metadata.h"

#include <algorithm>
#include <cstdint>

#include "pkg/text.h"

namespace lazyfs::pkg {
namespace {

// How much of a bad line an error message quotes.
constexpr size_t kQuotedLineBytes = 60;

bool IsSpaceOrTab(char c) { return c == ' ' || c == '\t'; }

std::string_view StripSpaceAndTab(std::string_view s) {
  while (!s.empty() && IsSpaceOrTab(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpaceOrTab(s.back())) s.remove_suffix(1);
  return s;
}

// RFC 5322 field names: printable ASCII other than ':' (and so no space).
bool IsFieldNameChar(char c) { return c >= 0x21 && c <= 0x7e && c != ':'; }

// Whether `s` is well-formed UTF-8 as Python's decoder sees it: no overlong forms, no surrogates,
// nothing past U+10FFFF.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<uint8_t>(s[i]);
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    // The sequence length from the lead byte, and the smallest code point that needs that length.
    const size_t length = (b0 & 0xe0) == 0xc0 ? 2 : (b0 & 0xf0) == 0xe0 ? 3 : (b0 & 0xf8) == 0xf0 ? 4 : 0;
    if (length == 0) return false;  // a continuation byte or 0xf8.. where a character should start
    constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    uint32_t c = b0 & (0x7f >> length);
    if (s.size() - i < length) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto b = static_cast<uint8_t>(s[i + k]);
      if ((b & 0xc0) != 0x80) return false;
      c = (c << 6) | (b & 0x3f);
    }
    if (c < kMinForLength[length] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
    i += length;
  }
  return true;
}

// At most kQuotedLineBytes of a valid UTF-8 line, cut on a character boundary.
std::string Quote(std::string_view line) {
  if (line.size() <= kQuotedLineBytes) return "\"" + std::string(line) + "\"";
  size_t cut = kQuotedLineBytes;
  while (cut > 0 && (static_cast<uint8_t>(line[cut]) & 0xc0) == 0x80) --cut;
  return "\"" + std::string(line.substr(0, cut)) + "...\"";
}

// The major version of "<major>.<minor>" (both decimal); nullopt for anything else.
std::optional<uint64_t> MetadataMajorVersion(std::string_view v) {
  size_t dot = v.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == v.size()) return std::nullopt;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i != dot && !(v[i] >= '0' && v[i] <= '9')) return std::nullopt;
  }
  if (dot > 9) return std::nullopt;  // a major version that does not fit is certainly not one we know
  uint64_t major = 0;
  for (size_t i = 0; i < dot; ++i) major = major * 10 + static_cast<uint64_t>(v[i] - '0');
  return major;
}

}  // namespace

Result<CoreMetadata> ParseCoreMetadata(std::string_view text, std::string_view where) {
  size_t line_number = 0;
  auto bad = [&](const std::string& why) {
    return Corrupt(std::string(where) + ": line " + std::to_string(line_number) + ": " + why);
  };

  CoreMetadata m;
  std::string requires_python;
  bool seen_name = false, seen_version = false, seen_metadata_version = false, seen_requires_python = false,
       seen_summary = false;
  bool have_field = false;      // a field line came before, so a continuation has something to continue
  std::string* open = nullptr;  // the kept value a continuation appends to; null for a skipped field

  // The header counts up to and including the line break of its last field. Only the first
  // kMaxMetadataHeaderBytes, and a CRLF blank line right after them, are ever searched.
  const std::string_view window = text.substr(0, std::min(text.size(), kMaxMetadataHeaderBytes + 2));
  auto too_big = [&] {
    return Corrupt(std::string(where) + ": the metadata header is larger than " +
                   std::to_string(kMaxMetadataHeaderBytes) + " bytes");
  };
  size_t pos = 0;
  while (pos < text.size()) {
    ++line_number;
    size_t end = window.find('\n', pos);
    size_t next = end + 1;
    if (end == std::string_view::npos) {
      if (text.size() > window.size()) return too_big();
      end = next = text.size();
    }
    std::string_view line = text.substr(pos, end - pos);
    pos = next;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the description follows
    if (next > kMaxMetadataHeaderBytes) return too_big();
    if (!IsValidUtf8(line)) return bad("bytes that are not UTF-8");

    if (IsSpaceOrTab(line.front())) {
      if (!have_field) return bad("a continuation line before any field: " + Quote(line));
      if (open != nullptr) *open += line;
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return bad("neither a field nor a continuation line: " + Quote(line));
    }
    std::string_view field = line.substr(0, colon);
    for (char c : field) {
      if (!IsFieldNameChar(c)) return bad("neither a field nor a continuation line: " + Quote(line));
    }
    have_field = true;
    open = nullptr;
    std::string value(StripSpaceAndTab(line.substr(colon + 1)));

    // Marks a single-use field as seen; true when it had been seen already.
    auto twice = [&](bool& seen) {
      bool repeated = seen;
      seen = true;
      return repeated;
    };
    const std::string lower = AsciiLower(field);
    if (lower == "name") {
      if (twice(seen_name)) return bad("a second " + std::string(field) + " field");
      m.name = std::move(value);
      open = &m.name;
    } else if (lower == "version") {
      if (twice(seen_version)) return bad("a second " + std::string(field) + " field");
      m.version = std::move(value);
      open = &m.version;
    } else if (lower == "metadata-version") {
      if (twice(seen_metadata_version)) return bad("a second " + std::string(field) + " field");
      m.metadata_version = std::move(value);
      open = &m.metadata_version;
    } else if (lower == "requires-python") {
      if (twice(seen_requires_python)) return bad("a second " + std::string(field) + " field");
      requires_python = std::move(value);
      open = &requires_python;
    } else if (lower == "summary") {
      if (!twice(seen_summary)) {
        m.summary = std::move(value);
        open = &m.summary;
      }
    } else if (lower == "requires-dist") {
      m.requires_dist.push_back(std::move(value));
      open = &m.requires_dist.back();  // stable until the next push_back, which ends this field
    } else if (lower == "provides-extra") {
      m.provides_extra.push_back(std::move(value));
      open = &m.provides_extra.back();
    }
  }

  // Continuations were appended with their leading whitespace and may have followed an empty value.
  auto strip = [](std::string& s) { s = std::string(StripSpaceAndTab(s)); };
  for (std::string* s : {&m.name, &m.version, &m.metadata_version, &m.summary, &requires_python}) strip(*s);
  for (std::string& s : m.requires_dist) strip(s);
  for (std::string& s : m.provides_extra) strip(s);
  if (seen_requires_python) m.requires_python = std::move(requires_python);

  const std::string prefix = std::string(where) + ": ";
  if (m.name.empty()) return Corrupt(prefix + (seen_name ? "the Name field is empty" : "no Name field"));
  if (m.version.empty()) return Corrupt(prefix + (seen_version ? "the Version field is empty" : "no Version field"));
  if (seen_metadata_version) {
    std::optional<uint64_t> major = MetadataMajorVersion(m.metadata_version);
    if (!major) return Corrupt(prefix + "Metadata-Version " + Quote(m.metadata_version) + " is not <major>.<minor>");
    if (*major >= 3) {
      return Unsupported(prefix + "Metadata-Version " + Quote(m.metadata_version) +
                         " is newer than the 2.x versions lazyfs reads");
    }
  }
  return m;
}

}  // namespace lazyfs::pkg
