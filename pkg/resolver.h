// The resolver: from requirements (PEP 508 lines, constraints, a target environment) to one version of
// every project in their transitive closure such that every requirement holds, or an explanation in
// words of why none exists.
//
// The search is backtracking with conflict-directed backjumping over decisions "project P is version V",
// made one project at a time, most constrained first (an == pin, then the shallowest in the dependency
// graph). Candidates are tried newest first (a version from --lock first), pip's pre-release and yanked
// rules apply, and a candidate is only taken when every dependency it adds can still be met: each is
// checked against the versions already chosen and against what the index offers for it. When every
// candidate of a project fails, the search jumps back to the latest decision that caused one of those
// failures (not merely the previous one), carrying the reasons along, so the final message is a tree:
// which requirement chain asked for which ranges, and why each version tried did not fit.
//
// A --hash on any requirement turns on pip's hash-checking mode: every requirement must be an == pin,
// and every dist chosen must have hashes given for it (the error lists the lines to add).
//
// Extras (`b[x]`) are projects of their own whose candidate V depends on `b==V` plus the dependencies
// the extra adds, as pip models them; markers are evaluated for the target with `extra` set to each
// extra asked for. Wheels only: a project with nothing but sdists has no candidates.
//
// Thread safety: Resolve is reentrant; it calls `source` from the calling thread only.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "pkg/index_page.h"
#include "pkg/package_source.h"
#include "pkg/requirements_file.h"
#include "pkg/target.h"

namespace lazyfs::pkg {

struct ResolveProgress {
  size_t chosen = 0;      // projects with a version right now
  size_t pending = 0;     // projects required but not yet decided
  size_t attempts = 0;    // candidates tried so far
  size_t backjumps = 0;
};

struct ResolveRequest {
  std::vector<RequirementLine> requirements;  // the roots
  std::vector<RequirementLine> constraints;   // -c: narrow a project's versions, never add one
  TargetEnvironment target;
  bool pre = false;                           // --pre: pre-releases are as good as final releases
  std::map<std::string, std::string> locked;  // canonical name -> version to prefer (--lock)
  size_t max_attempts = 100'000;              // candidates tried before giving up (a pathological index)
  std::function<void(const ResolveProgress&)> progress;  // after each decision, if set
};

struct ResolvedDist {
  std::string name;                   // PEP 503 canonical
  std::string version;                // normalised
  IndexFile file;                     // the wheel
  std::set<std::string> extras;       // asked of it, PEP 685 normalised (those it provides)
  std::vector<std::string> depends_on;  // canonical names of its dependencies for the target, sorted
  std::vector<std::string> required_by;  // "your requirement 'a>=1' (FILE:LINE)" or "a 1.0"
};

struct Resolution {
  std::vector<ResolvedDist> dists;    // by name
  std::vector<std::string> warnings;  // requirements whose markers are false, extras a dist lacks
  size_t attempts = 0;
  size_t backjumps = 0;
};

// Errors: kInvalidArgument for requirements that cannot be met (the message says why, as a tree) or
// that lazyfs refuses (a URL requirement, extras in a constraint); kUnsupported when max_attempts ran
// out; kCorrupt for metadata that lies (a name or version unlike its file's, a Requires-Dist or marker
// that does not parse), naming the project and URL; errors of `source` (network, bad pages) as they are.
Result<Resolution> Resolve(const ResolveRequest& request, PackageSource& source);

}  // namespace lazyfs::pkg
