#include "pkg/version.h"

#include <algorithm>

#include "pkg/text.h"

namespace lazyfs::pkg {
namespace {

constexpr size_t kMaxDigits = 18;  // fits uint64_t with room; longer numbers are refused

// A left-to-right scanner over the version grammar (packaging's regular expression, whose quantifiers
// are possessive: each part is taken greedily and only dropped whole, never re-split).
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  size_t pos() const { return pos_; }
  void Reset(size_t pos) { pos_ = pos; }
  bool AtEnd() const { return pos_ == text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : AsciiLower(text_[pos_]); }

  bool Take(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  bool TakeSeparator() { return Take('.') || Take('_') || Take('-'); }
  // The first of `words` the text continues with (case-insensitively), consumed.
  std::optional<std::string_view> TakeWord(std::initializer_list<std::string_view> words) {
    for (std::string_view w : words) {
      if (text_.size() - pos_ >= w.size() && AsciiLower(text_.substr(pos_, w.size())) == w) {
        pos_ += w.size();
        return w;
      }
    }
    return std::nullopt;
  }
  // A run of ASCII digits; nullopt when there is none. `too_long` is set for more than kMaxDigits.
  std::optional<uint64_t> TakeNumber(bool& too_long) {
    size_t begin = pos_;
    uint64_t value = 0;
    while (!AtEnd() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      if (pos_ - begin < kMaxDigits) value = value * 10 + static_cast<uint64_t>(text_[pos_] - '0');
      ++pos_;
    }
    if (pos_ == begin) return std::nullopt;
    if (pos_ - begin > kMaxDigits) too_long = true;
    return value;
  }
  bool IsLocalChar() const {
    char c = Peek();
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  }
  std::string_view Rest() const { return text_.substr(pos_); }
  std::string_view Slice(size_t from) const { return text_.substr(from, pos_ - from); }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

std::strong_ordering CompareLocal(const std::vector<LocalSegment>& a, const std::vector<LocalSegment>& b) {
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const LocalSegment& x = a[i];
    const LocalSegment& y = b[i];
    if (x.index() != y.index()) {
      // A text segment sorts before a number.
      return x.index() == 0 ? std::strong_ordering::less : std::strong_ordering::greater;
    }
    if (auto c = x <=> y; c != 0) return c;
  }
  return a.size() <=> b.size();
}

// The release without trailing zeros: what the order compares.
std::vector<uint64_t> TrimmedRelease(const std::vector<uint64_t>& release) {
  std::vector<uint64_t> out = release;
  while (!out.empty() && out.back() == 0) out.pop_back();
  return out;
}

}  // namespace

std::string_view PreRelease::Label() const {
  switch (kind) {
    case Kind::kAlpha: return "a";
    case Kind::kBeta: return "b";
    case Kind::kCandidate: return "rc";
  }
  return "?";
}

Result<Version> Version::Parse(std::string_view input) {
  std::string_view text = StripPythonSpace(input);
  auto invalid = [&](std::string_view why) {
    return InvalidArgument("invalid version '" + std::string(input) + "': " + std::string(why));
  };
  Scanner s(text);
  bool too_long = false;
  Version v;
  s.Take('v');

  // Epoch and release: N! is an epoch only when followed by '!'.
  std::optional<uint64_t> first = s.TakeNumber(too_long);
  if (!first) return invalid("it does not start with a release number");
  if (s.Take('!')) {
    v.epoch_ = *first;
    first = s.TakeNumber(too_long);
    if (!first) return invalid("no release number after the epoch");
  }
  v.release_.push_back(*first);
  for (;;) {
    size_t mark = s.pos();
    if (!s.Take('.')) break;
    std::optional<uint64_t> n = s.TakeNumber(too_long);
    if (!n) {
      s.Reset(mark);
      break;
    }
    v.release_.push_back(*n);
  }

  // Pre-release: [._-]? (alpha|a|beta|b|preview|pre|c|rc) [._-]? N?
  {
    size_t mark = s.pos();
    s.TakeSeparator();
    if (std::optional<std::string_view> label = s.TakeWord({"alpha", "a", "beta", "b", "preview", "pre", "c", "rc"})) {
      // The separator is taken even without a number after it ("1.0a." is valid).
      s.TakeSeparator();
      std::optional<uint64_t> n = s.TakeNumber(too_long);
      PreRelease pre;
      pre.kind = (*label == "alpha" || *label == "a")  ? PreRelease::Kind::kAlpha
                 : (*label == "beta" || *label == "b") ? PreRelease::Kind::kBeta
                                                       : PreRelease::Kind::kCandidate;
      pre.number = n.value_or(0);
      v.pre_ = pre;
    } else {
      s.Reset(mark);
    }
  }

  // Post-release: -N, or [._-]? (post|rev|r) [._-]? N?
  {
    size_t mark = s.pos();
    bool taken = false;
    if (s.Take('-')) {
      if (std::optional<uint64_t> n = s.TakeNumber(too_long)) {
        v.post_ = *n;
        taken = true;
      } else {
        s.Reset(mark);
      }
    }
    if (!taken) {
      s.TakeSeparator();
      if (s.TakeWord({"post", "rev", "r"})) {
        s.TakeSeparator();
        std::optional<uint64_t> n = s.TakeNumber(too_long);
        v.post_ = n.value_or(0);
      } else {
        s.Reset(mark);
      }
    }
  }

  // Dev release: [._-]? dev [._-]? N?
  {
    size_t mark = s.pos();
    s.TakeSeparator();
    if (s.TakeWord({"dev"})) {
      s.TakeSeparator();
      std::optional<uint64_t> n = s.TakeNumber(too_long);
      v.dev_ = n.value_or(0);
    } else {
      s.Reset(mark);
    }
  }

  // Local label: + [a-z0-9]+ ([._-][a-z0-9]+)*
  if (s.Take('+')) {
    for (;;) {
      size_t begin = s.pos();
      while (s.IsLocalChar()) s.Reset(s.pos() + 1);
      if (s.pos() == begin) return invalid("empty local version segment");
      std::string segment = AsciiLower(s.Slice(begin));
      if (std::all_of(segment.begin(), segment.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        if (segment.size() > kMaxDigits) {
          too_long = true;
        } else {
          v.local_.emplace_back(static_cast<uint64_t>(std::stoull(segment)));
        }
      } else {
        v.local_.emplace_back(std::move(segment));
      }
      size_t mark = s.pos();
      if (!s.TakeSeparator()) break;
      if (!s.IsLocalChar()) {
        s.Reset(mark);
        break;
      }
    }
  }
  if (!s.AtEnd()) return invalid("unexpected '" + std::string(s.Rest()) + "'");
  if (too_long) return invalid("a number has more than 18 digits");
  return v;
}

std::string Version::BaseVersion() const {
  std::string out;
  if (epoch_ != 0) out = std::to_string(epoch_) + "!";
  for (size_t i = 0; i < release_.size(); ++i) out += (i ? "." : "") + std::to_string(release_[i]);
  return out;
}

std::string Version::Public() const {
  std::string out = BaseVersion();
  if (pre_) out += std::string(pre_->Label()) + std::to_string(pre_->number);
  if (post_) out += ".post" + std::to_string(*post_);
  if (dev_) out += ".dev" + std::to_string(*dev_);
  return out;
}

std::string Version::LocalString() const {
  std::string out;
  for (size_t i = 0; i < local_.size(); ++i) {
    if (i) out += '.';
    if (const uint64_t* n = std::get_if<uint64_t>(&local_[i])) {
      out += std::to_string(*n);
    } else {
      out += std::get<std::string>(local_[i]);
    }
  }
  return out;
}

std::string Version::ToString() const {
  std::string out = Public();
  if (!local_.empty()) out += "+" + LocalString();
  return out;
}

Version Version::WithoutLocal() const {
  Version v = *this;
  v.local_.clear();
  return v;
}

Version Version::Base() const { return FromParts(epoch_, release_); }

Version Version::FromParts(uint64_t epoch, std::vector<uint64_t> release, std::optional<PreRelease> pre,
                           std::optional<uint64_t> post, std::optional<uint64_t> dev) {
  Version v;
  v.epoch_ = epoch;
  v.release_ = std::move(release);
  v.pre_ = pre;
  v.post_ = post;
  v.dev_ = dev;
  return v;
}

std::strong_ordering Version::operator<=>(const Version& other) const {
  if (auto c = epoch_ <=> other.epoch_; c != 0) return c;
  if (auto c = TrimmedRelease(release_) <=> TrimmedRelease(other.release_); c != 0) return c;
  // Pre-release rank: a dev release of the final itself ("1.0.dev1") sorts before every pre-release of
  // it, and no pre-release sorts after all of them.
  auto pre_rank = [](const Version& v) -> std::pair<int, PreRelease> {
    if (!v.pre_ && !v.post_ && v.dev_) return {0, {}};
    if (!v.pre_) return {2, {}};
    return {1, *v.pre_};
  };
  if (auto c = pre_rank(*this) <=> pre_rank(other); c != 0) return c;
  // No post release sorts before any; no dev release sorts after any.
  auto post_rank = [](const Version& v) { return std::make_pair(v.post_.has_value(), v.post_.value_or(0)); };
  if (auto c = post_rank(*this) <=> post_rank(other); c != 0) return c;
  auto dev_rank = [](const Version& v) { return std::make_pair(!v.dev_.has_value(), v.dev_.value_or(0)); };
  if (auto c = dev_rank(*this) <=> dev_rank(other); c != 0) return c;
  if (local_.empty() || other.local_.empty()) return !local_.empty() <=> !other.local_.empty();
  return CompareLocal(local_, other.local_);
}

}  // namespace lazyfs::pkg
