// PEP 508 dependency specifiers ("requests[socks] >=2.8, <3 ; python_version >= '3.8'"): the parts a
// requirement names and packaging's canonical string for it.
//
// Parsed as packaging parses them: the name and extras are kept as written (extras as a set, so
// duplicates vanish), the specifier may stand in parentheses and may end in a comma, and after `@` the
// URL runs to the next space or tab, so a marker after a URL needs whitespace before its ';'.
//
// Thread safety: plain values.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/result.h"
#include "pkg/marker.h"
#include "pkg/specifier.h"

namespace lazyfs::pkg {

struct Requirement {
  std::string name;              // verbatim: "Foo.Bar"
  std::set<std::string> extras;  // verbatim spellings, not PEP 685 normalised
  SpecifierSet specifier;        // empty with a URL or without any clause
  std::optional<std::string> url;
  std::optional<Marker> marker;

  // kInvalidArgument naming `text` and what was expected where (or the specifier or marker that fails).
  static Result<Requirement> Parse(std::string_view text);

  // packaging's str(Requirement): name, "[extras]" sorted and comma-joined, the specifier's canonical
  // string, " @ URL", then "; MARKER" (" ; MARKER" after a URL, which would otherwise swallow the ';').
  std::string ToString() const;

  // The PEP 503 form of the name, the one to compare projects by.
  std::string CanonicalName() const;
};

}  // namespace lazyfs::pkg
