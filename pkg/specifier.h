// PEP 440 version specifiers: one clause (`>=1.0`, `==2.*`, `~=1.4.5`, `===foo`) and comma-joined sets of
// them, with `packaging`'s canonical string, its membership rules (exclusive `<`/`>` for pre- and
// post-releases, local labels, wildcards, `~=`, `===` on the raw text) and its pre-release policy.
//
// The pre-release policy (`pre`): nullopt is the PEP 440 default. For Contains that admits a
// pre-release that matches; in Filter, pre-releases are kept only when no final release matches, or when
// a clause names a pre-release itself (`>=1.0a1`). `true` always admits them, `false` never.
//
// Thread safety: values; no shared state.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "pkg/version.h"

namespace lazyfs::pkg {

class Specifier {
 public:
  enum class Operator { kCompatible, kEqual, kNotEqual, kLessEqual, kGreaterEqual, kLess, kGreater, kArbitrary };

  // kInvalidArgument (naming `text`) when `text` is not one clause. Whitespace around the operator and
  // the version is dropped; the version is otherwise kept as written (ToString shows it unchanged).
  static Result<Specifier> Parse(std::string_view text);

  Operator op() const { return op_; }
  std::string_view OperatorText() const;
  const std::string& version_text() const { return version_text_; }  // as written, without ".*"
  bool wildcard() const { return wildcard_; }                        // "==1.0.*" or "!=1.0.*"
  std::string ToString() const;                                      // "~=1.4.5", "==1.0.*"

  // Whether this clause's own version is a pre-release (so the default policy admits pre-releases);
  // never for `!=` and wildcards.
  bool NamesPrerelease() const;

  // The version rules only, no pre-release policy. `===` compares `raw` (case-insensitively), every
  // other operator the parsed version; a `raw` that is no PEP 440 version matches `===` only.
  bool Matches(const Version& version) const;
  bool MatchesText(std::string_view raw) const;

  // Same meaning (what `packaging` treats as a duplicate in a set).
  bool SameAs(const Specifier& other) const;

 private:
  Operator op_ = Operator::kEqual;
  std::string version_text_;
  bool wildcard_ = false;
  std::optional<Version> version_;  // parsed version_text_ (absent for ===)
};

class SpecifierSet {
 public:
  // Comma-separated clauses; empty pieces are skipped, so "" is the set that admits everything.
  static Result<SpecifierSet> Parse(std::string_view text);
  static SpecifierSet Any() { return {}; }

  const std::vector<Specifier>& clauses() const { return clauses_; }  // sorted by their strings
  bool empty() const { return clauses_.empty(); }
  // Exactly one `==` clause without a wildcard, or one `===`: the pin PEP 592 lets take a yanked file
  // (and pip's hash-checking mode asks of every requirement).
  bool IsExactPin() const;
  std::string ToString() const;  // clauses sorted, duplicates (by meaning) dropped, comma-joined

  // `raw` need not be a valid version (then only `===` clauses, or the empty set, can admit it).
  bool Contains(std::string_view raw, std::optional<bool> pre = std::nullopt) const;
  bool Contains(const Version& version, std::optional<bool> pre = std::nullopt) const;
  // The indexes of `versions` kept, in input order, under the pre-release policy above.
  std::vector<size_t> Filter(std::span<const std::string> versions, std::optional<bool> pre = std::nullopt) const;

  // This set and `other` together (the clauses of both).
  SpecifierSet Intersect(const SpecifierSet& other) const;

 private:
  bool ImpliesPrereleases() const;
  std::vector<Specifier> clauses_;
};

}  // namespace lazyfs::pkg
