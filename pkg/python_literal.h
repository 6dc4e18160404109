// Python string literals, decoded as ast.literal_eval does: packaging evaluates every quoted marker value
// that way, so `"\x70osix"` means "posix" and `"C:\"` does not parse. Text is UTF-8.
//
// Thread safety: pure functions on values.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace lazyfs::pkg {

// The value of a one-line Python string literal whose quotes have been removed: `body` is what stood
// between them and holds no unescaped quote of its own kind. Escapes are Python's: \\ \' \" \a \b \f \n
// \r \t \v, \ooo octal, \xhh, \uXXXX, \UXXXXXXXX, a backslash before a line break joins the lines, and a
// backslash before any other character stays as it is.
// kInvalidArgument for what Python refuses: a raw line break or NUL, a backslash at the very end (it
// escapes the closing quote), truncated \x/\u/\U escapes, code points past U+10FFFF. Also refused, where
// Python would accept: lone surrogates (UTF-8 cannot hold them) and \N{name} (no Unicode name table).
Result<std::string> DecodePythonStringLiteral(std::string_view body);

}  // namespace lazyfs::pkg
