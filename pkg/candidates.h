// From what an index lists for a project to the versions the target can install: one wheel per version
// (the one whose best tag the target prefers most), after dropping what PEP 440, 503, 592 and the target
// rule out. Sdists are never candidates (lazyfs never builds them); what was dropped and why is kept so
// that "no version fits" can say which wheels and tags were there.
//
// Thread safety: values and pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "pkg/index_page.h"
#include "pkg/specifier.h"
#include "pkg/tags.h"
#include "pkg/target.h"
#include "pkg/version.h"

namespace lazyfs::pkg {

struct Candidate {
  Version version;
  IndexFile file;
  WheelName wheel;
  size_t tag_rank = 0;  // index of its best tag in the target's supported list (0 = most preferred)
};

struct CandidateSet {
  std::vector<Candidate> candidates;  // newest version first, one per version
  size_t sdists = 0;                  // sdist files seen (never used)
  size_t incompatible_wheels = 0;     // wheels no tag of the target accepts
  size_t requires_python_excluded = 0;
  size_t yanked = 0;
  std::vector<std::string> example_incompatible;  // a few such wheel file names, for messages
};

// `project` is any spelling of the name; files of other projects (a sloppy index) are ignored.
// Yanked files are kept out unless `allow_yanked` (PEP 592: only an == or === pin may pick them).
CandidateSet WheelCandidates(const std::vector<IndexFile>& files, std::string_view project,
                             const TargetEnvironment& target, bool allow_yanked);
// The same with the target's tags computed once by the caller (`supported` = target.Tags()): a resolver
// asks for many projects, and the tag list has a thousand entries.
CandidateSet WheelCandidates(const std::vector<IndexFile>& files, std::string_view project,
                             const TargetEnvironment& target, const std::vector<Tag>& supported, bool allow_yanked);

// The candidates `specifier` admits under the pre-release policy (`pre` as SpecifierSet::Filter), newest
// first.
std::vector<const Candidate*> Admitted(const CandidateSet& set, const SpecifierSet& specifier,
                                       std::optional<bool> pre = std::nullopt);

// Why nothing was admitted, in a sentence a user can act on: the project, the specifier, and what the
// index had (versions, sdists only, wheels for other tags, Requires-Python).
std::string NoCandidateMessage(const CandidateSet& set, std::string_view project, const SpecifierSet& specifier,
                               const TargetEnvironment& target);

}  // namespace lazyfs::pkg
