// Name normalisation and validation (see names.h).
//
// Thread safety: pure functions, reentrant.
#include "pkg/names.h"

#include "common/ascii.h"

namespace lazyfs::pkg {
namespace {

bool IsAsciiAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool IsSeparator(char c) { return c == '-' || c == '_' || c == '.'; }

}  // namespace

std::string CanonicalName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (IsSeparator(c)) {
      while (i + 1 < name.size() && IsSeparator(name[i + 1])) ++i;
      out += '-';
    } else {
      out += AsciiLower(c);
    }
  }
  return out;
}

size_t NameRunLength(std::string_view text) {
  if (text.empty() || !IsAsciiAlnum(text[0])) return 0;
  size_t n = 1;
  while (n < text.size() && (IsAsciiAlnum(text[n]) || IsSeparator(text[n]))) ++n;
  return n;
}

bool IsValidName(std::string_view name) {
  // '_' may end a name: packaging's identifier token ends at a regex word boundary, and '_' is a word
  // character while '-' and '.' are not.
  return !name.empty() && NameRunLength(name) == name.size() && name.back() != '-' && name.back() != '.';
}

}  // namespace lazyfs::pkg
