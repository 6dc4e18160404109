#include "pkg/candidates.h"

#include <algorithm>
#include <map>

#include "pkg/names.h"

namespace lazyfs::pkg {

CandidateSet WheelCandidates(const std::vector<IndexFile>& files, std::string_view project,
                             const TargetEnvironment& target, bool allow_yanked) {
  return WheelCandidates(files, project, target, target.Tags(), allow_yanked);
}

CandidateSet WheelCandidates(const std::vector<IndexFile>& files, std::string_view project,
                             const TargetEnvironment& target, const std::vector<Tag>& supported, bool allow_yanked) {
  CandidateSet set;
  std::string canonical = CanonicalName(project);
  std::string python = target.python_full_version;
  std::map<Version, Candidate, std::greater<>> best;  // newest first
  for (const IndexFile& file : files) {
    if (IsSdistFilename(file.filename)) {
      ++set.sdists;
      continue;
    }
    Result<WheelName> wheel = ParseWheelFilename(file.filename);
    if (!wheel || CanonicalName(wheel->name) != canonical) continue;
    Result<Version> version = Version::Parse(wheel->version);
    if (!version) continue;
    if (file.yanked && !allow_yanked) {
      ++set.yanked;
      continue;
    }
    if (file.requires_python) {
      Result<SpecifierSet> requires_python = SpecifierSet::Parse(*file.requires_python);
      // An unreadable Requires-Python is skipped, as pip does, rather than failing the project.
      if (requires_python && !requires_python->Contains(python, true)) {
        ++set.requires_python_excluded;
        continue;
      }
    }
    std::optional<size_t> rank = BestTagRank(*wheel, supported);
    if (!rank) {
      ++set.incompatible_wheels;
      if (set.example_incompatible.size() < 3) set.example_incompatible.push_back(file.filename);
      continue;
    }
    auto it = best.find(*version);
    if (it == best.end() || *rank < it->second.tag_rank) {
      best.insert_or_assign(*version, Candidate{*version, file, std::move(*wheel), *rank});
    }
  }
  for (auto& [version, candidate] : best) set.candidates.push_back(std::move(candidate));
  return set;
}

std::vector<const Candidate*> Admitted(const CandidateSet& set, const SpecifierSet& specifier, std::optional<bool> pre) {
  std::vector<std::string> versions;
  for (const Candidate& c : set.candidates) versions.push_back(c.version.ToString());
  std::vector<const Candidate*> out;
  for (size_t i : specifier.Filter(versions, pre)) out.push_back(&set.candidates[i]);
  return out;
}

std::string NoCandidateMessage(const CandidateSet& set, std::string_view project, const SpecifierSet& specifier,
                               const TargetEnvironment& target) {
  std::string wanted = specifier.empty() ? std::string(project) : std::string(project) + specifier.ToString();
  std::string out = "no installable wheel for " + wanted + " on Python " + target.python_full_version + " (" +
                    SupportedTags(target.python).front().ToString() + " ...)";
  std::vector<std::string> why;
  if (!set.candidates.empty()) {
    std::string versions;
    for (size_t i = 0; i < set.candidates.size() && i < 8; ++i) {
      versions += (i ? ", " : "") + set.candidates[i].version.ToString();
    }
    if (set.candidates.size() > 8) versions += ", ...";
    why.push_back("the versions with a wheel for this target are " + versions);
  }
  if (set.sdists > 0) why.push_back(std::to_string(set.sdists) + " sdist(s), which lazyfs never builds");
  if (set.incompatible_wheels > 0) {
    std::string examples;
    for (const std::string& e : set.example_incompatible) examples += (examples.empty() ? "" : ", ") + e;
    why.push_back(std::to_string(set.incompatible_wheels) + " wheel(s) for other platforms or Pythons (" + examples +
                  "); try --platform or --python-version");
  }
  if (set.requires_python_excluded > 0) {
    why.push_back(std::to_string(set.requires_python_excluded) + " file(s) whose Requires-Python excludes " +
                  target.python_full_version);
  }
  if (set.yanked > 0) why.push_back(std::to_string(set.yanked) + " yanked file(s) (only an == pin takes those)");
  if (why.empty()) why.push_back("the index lists no files for it");
  out += ": ";
  for (size_t i = 0; i < why.size(); ++i) out += (i ? "; " : "") + why[i];
  return out;
}

}  // namespace lazyfs::pkg
