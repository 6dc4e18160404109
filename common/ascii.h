// ASCII case folding, the one place for it: HTTP header names, URL schemes and hosts, and the Python
// packaging names and version spellings, all of which are case-insensitive in ASCII only.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace lazyfs {

inline char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string AsciiLower(std::string_view text);

// ASCII case-insensitive equality.
bool AsciiIEquals(std::string_view a, std::string_view b);

}  // namespace lazyfs
