// Python string-literal escapes (see python_literal.h).
//
// Thread safety: pure functions, reentrant.
#include "pkg/python_literal.h"

#include <fmt/format.h>

namespace lazyfs::pkg {
namespace {

void AppendUtf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Error BadLiteral(std::string_view body, std::string_view why) {
  return InvalidArgument(fmt::format("invalid string literal \"{}\": {}", body, why));
}

}  // namespace

Result<std::string> DecodePythonStringLiteral(std::string_view body) {
  std::string out;
  out.reserve(body.size());
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    // Python reads "\r" and "\r\n" as line breaks too; none may stand raw in a one-line literal.
    if (c == '\n' || c == '\r') return BadLiteral(body, "a line break inside the quotes");
    if (c == '\0') return BadLiteral(body, "a NUL character");
    if (c != '\\') {
      out += c;
      continue;
    }
    if (i + 1 == body.size()) return BadLiteral(body, "the final backslash escapes the closing quote");
    char e = body[++i];
    switch (e) {
      case '\n': continue;  // line continuation
      case '\r':
        if (i + 1 < body.size() && body[i + 1] == '\n') ++i;
        continue;
      case '\\': out += '\\'; continue;
      case '\'': out += '\''; continue;
      case '"': out += '"'; continue;
      case 'a': out += '\a'; continue;
      case 'b': out += '\b'; continue;
      case 'f': out += '\f'; continue;
      case 'n': out += '\n'; continue;
      case 'r': out += '\r'; continue;
      case 't': out += '\t'; continue;
      case 'v': out += '\v'; continue;
      case 'N': return BadLiteral(body, "\\N{...} escapes are not supported");
      default: break;
    }
    if (e >= '0' && e <= '7') {
      char32_t cp = 0;
      size_t digits = 0;
      for (; digits < 3 && i < body.size() && body[i] >= '0' && body[i] <= '7'; ++digits, ++i) cp = cp * 8 + (body[i] - '0');
      --i;  // the loop's ++i moves past the last digit
      AppendUtf8(out, cp);
      continue;
    }
    size_t width = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (width == 0) {  // not an escape: Python keeps the backslash
      out += '\\';
      out += e;
      continue;
    }
    char32_t cp = 0;
    for (size_t k = 0; k < width; ++k) {
      int v = i + 1 < body.size() ? HexValue(body[i + 1]) : -1;
      if (v < 0) return BadLiteral(body, fmt::format("truncated \\{} escape", e));
      cp = cp * 16 + static_cast<char32_t>(v);
      ++i;
    }
    if (cp > 0x10FFFF) return BadLiteral(body, "escape past U+10FFFF");
    if (cp >= 0xD800 && cp <= 0xDFFF) return BadLiteral(body, "a lone surrogate escape");
    AppendUtf8(out, cp);
  }
  return out;
}

}  // namespace lazyfs::pkg
