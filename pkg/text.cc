#include "pkg/text.h"

#include <cstdint>
#include <optional>

namespace lazyfs::pkg {
namespace {

// Python's str.isspace(): the characters its regular expressions' \s matches in str patterns.
bool IsPythonSpace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

// The code point that starts at `at`, and its length in bytes; nullopt for invalid UTF-8.
std::optional<std::pair<uint32_t, size_t>> DecodeAt(std::string_view text, size_t at) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  uint8_t lead = byte(at);
  size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xe ? 3 : (lead >> 3) == 0x1e ? 4 : 0;
  if (length == 0 || at + length > text.size()) return std::nullopt;
  uint32_t c = length == 1 ? lead : lead & (0x7f >> length);
  for (size_t i = 1; i < length; ++i) {
    if ((byte(at + i) & 0xc0) != 0x80) return std::nullopt;
    c = (c << 6) | (byte(at + i) & 0x3f);
  }
  return std::make_pair(c, length);
}

// Where the code point ending at `end` (exclusive) starts, if it is valid UTF-8.
std::optional<std::pair<uint32_t, size_t>> DecodeBefore(std::string_view text, size_t end) {
  for (size_t length = 1; length <= 4 && length <= end; ++length) {
    if ((static_cast<uint8_t>(text[end - length]) & 0xc0) == 0x80) continue;
    auto decoded = DecodeAt(text, end - length);
    if (decoded && decoded->second == length) return decoded;
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::string_view StripPythonSpace(std::string_view text) {
  size_t begin = 0;
  while (begin < text.size()) {
    auto decoded = DecodeAt(text, begin);
    if (!decoded || !IsPythonSpace(decoded->first)) break;
    begin += decoded->second;
  }
  size_t end = text.size();
  while (end > begin) {
    auto decoded = DecodeBefore(text, end);
    if (!decoded || !IsPythonSpace(decoded->first)) break;
    end -= decoded->second;
  }
  return text.substr(begin, end - begin);
}

bool HasPythonSpace(std::string_view text) {
  for (size_t at = 0; at < text.size();) {
    auto decoded = DecodeAt(text, at);
    if (!decoded) {
      ++at;
      continue;
    }
    if (IsPythonSpace(decoded->first)) return true;
    at += decoded->second;
  }
  return false;
}

}  // namespace lazyfs::pkg
