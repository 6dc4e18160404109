// Parsing and printing PEP 508 requirements (see requirement.h).
//
// A hand-written descent over packaging's grammar (packaging/_parser.py):
//   requirement = WS? NAME WS? extras? WS? ( "@" WS? URL (WS (";" marker)?)? | specifier WS? (";" marker)? )
//   extras      = "[" WS? (NAME (WS? "," WS? NAME)*)? WS? "]"
//   specifier   = "(" WS? clauses WS? ")" | WS? clauses WS?
//   clauses     = (CLAUSE (WS? "," WS? CLAUSE)*)? with an optional trailing ","
// WS is spaces and tabs. A CLAUSE token is what packaging's specifier regex matches at that point; its
// extent decides where the specifier ends, and the clause text then goes to SpecifierSet::Parse.
// Everything after the ';' is the marker, which Marker::Parse takes whole.
//
// Thread safety: free functions on values, reentrant.
#include "pkg/requirement.h"

#include <fmt/format.h>

#include <array>
#include <utility>

#include "pkg/names.h"
#include "pkg/text.h"

namespace lazyfs::pkg {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAsciiAlnum(char c) { return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsVersionSeparator(char c) { return c == '-' || c == '_' || c == '.'; }

// The extent of one specifier clause, as packaging's tokenizer finds it: Specifier._specifier_regex_str
// matched at the start of the text, case-insensitively, `\s` being Python's whitespace. The regex's
// optional parts never force a backtrack into earlier ones, so a greedy left-to-right scan finds the
// same match.
class ClauseScanner {
 public:
  explicit ClauseScanner(std::string_view text) : text_(text) {}

  // The token's length, 0 when no clause starts here.
  size_t Match() {
    if (Consume("===")) {  // anything up to whitespace, ';' or ')'
      SkipPythonSpace();
      while (pos_ < text_.size() && text_[pos_] != ';' && text_[pos_] != ')' && !SpaceAt(pos_)) ++pos_;
      return pos_;
    }
    if (Consume("==") || Consume("!=")) {  // wildcards and local labels allowed
      SkipPythonSpace();
      if (!Release(1)) return 0;
      if (Consume(".*")) return pos_;
      Suffixes();
      Local();
      return pos_;
    }
    if (Consume("~=")) {  // at least two release components
      SkipPythonSpace();
      if (!Release(2)) return 0;
      Suffixes();
      return pos_;
    }
    if (Consume("<=") || Consume(">=") || Consume("<") || Consume(">")) {
      SkipPythonSpace();
      if (!Release(1)) return 0;
      Suffixes();
      return pos_;
    }
    return 0;
  }

 private:
  char At(size_t i) const { return i < text_.size() ? text_[i] : '\0'; }

  bool Consume(std::string_view s) {
    if (!text_.substr(pos_).starts_with(s)) return false;
    pos_ += s.size();
    return true;
  }

  // `word` at `at`, ignoring ASCII case; the position after it, or 0.
  size_t WordAt(size_t at, std::string_view word) const {
    if (at > text_.size() || !AsciiIEquals(text_.substr(at, word.size()), word)) return 0;
    return at + word.size();
  }

  size_t SkipDigits(size_t at) const {
    while (IsDigit(At(at))) ++at;
    return at;
  }

  // The length of the UTF-8 sequence a lead byte at `at` announces (1 for any other byte).
  size_t CharLength(size_t at) const {
    auto lead = static_cast<unsigned char>(text_[at]);
    return lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  }

  // Whether a Python whitespace character (a regex `\s`) starts at `at`.
  bool SpaceAt(size_t at) const { return at < text_.size() && HasPythonSpace(text_.substr(at, CharLength(at))); }

  void SkipPythonSpace() {
    while (SpaceAt(pos_)) pos_ += CharLength(pos_);
  }

  // v? (N!)? N(.N)* with at least `min_components` release numbers.
  bool Release(int min_components) {
    if (At(pos_) == 'v' || At(pos_) == 'V') ++pos_;
    size_t epoch_end = SkipDigits(pos_);
    if (epoch_end > pos_ && At(epoch_end) == '!') pos_ = epoch_end + 1;
    if (!IsDigit(At(pos_))) return false;
    pos_ = SkipDigits(pos_);
    int components = 1;
    while (At(pos_) == '.' && IsDigit(At(pos_ + 1))) {
      pos_ = SkipDigits(pos_ + 1);
      ++components;
    }
    return components >= min_components;
  }

  // An optional separator, the first of `words` found after it, an optional separator, digits.
  template <size_t N>
  void Labeled(const std::array<std::string_view, N>& words) {
    size_t at = IsVersionSeparator(At(pos_)) ? pos_ + 1 : pos_;
    for (std::string_view word : words) {
      if (size_t end = WordAt(at, word)) {
        if (IsVersionSeparator(At(end))) ++end;
        pos_ = SkipDigits(end);
        return;
      }
    }
  }

  // The pre-release, post-release and dev parts, each optional, in that order.
  void Suffixes() {
    static constexpr std::array<std::string_view, 8> kPre = {"alpha", "beta", "preview", "pre", "a", "b", "c", "rc"};
    static constexpr std::array<std::string_view, 3> kPost = {"post", "rev", "r"};
    static constexpr std::array<std::string_view, 1> kDev = {"dev"};
    Labeled(kPre);
    if (At(pos_) == '-' && IsDigit(At(pos_ + 1))) {
      pos_ = SkipDigits(pos_ + 1);  // the implicit post-release "1.0-1"
    } else {
      Labeled(kPost);
    }
    Labeled(kDev);
  }

  // +label(.label)*, labels of ASCII letters and digits.
  void Local() {
    if (At(pos_) != '+' || !IsAsciiAlnum(At(pos_ + 1))) return;
    ++pos_;
    while (IsAsciiAlnum(At(pos_))) ++pos_;
    while (IsVersionSeparator(At(pos_)) && IsAsciiAlnum(At(pos_ + 1))) {
      ++pos_;
      while (IsAsciiAlnum(At(pos_))) ++pos_;
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
};

class RequirementParser {
 public:
  explicit RequirementParser(std::string_view text) : text_(text) {}

  Result<Requirement> Parse() {
    Requirement req;
    SkipWs();
    req.name = LAZYFS_TRY(Name("package name"));
    SkipWs();
    if (Consume('[')) LAZYFS_TRY(Extras(req));
    SkipWs();

    std::string clauses;
    bool has_marker = false;
    if (Consume('@')) {
      SkipWs();
      size_t start = pos_;
      while (pos_ < text_.size() && text_[pos_] != ' ' && text_[pos_] != '\t') ++pos_;
      if (pos_ == start) return SyntaxError("a URL after '@'");
      req.url = std::string(text_.substr(start, pos_ - start));
      // The URL stops only at whitespace or the end, so a ';' right after it is part of it.
      SkipWs();
      has_marker = Consume(';');
      if (!has_marker && pos_ != text_.size()) return SyntaxError("';' (after the URL and whitespace) or the end");
    } else {
      bool parenthesised = Consume('(');
      SkipWs();
      clauses = LAZYFS_TRY(Clauses());
      SkipWs();
      if (parenthesised && !Consume(')')) return SyntaxError("')' closing the version specifier");
      SkipWs();
      has_marker = Consume(';');
      if (!has_marker && pos_ != text_.size()) {
        return SyntaxError(clauses.empty() ? "';' (after the name) or the end"
                                           : "',' or ';' (after the version specifier) or the end");
      }
    }
    if (has_marker) {  // the rest of the text, whole
      Result<Marker> marker = Marker::Parse(text_.substr(pos_));
      if (!marker) return std::move(marker).error().Context(fmt::format("requirement \"{}\"", text_));
      req.marker = std::move(*marker);
    }

    Result<SpecifierSet> specifier = SpecifierSet::Parse(clauses);
    if (!specifier) return std::move(specifier).error().Context(fmt::format("requirement \"{}\"", text_));
    req.specifier = std::move(*specifier);
    return req;
  }

 private:
  // A name or extra: packaging's identifier token. The longest run of name characters is taken whole;
  // one that ends in '-' or '.' cannot be followed by any token, so it is refused here.
  Result<std::string> Name(std::string_view what) {
    size_t length = NameRunLength(text_.substr(pos_));
    if (length == 0) return SyntaxError(fmt::format("a {}", what));
    std::string_view name = text_.substr(pos_, length);
    if (!IsValidName(name)) {
      return InvalidArgument(fmt::format("invalid requirement \"{}\": {} \"{}\" ends in '{}' at column {}", text_,
                                         what, name, name.back(), pos_ + 1));
    }
    pos_ += length;
    return std::string(name);
  }

  Status Extras(Requirement& req) {
    SkipWs();
    if (NameRunLength(text_.substr(pos_)) > 0) {
      for (;;) {
        req.extras.insert(LAZYFS_TRY(Name("extra name")));
        SkipWs();
        if (!Consume(',')) break;
        SkipWs();
        if (NameRunLength(text_.substr(pos_)) == 0) return SyntaxError("an extra name after ','");
      }
    }
    SkipWs();
    if (!Consume(']')) return SyntaxError("',' or ']' in the extras");
    return Ok();
  }

  // The clauses as written (comma-joined, whitespace between tokens dropped), for SpecifierSet::Parse.
  Result<std::string> Clauses() {
    std::string out;
    while (size_t length = ClauseScanner(text_.substr(pos_)).Match()) {
      out += text_.substr(pos_, length);
      pos_ += length;
      std::string_view rest = text_.substr(pos_);
      if (rest.starts_with(".*")) return SyntaxError("no '.*' (a wildcard needs == or != and a plain release)");
      if (rest.starts_with('+')) return SyntaxError("no '+' (a local version label needs == or != and letters or digits)");
      SkipWs();
      if (!Consume(',')) break;
      out += ',';
      SkipWs();
    }
    return out;
  }

  void SkipWs() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }

  bool Consume(char c) {
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  Error SyntaxError(std::string_view expected) const {
    return InvalidArgument(fmt::format("invalid requirement \"{}\": expected {} at column {}", text_, expected, pos_ + 1));
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

Result<Requirement> Requirement::Parse(std::string_view text) { return RequirementParser(text).Parse(); }

std::string Requirement::ToString() const {
  std::string out = name;
  if (!extras.empty()) {
    out += '[';
    for (auto it = extras.begin(); it != extras.end(); ++it) {
      if (it != extras.begin()) out += ',';
      out += *it;
    }
    out += ']';
  }
  if (!specifier.empty()) out += specifier.ToString();
  if (url) {
    out += " @ " + *url;
    if (marker) out += ' ';
  }
  if (marker) out += "; " + marker->ToString();
  return out;
}

std::string Requirement::CanonicalName() const { return pkg::CanonicalName(name); }

}  // namespace lazyfs::pkg
