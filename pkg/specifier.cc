#include "pkg/specifier.h"

#include <algorithm>

#include "pkg/text.h"

namespace lazyfs::pkg {
namespace {

using Op = Specifier::Operator;

struct OperatorSpelling {
  std::string_view text;
  Op op;
};
// Longest first, so "===" is not read as "==" and "<=" not as "<".
constexpr OperatorSpelling kOperators[] = {{"===", Op::kArbitrary}, {"~=", Op::kCompatible}, {"==", Op::kEqual},
                                           {"!=", Op::kNotEqual},   {"<=", Op::kLessEqual},  {">=", Op::kGreaterEqual},
                                           {"<", Op::kLess},        {">", Op::kGreater}};

// The smallest version of the series after `prefix`'s last release number: 1.2 -> 1.3.dev0.
Version NextPrefixDev0(uint64_t epoch, std::vector<uint64_t> release) {
  ++release.back();
  return Version::FromParts(epoch, std::move(release), std::nullopt, std::nullopt, 0);
}

// Whether `v` is V itself, V+local, or a post-release of V (and their dev releases): the versions `>V`
// excludes when V is a final or a pre-release.
bool InPostFamily(const Version& v, const Version& spec) {
  return v.epoch() == spec.epoch() && Version::FromParts(0, v.release()) == Version::FromParts(0, spec.release()) &&
         v.pre() == spec.pre();
}

// packaging's canonicalize_version: normalised, trailing zeros of the release stripped unless asked not to.
std::string CanonicalVersion(const Version& v, bool strip_trailing_zero) {
  std::vector<uint64_t> release = v.release();
  if (strip_trailing_zero) {
    while (release.size() > 1 && release.back() == 0) release.pop_back();
  }
  Version stripped = Version::FromParts(v.epoch(), release, v.pre(), v.post(), v.dev());
  std::string out = stripped.ToString();
  if (v.HasLocal()) out += "+" + v.LocalString();
  return out;
}

}  // namespace

Result<Specifier> Specifier::Parse(std::string_view input) {
  std::string_view text = StripPythonSpace(input);
  auto invalid = [&](std::string_view why) {
    return InvalidArgument("invalid version specifier '" + std::string(input) + "': " + std::string(why));
  };
  Specifier spec;
  bool found = false;
  for (const OperatorSpelling& o : kOperators) {
    if (text.starts_with(o.text)) {
      spec.op_ = o.op;
      text.remove_prefix(o.text.size());
      found = true;
      break;
    }
  }
  if (!found) return invalid("no operator (one of ~= == != <= >= < > ===)");
  text = StripPythonSpace(text);
  if (HasPythonSpace(text)) return invalid("whitespace inside the version");
  if (spec.op_ == Op::kArbitrary) {
    // Anything but whitespace, ';' and ')' (the characters that end a specifier inside a requirement).
    if (text.find_first_of(";)") != std::string_view::npos) return invalid("';' or ')' in an arbitrary version");
    spec.version_text_ = std::string(text);
    return spec;
  }
  if ((spec.op_ == Op::kEqual || spec.op_ == Op::kNotEqual) && text.ends_with(".*")) {
    spec.wildcard_ = true;
    text.remove_suffix(2);
  }
  Result<Version> version = Version::Parse(text);
  if (!version) return invalid(version.error().message());
  if (spec.wildcard_ && (version->pre() || version->post() || version->dev() || version->HasLocal())) {
    return invalid("a wildcard follows the release numbers only (==1.2.*)");
  }
  bool allows_local = spec.op_ == Op::kEqual || spec.op_ == Op::kNotEqual;
  if (version->HasLocal() && !allows_local) return invalid("only == and != take a local version");
  if (spec.op_ == Op::kCompatible && version->release().size() < 2) {
    return invalid("~= needs at least two release numbers (~=1.4)");
  }
  spec.version_text_ = std::string(text);
  spec.version_ = std::move(*version);
  return spec;
}

std::string_view Specifier::OperatorText() const {
  for (const OperatorSpelling& o : kOperators) {
    if (o.op == op_) return o.text;
  }
  return "?";
}

std::string Specifier::ToString() const {
  return std::string(OperatorText()) + version_text_ + (wildcard_ ? ".*" : "");
}

bool Specifier::NamesPrerelease() const {
  if (op_ == Op::kNotEqual || wildcard_) return false;
  if (op_ == Op::kArbitrary) {
    Result<Version> v = Version::Parse(version_text_);
    return v && v->IsPrerelease();
  }
  return version_->IsPrerelease();
}

bool Specifier::MatchesText(std::string_view raw) const {
  if (op_ == Op::kArbitrary) return AsciiIEquals(raw, version_text_);
  Result<Version> v = Version::Parse(raw);
  return v && Matches(*v);
}

bool Specifier::Matches(const Version& v) const {
  if (op_ == Op::kArbitrary) return AsciiIEquals(v.ToString(), version_text_);
  const Version& spec = *version_;
  if (wildcard_) {
    // ==1.2.* is [1.2.dev0, 1.3.dev0), whatever the candidate's pre, post, dev or local parts.
    bool in = Version::FromParts(spec.epoch(), spec.release(), std::nullopt, std::nullopt, 0) <= v &&
              v < NextPrefixDev0(spec.epoch(), spec.release());
    return op_ == Op::kEqual ? in : !in;
  }
  switch (op_) {
    case Op::kEqual:
    case Op::kNotEqual: {
      // Without a local label in the specifier, every local label of V matches.
      bool equal = spec.HasLocal() ? v == spec : v.WithoutLocal() == spec;
      return op_ == Op::kEqual ? equal : !equal;
    }
    case Op::kGreaterEqual: return v >= spec;
    case Op::kLessEqual: return v.WithoutLocal() <= spec;
    case Op::kLess: {
      // <V excludes V's own pre-releases (from V.dev0 on) unless V is a pre-release itself.
      if (spec.IsPrerelease()) return v < spec;
      return v < Version::FromParts(spec.epoch(), spec.release(), spec.pre(), spec.post(), 0);
    }
    case Op::kGreater: {
      if (spec.dev()) {
        return v >= Version::FromParts(spec.epoch(), spec.release(), spec.pre(), spec.post(), *spec.dev() + 1);
      }
      if (spec.post()) return v >= Version::FromParts(spec.epoch(), spec.release(), spec.pre(), *spec.post() + 1, 0);
      // >V excludes V, V+local and V's post-releases.
      return v > spec && !InPostFamily(v, spec);
    }
    case Op::kCompatible: {
      // ~=1.4.5 is >=1.4.5 within 1.4.*.
      std::vector<uint64_t> prefix(spec.release().begin(), spec.release().end() - 1);
      return v >= spec && v < NextPrefixDev0(spec.epoch(), std::move(prefix));
    }
    case Op::kArbitrary: break;
  }
  return false;
}

bool Specifier::SameAs(const Specifier& other) const {
  if (op_ != other.op_) return false;
  if (op_ == Op::kArbitrary || wildcard_ || other.wildcard_) {
    return wildcard_ == other.wildcard_ && version_text_ == other.version_text_;
  }
  bool strip = op_ != Op::kCompatible;
  return CanonicalVersion(*version_, strip) == CanonicalVersion(*other.version_, strip);
}

Result<SpecifierSet> SpecifierSet::Parse(std::string_view text) {
  SpecifierSet set;
  std::vector<Specifier> parsed;
  size_t from = 0;
  while (from <= text.size()) {
    size_t comma = std::min(text.find(',', from), text.size());
    std::string_view piece = text.substr(from, comma - from);
    from = comma + 1;
    if (StripPythonSpace(piece).empty()) continue;
    Result<Specifier> spec = Specifier::Parse(piece);
    if (!spec) return std::move(spec).error();
    parsed.push_back(std::move(*spec));
  }
  // Sorted by their strings, then the first of each meaning kept (packaging's canonical set).
  std::stable_sort(parsed.begin(), parsed.end(),
                   [](const Specifier& a, const Specifier& b) { return a.ToString() < b.ToString(); });
  for (Specifier& s : parsed) {
    bool duplicate = std::any_of(set.clauses_.begin(), set.clauses_.end(), [&](const Specifier& k) { return k.SameAs(s); });
    if (!duplicate) set.clauses_.push_back(std::move(s));
  }
  return set;
}

std::string SpecifierSet::ToString() const {
  std::string out;
  for (const Specifier& s : clauses_) out += (out.empty() ? "" : ",") + s.ToString();
  return out;
}

bool SpecifierSet::IsExactPin() const {
  if (clauses_.size() != 1) return false;
  const Specifier& only = clauses_[0];
  return (only.op() == Specifier::Operator::kEqual && !only.wildcard()) || only.op() == Specifier::Operator::kArbitrary;
}

bool SpecifierSet::ImpliesPrereleases() const {
  return std::any_of(clauses_.begin(), clauses_.end(), [](const Specifier& s) { return s.NamesPrerelease(); });
}

bool SpecifierSet::Contains(const Version& version, std::optional<bool> pre) const {
  if (pre == false && version.IsPrerelease()) return false;
  return std::all_of(clauses_.begin(), clauses_.end(), [&](const Specifier& s) { return s.Matches(version); });
}

bool SpecifierSet::Contains(std::string_view raw, std::optional<bool> pre) const {
  Result<Version> version = Version::Parse(raw);
  if (version && pre == false && version->IsPrerelease()) return false;
  // `===` compares the text as given; every other clause needs a version.
  return std::all_of(clauses_.begin(), clauses_.end(), [&](const Specifier& s) {
    if (s.op() == Specifier::Operator::kArbitrary) return s.MatchesText(raw);
    return version && s.Matches(*version);
  });
}

std::vector<size_t> SpecifierSet::Filter(std::span<const std::string> versions, std::optional<bool> pre) const {
  if (!pre && ImpliesPrereleases()) pre = true;
  bool arbitrary = std::any_of(clauses_.begin(), clauses_.end(),
                               [](const Specifier& s) { return s.op() == Specifier::Operator::kArbitrary; });
  // Text that is no version can only pass `===` clauses or an empty set; it cannot be known to be a
  // pre-release, so the default policy keeps it (before the first final, as packaging yields it).
  bool keeps_text = arbitrary || clauses_.empty();
  std::vector<size_t> kept, finals_and_text, held;
  bool found_final = false;
  for (size_t i = 0; i < versions.size(); ++i) {
    Result<Version> version = Version::Parse(versions[i]);
    if (!version && !keeps_text) continue;
    bool matches = std::all_of(clauses_.begin(), clauses_.end(), [&](const Specifier& s) {
      if (s.op() == Specifier::Operator::kArbitrary) return s.MatchesText(versions[i]);
      return version && s.Matches(*version);
    });
    if (!matches) continue;
    if (pre == true) {
      kept.push_back(i);
    } else if (pre == false) {
      if (!version || !version->IsPrerelease()) kept.push_back(i);
    } else if (!version) {
      // Held with the pre-releases until a final shows up, then released in front of it.
      if (found_final) {
        finals_and_text.push_back(i);
      } else {
        held.push_back(i);
      }
    } else if (!version->IsPrerelease()) {
      if (!found_final) {
        for (size_t h : held) {
          if (!Version::Parse(versions[h])) finals_and_text.push_back(h);
        }
        found_final = true;
      }
      finals_and_text.push_back(i);
    } else if (!found_final) {
      held.push_back(i);
    }
  }
  if (pre) return kept;
  return found_final ? finals_and_text : held;
}

SpecifierSet SpecifierSet::Intersect(const SpecifierSet& other) const {
  SpecifierSet out = *this;
  for (const Specifier& s : other.clauses_) {
    bool duplicate = std::any_of(out.clauses_.begin(), out.clauses_.end(), [&](const Specifier& k) { return k.SameAs(s); });
    if (!duplicate) out.clauses_.push_back(s);
  }
  std::stable_sort(out.clauses_.begin(), out.clauses_.end(),
                   [](const Specifier& a, const Specifier& b) { return a.ToString() < b.ToString(); });
  return out;
}

}  // namespace lazyfs::pkg
