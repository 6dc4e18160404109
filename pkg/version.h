// PEP 440 versions: parsing every spelling the PEP allows (and `packaging` accepts), the normalised form,
// and the total order (epoch, release with trailing zeros ignored, dev < pre < final < post, local
// segments last).
//
// Thread safety: values; no shared state.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace lazyfs::pkg {

struct PreRelease {
  enum class Kind { kAlpha, kBeta, kCandidate };  // a, b, rc (in that order)
  Kind kind = Kind::kAlpha;
  uint64_t number = 0;

  std::string_view Label() const;  // "a", "b" or "rc"
  auto operator<=>(const PreRelease&) const = default;
};

// One dot-separated part of a local version label: a number (compared numerically, leading zeros
// dropped) or lower-cased letters and digits (compared as text, and before any number).
using LocalSegment = std::variant<std::string, uint64_t>;

class Version {
 public:
  // kInvalidArgument (naming `text`) when `text` is not a PEP 440 version. Surrounding whitespace is
  // allowed; numbers of more than 18 digits are refused.
  static Result<Version> Parse(std::string_view text);

  uint64_t epoch() const { return epoch_; }
  const std::vector<uint64_t>& release() const { return release_; }  // as written: "1.0" is {1, 0}
  const std::optional<PreRelease>& pre() const { return pre_; }
  const std::optional<uint64_t>& post() const { return post_; }
  const std::optional<uint64_t>& dev() const { return dev_; }
  const std::vector<LocalSegment>& local() const { return local_; }

  bool IsPrerelease() const { return pre_.has_value() || dev_.has_value(); }
  bool IsPostrelease() const { return post_.has_value(); }
  bool IsDevrelease() const { return dev_.has_value(); }
  bool HasLocal() const { return !local_.empty(); }

  std::string ToString() const;     // normalised: "1!2.0rc1.post3.dev4+ubuntu.1"; a zero epoch left out
  std::string Public() const;       // without the local label
  std::string BaseVersion() const;  // epoch and release only
  std::string LocalString() const;  // "ubuntu.1", or "" without a local label

  // The same version without its local label, or with only epoch and release: the pieces the specifier
  // rules compare.
  Version WithoutLocal() const;
  Version Base() const;

  // PEP 440 order: trailing zeros of the release are ignored ("1.0" == "1.0.0"); a local label sorts
  // after none.
  std::strong_ordering operator<=>(const Version& other) const;
  bool operator==(const Version& other) const { return (*this <=> other) == 0; }

  // Builders for the specifier rules (the smallest version of a series, e.g. "2.0.dev0").
  static Version FromParts(uint64_t epoch, std::vector<uint64_t> release, std::optional<PreRelease> pre = {},
                           std::optional<uint64_t> post = {}, std::optional<uint64_t> dev = {});

 private:
  uint64_t epoch_ = 0;
  std::vector<uint64_t> release_;
  std::optional<PreRelease> pre_;
  std::optional<uint64_t> post_;
  std::optional<uint64_t> dev_;
  std::vector<LocalSegment> local_;
};

}  // namespace lazyfs::pkg
