// Python package and extra names: the PEP 503 canonical form that makes "Foo_Bar", "foo.bar" and "FOO-bar"
// one project, the PEP 685 rule that compares extras the same way, and the name syntax PEP 508
// requirements accept.
//
// Only ASCII is folded: valid names are ASCII, and a name with other characters is refused before it
// needs a canonical form. (packaging's str.lower() would also lower-case non-ASCII letters.)
//
// Thread safety: pure functions on values.
#pragma once

#include <string>
#include <string_view>

namespace lazyfs::pkg {

// PEP 503: ASCII letters lower-cased, each run of '-', '_' and '.' replaced by one '-'
// ("Foo..Bar__baz" -> "foo-bar-baz"). Other characters are kept; nothing is validated.
std::string CanonicalName(std::string_view name);

// PEP 685: extras compare under the PEP 503 rule, so this is CanonicalName under the name a caller means.
inline std::string NormalizeExtra(std::string_view extra) { return CanonicalName(extra); }

// Whether `name` is a project or extra name as a PEP 508 requirement accepts it (packaging's tokenizer):
// ASCII letters, digits, '.', '_' and '-'; the first character a letter or digit, the last not '-' or '.'
// ("name_" is valid, "_name" and "name-" are not).
bool IsValidName(std::string_view name);

// The length of the longest prefix of `text` made of name characters after a leading letter or digit
// (0 when `text` does not start with one). Whether that prefix is a valid name is IsValidName's call:
// the requirement parser takes the longest run and refuses it whole, as packaging's tokenizer does.
size_t NameRunLength(std::string_view text);

}  // namespace lazyfs::pkg
