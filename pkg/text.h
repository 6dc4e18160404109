// Text helpers the PEP parsers share: Python's idea of whitespace (`str.strip()` and the `\s` of its
// regular expressions, which include Unicode spaces such as U+00A0 and U+3000).
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/ascii.h"  // AsciiLower, AsciiIEquals

namespace lazyfs::pkg {

// `text` without leading and trailing Python whitespace (UTF-8; invalid UTF-8 is not whitespace).
std::string_view StripPythonSpace(std::string_view text);

// Whether `text` holds any Python whitespace character.
bool HasPythonSpace(std::string_view text);


}  // namespace lazyfs::pkg
