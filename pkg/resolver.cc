#include "pkg/resolver.h"

#include <algorithm>
#include <memory>

#include "common/log.h"
#include "fetch/http_transport.h"
#include "pkg/candidates.h"
#include "pkg/metadata.h"
#include "pkg/names.h"
#include "pkg/requirement.h"

namespace lazyfs::pkg {
namespace {

constexpr int kRoot = -1;        // a requirement the user gave
constexpr int kConstraint = -2;  // a line of a -c file
constexpr size_t kMaxReasonLines = 60;

// One requirement on a key, and who made it.
struct Need {
  std::string key;   // "name" or "name[extra,...]": what gets a version
  std::string name;  // canonical project name
  SpecifierSet specifier;
  std::string text;   // the requirement without its marker, for messages
  int parent = kRoot;  // the decision whose version brought it, or kRoot / kConstraint
  std::string where;   // FILE:LINE or "command line", for kRoot and kConstraint
  std::vector<std::string> hashes;  // "sha256:<hex>" (requirements files)
};

// What one candidate of one key adds.
struct Dependencies {
  std::vector<Need> needs;
  std::set<std::string> names;  // canonical names of the projects it depends on
  std::set<std::string> valid_extras;
  std::set<std::string> missing_extras;  // asked for, not provided (pip warns and goes on)
  std::optional<std::string> unusable;  // why the target cannot take it (Requires-Python, a URL dependency)
};

struct Project {
  bool listed = true;     // some index knows it
  CandidateSet wheels;    // yanked files left out
  CandidateSet with_yanked;
};

struct Decision {
  std::string key;
  std::string name;
  std::vector<Need> needs;  // on `key`, as they stood when it was decided
  std::vector<const Candidate*> options;
  size_t next = 0;  // options before this were tried
  const Candidate* chosen = nullptr;
  const Dependencies* dependencies = nullptr;  // of `chosen`
  std::set<int> culprits;             // earlier decisions the failures so far depend on
  std::vector<std::string> failures;  // why each option tried did not fit (may span lines)
  size_t depth = 0;                   // 1 + the shallowest parent's depth; roots are 1
};

std::string Key(const std::string& name, const std::set<std::string>& extras) {
  if (extras.empty()) return name;
  std::string key = name + "[";
  for (const std::string& e : extras) key += (key.back() == '[' ? "" : ",") + e;
  return key + "]";
}

std::set<std::string> NormalizedExtras(const std::set<std::string>& extras) {
  std::set<std::string> out;
  for (const std::string& e : extras) out.insert(NormalizeExtra(e));
  return out;
}

// name[extras]specifier, the requirement without its marker.
std::string NeedText(const Requirement& r) {
  Requirement bare = r;
  bare.marker.reset();
  return bare.ToString();
}

std::string Indent(const std::string& text, const std::string& prefix) {
  std::string out = prefix;
  for (char c : text) {
    out += c;
    if (c == '\n') out += prefix;
  }
  return out;
}

size_t LineCount(const std::string& text) { return 1 + std::count(text.begin(), text.end(), '\n'); }

class Resolver {
 public:
  Resolver(const ResolveRequest& request, PackageSource& source)
      : request_(request), source_(source), tags_(request.target.Tags()), markers_(request.target.Markers()) {}

  Result<Resolution> Run() {
    LAZYFS_TRY(ReadRoots());
    for (;;) {
      std::map<std::string, std::vector<Need>> needs = NeedsBefore(stack_.size());
      Report(needs);
      std::optional<std::string> key = NextKey(needs);
      if (!key) return Finish();
      Decision decision;
      decision.key = *key;
      decision.needs = needs[*key];
      decision.name = decision.needs.front().name;
      decision.depth = DepthOf(decision.needs);
      for (const Need& n : decision.needs) {
        if (n.parent >= 0) decision.culprits.insert(n.parent);
      }
      std::string why_none;
      decision.options = LAZYFS_TRY(Options(decision.needs, &why_none));
      if (decision.options.empty()) decision.failures.push_back(why_none);
      stack_.push_back(std::move(decision));
      LAZYFS_TRY(Advance());
    }
  }

 private:
  // The user's requirements and constraints as needs; markers false for the target are dropped with a
  // warning, URLs refused.
  Status ReadRoots() {
    auto applies = [&](const RequirementLine& line) -> Result<bool> {
      if (!line.requirement.marker) return true;
      Result<bool> holds = line.requirement.marker->Evaluate(markers_);
      if (!holds) {
        return InvalidArgument("the marker of '" + line.requirement.ToString() + "' (" + line.where +
                               ") cannot be evaluated: " + holds.error().message());
      }
      if (!*holds) {
        warnings_.push_back("ignoring '" + line.requirement.ToString() + "' (" + line.where +
                            "): its marker is false for the target");
      }
      return *holds;
    };
    for (const RequirementLine& line : request_.requirements) {
      const Requirement& r = line.requirement;
      if (r.url) {
        return InvalidArgument("'" + r.ToString() + "' (" + line.where +
                               ") names a URL; lazyfs resolves requirements from an index only");
      }
      if (!LAZYFS_TRY(applies(line))) continue;
      std::string name = r.CanonicalName();
      roots_.push_back(Need{Key(name, NormalizedExtras(r.extras)), name, r.specifier, NeedText(r), kRoot, line.where,
                            line.hashes});
    }
    for (const RequirementLine& line : request_.constraints) {
      const Requirement& r = line.requirement;
      if (r.url) return InvalidArgument("constraint '" + r.ToString() + "' (" + line.where + ") names a URL");
      if (!r.extras.empty()) {
        return InvalidArgument("constraint '" + r.ToString() + "' (" + line.where + ") has extras; constraints "
                               "limit versions only, so write the extras in a requirement");
      }
      if (!LAZYFS_TRY(applies(line))) continue;
      std::string name = r.CanonicalName();
      constraints_.push_back(Need{name, name, r.specifier, NeedText(r), kConstraint, line.where, line.hashes});
    }
    if (roots_.empty()) return InvalidArgument("no requirements to resolve (every marker is false for the target)");
    // pip's hash-checking mode: one --hash anywhere means every dist installed is pinned and hashed.
    auto hashed = std::find_if(roots_.begin(), roots_.end(), [](const Need& n) { return !n.hashes.empty(); });
    if (hashed != roots_.end()) {
      hash_mode_where_ = hashed->where;
      for (const Need& n : roots_) {
        if (!n.specifier.IsExactPin()) {
          return InvalidArgument("'" + n.text + "' (" + n.where + ") is not pinned with ==, and a --hash (" +
                                 hash_mode_where_ + ") asks for hash-checking mode, where every requirement is");
        }
      }
    }
    return Ok();
  }

  // The needs in force before decision `count`: the roots, every dependency of decisions [0, count), and
  // the constraints on projects among them.
  std::map<std::string, std::vector<Need>> NeedsBefore(size_t count) const {
    std::map<std::string, std::vector<Need>> out;
    for (const Need& n : roots_) out[n.key].push_back(n);
    for (size_t i = 0; i < count; ++i) {
      for (Need n : stack_[i].dependencies->needs) {
        n.parent = static_cast<int>(i);
        out[n.key].push_back(std::move(n));
      }
    }
    for (const Need& c : constraints_) {
      for (auto& [key, needs] : out) {
        if (needs.front().name == c.name) needs.push_back(c);
      }
    }
    return out;
  }

  const Decision* Chosen(const std::string& key, size_t before) const {
    for (size_t i = 0; i < before; ++i) {
      if (stack_[i].key == key) return &stack_[i];
    }
    return nullptr;
  }

  size_t DepthOf(const std::vector<Need>& needs) const {
    size_t depth = SIZE_MAX;
    for (const Need& n : needs) {
      if (n.parent == kRoot) depth = 1;
      if (n.parent >= 0) depth = std::min(depth, stack_[n.parent].depth + 1);
    }
    return depth == SIZE_MAX ? 1 : depth;
  }

  // The next key to decide: an exact pin first (nothing to choose), then the shallowest, then by name
  // so that runs are repeatable.
  std::optional<std::string> NextKey(const std::map<std::string, std::vector<Need>>& needs) const {
    std::optional<std::tuple<bool, size_t, std::string>> best;
    for (const auto& [key, list] : needs) {
      if (Chosen(key, stack_.size())) continue;
      SpecifierSet combined;
      for (const Need& n : list) combined = combined.Intersect(n.specifier);
      std::tuple<bool, size_t, std::string> rank{!combined.IsExactPin(), DepthOf(list), key};
      if (!best || rank < *best) best = rank;
    }
    if (!best) return std::nullopt;
    return std::get<2>(*best);
  }

  Result<const Project*> ProjectOf(const std::string& name) {
    if (auto it = projects_.find(name); it != projects_.end()) return it->second.get();
    auto project = std::make_unique<Project>();
    Result<std::vector<IndexFile>> files = source_.ProjectFiles(name);
    if (!files && files.error().code() != ErrorCode::kNotFound) return files.error();
    if (files) {
      project->wheels = WheelCandidates(*files, name, request_.target, tags_, false);
      project->with_yanked = WheelCandidates(*files, name, request_.target, tags_, true);
    } else {
      project->listed = false;
    }
    return projects_.emplace(name, std::move(project)).first->second.get();
  }

  // The candidates every need admits, in the order to try them. When there are none, `why_none` says
  // why in a sentence.
  Result<std::vector<const Candidate*>> Options(const std::vector<Need>& needs, std::string* why_none) {
    const std::string& name = needs.front().name;
    const Project* project = LAZYFS_TRY(ProjectOf(name));
    SpecifierSet combined;
    for (const Need& n : needs) combined = combined.Intersect(n.specifier);
    std::optional<bool> pre = request_.pre ? std::optional(true) : std::nullopt;
    std::vector<const Candidate*> options = Admitted(project->wheels, combined, pre);
    if (options.empty() && combined.IsExactPin()) options = Admitted(project->with_yanked, combined, pre);
    for (const Need& n : needs) {
      if (n.hashes.empty()) continue;
      std::erase_if(options, [&](const Candidate* c) {
        return std::none_of(n.hashes.begin(), n.hashes.end(), [&](const std::string& h) {
          size_t colon = h.find(':');
          auto it = c->file.hashes.find(h.substr(0, colon));
          return colon != std::string::npos && it != c->file.hashes.end() && it->second == h.substr(colon + 1);
        });
      });
      if (options.empty()) {
        *why_none = "no file of " + name + combined.ToString() + " has a hash given for it in " + n.where;
        return options;
      }
    }
    if (auto locked = request_.locked.find(name); locked != request_.locked.end()) {
      Result<Version> version = Version::Parse(locked->second);
      if (version) {
        std::stable_partition(options.begin(), options.end(), [&](const Candidate* c) { return c->version == *version; });
      }
    }
    if (options.empty()) {
      if (!project->listed) {
        *why_none = "no index has a project named '" + name + "'";
      } else {
        *why_none = NoCandidateMessage(project->wheels.candidates.empty() ? project->with_yanked : project->wheels, name,
                                       combined, request_.target);
      }
    }
    return options;
  }

  // Reads, checks and keeps what candidate `c` of `key` depends on for the target.
  Result<const Dependencies*> DependenciesOf(const Decision& decision, const Candidate& c) {
    std::string memo_key = decision.key + " " + c.file.url;
    if (auto it = dependencies_.find(memo_key); it != dependencies_.end()) return it->second.get();
    const std::string& name = decision.name;
    std::string what = name + " " + c.version.ToString() + " (" + fetch::RedactUrl(c.file.url) + ")";
    FetchedMetadata fetched = LAZYFS_TRY(source_.Metadata(c.file, name));
    CoreMetadata metadata = LAZYFS_TRY(ParseCoreMetadata(fetched.text, "the METADATA of " + what));
    Result<Version> version = Version::Parse(metadata.version);
    if (CanonicalName(metadata.name) != name || !version || !(*version == c.version)) {
      return Corrupt("the METADATA of " + what + " says it is " + metadata.name + " " + metadata.version +
                     "; the index serves metadata that does not belong to the file");
    }
    auto deps = std::make_unique<Dependencies>();
    if (metadata.requires_python) {
      Result<SpecifierSet> requires_python = SpecifierSet::Parse(*metadata.requires_python);
      if (!requires_python) {
        LogWarn("{}: ignoring its Requires-Python '{}', which does not parse", what, *metadata.requires_python);
      } else if (!requires_python->Contains(request_.target.python_full_version, true)) {
        deps->unusable = "it requires Python " + requires_python->ToString() + ", the target is " +
                         request_.target.python_full_version;
      }
    }
    std::set<std::string> extras = KeyExtras(decision.key);
    if (!extras.empty()) {
      std::set<std::string> provided;
      for (const std::string& e : metadata.provides_extra) provided.insert(NormalizeExtra(e));
      for (const std::string& e : extras) {
        if (provided.contains(e)) {
          deps->valid_extras.insert(e);
        } else {
          deps->missing_extras.insert(e);
        }
      }
      // The extra's dists go with exactly this version of the project itself.
      Result<SpecifierSet> same = SpecifierSet::Parse("==" + c.version.ToString());
      if (!same) return Internal("pinning " + what + ": " + same.error().message());
      deps->needs.push_back(Need{name, name, *same, name + "==" + c.version.ToString(), kRoot, "", {}});
    }
    MarkerEnvironment env = markers_;
    for (const std::string& line : metadata.requires_dist) {
      Result<Requirement> parsed = Requirement::Parse(line);
      if (!parsed) {
        return Corrupt("the METADATA of " + what + " has a Requires-Dist that does not parse: " +
                       parsed.error().message());
      }
      bool wanted = !parsed->marker;
      if (parsed->marker) {
        // As pip: without extras the marker sees extra == ""; with them, each extra in turn.
        std::vector<std::string> contexts(deps->valid_extras.begin(), deps->valid_extras.end());
        if (extras.empty()) contexts.push_back("");
        for (const std::string& extra : contexts) {
          env.values["extra"] = extra;
          Result<bool> holds = parsed->marker->Evaluate(env);
          if (!holds) {
            return Corrupt("the METADATA of " + what + " has Requires-Dist '" + line +
                           "' whose marker cannot be evaluated: " + holds.error().message());
          }
          if (*holds) {
            wanted = true;
            break;
          }
        }
      }
      if (!wanted) continue;
      if (parsed->url) {
        deps->unusable = "it requires '" + parsed->ToString() + "', a URL, and lazyfs resolves from an index only";
        continue;
      }
      std::string dep = parsed->CanonicalName();
      deps->names.insert(dep);
      deps->needs.push_back(
          Need{Key(dep, NormalizedExtras(parsed->extras)), dep, parsed->specifier, NeedText(*parsed), kRoot, "", {}});
    }
    deps->names.erase(name);
    return dependencies_.emplace(memo_key, std::move(deps)).first->second.get();
  }

  static std::set<std::string> KeyExtras(const std::string& key) {
    std::set<std::string> extras;
    size_t open = key.find('[');
    if (open == std::string::npos) return extras;
    for (size_t from = open + 1; from < key.size();) {
      size_t end = key.find_first_of(",]", from);
      extras.insert(key.substr(from, end - from));
      from = end + 1;
    }
    return extras;
  }

  // "your requirement 'a>=1' (FILE:LINE)", or "b 2.0 <- a 1.0 <- your requirement 'a' (command line)".
  std::string Origin(const Need& need) const {
    if (need.parent == kRoot) return "your requirement '" + need.text + "' (" + need.where + ")";
    if (need.parent == kConstraint) return "the constraint '" + need.text + "' (" + need.where + ")";
    std::string chain;
    int at = need.parent;
    for (size_t hops = 0; at >= 0 && hops < 12; ++hops) {
      const Decision& d = stack_[at];
      chain += (chain.empty() ? "" : " <- ") + d.key + " " + d.chosen->version.ToString();
      const Need& first = d.needs.front();
      if (first.parent < 0) return chain + " <- " + Origin(first);
      at = first.parent;
    }
    return chain;
  }

  std::string NeedList(const std::vector<Need>& needs) const {
    std::string out;
    for (const Need& n : needs) out += (out.empty() ? "" : ", ") + ("'" + n.text + "' from " + Origin(n));
    return out;
  }

  // Tries the options of the top decision from `next` on; true once one fits. Failures and the
  // decisions they blame are recorded on the decision.
  Result<bool> TryNext() {
    size_t index = stack_.size() - 1;
    std::map<std::string, std::vector<Need>> before = NeedsBefore(index);
    Decision& d = stack_[index];
    while (d.next < d.options.size()) {
      const Candidate& c = *d.options[d.next++];
      if (++attempts_ > request_.max_attempts) {
        return Unsupported("gave up after trying " + std::to_string(request_.max_attempts) +
                           " candidates; narrow the requirements (e.g. pin the projects that backtrack: " + d.name + ")");
      }
      const Dependencies* deps = LAZYFS_TRY(DependenciesOf(d, c));
      std::string self = d.key + " " + c.version.ToString();
      if (deps->unusable) {
        d.failures.push_back(self + ": " + *deps->unusable);
        continue;
      }
      std::optional<std::string> failure;
      for (const Need& n : deps->needs) {
        if (n.key == d.key) {
          if (!n.specifier.Contains(c.version, true)) failure = self + " requires '" + n.text + "' of itself";
        } else if (const Decision* chosen = Chosen(n.key, index)) {
          if (!n.specifier.Contains(chosen->chosen->version, true)) {
            failure = self + " requires '" + n.text + "', but " + chosen->key + " " + chosen->chosen->version.ToString() +
                      " was chosen for " + NeedList(chosen->needs);
            d.culprits.insert(static_cast<int>(chosen - stack_.data()));
          }
        } else {
          std::vector<Need> merged = before[n.key];
          if (merged.empty()) {  // a project new to the search: its constraints apply from the start
            for (const Need& c : constraints_) {
              if (c.name == n.name) merged.push_back(c);
            }
          }
          merged.push_back(n);
          merged.back().parent = static_cast<int>(index);
          std::string why_none;
          std::vector<const Candidate*> fits = LAZYFS_TRY(Options(merged, &why_none));
          if (fits.empty()) {
            const std::vector<Need>& others = before[n.key];
            if (others.empty()) {
              failure = self + " requires '" + n.text + "': " + why_none;
            } else {
              failure = self + " requires '" + n.text + "', but " + NeedList(others) +
                        (others.size() == 1 ? " also applies" : " also apply") + ", and " + why_none;
              for (const Need& o : others) {
                if (o.parent >= 0) d.culprits.insert(o.parent);
              }
            }
          }
        }
        if (failure) break;
      }
      if (failure) {
        d.failures.push_back(*failure);
        continue;
      }
      d.chosen = &c;
      d.dependencies = deps;
      return true;
    }
    d.chosen = nullptr;
    d.dependencies = nullptr;
    return false;
  }

  // Runs the top decision to a fit, jumping back past decisions that had no part in a failure.
  Status Advance() {
    for (;;) {
      if (LAZYFS_TRY(TryNext())) return Ok();
      Decision& failed = stack_.back();
      std::string summary = Summary(failed);
      if (failed.culprits.empty()) {
        return InvalidArgument("these requirements cannot all be met:\n" + Indent(summary, "  "));
      }
      int target = *failed.culprits.rbegin();
      std::set<int> carried = failed.culprits;
      carried.erase(target);
      stack_.resize(static_cast<size_t>(target) + 1);
      Decision& back = stack_.back();
      back.culprits.insert(carried.begin(), carried.end());
      back.failures.push_back(back.key + " " + back.chosen->version.ToString() + " leads to a dead end:\n" +
                              Indent(summary, "  "));
      ++backjumps_;
    }
  }

  std::string Summary(const Decision& d) const {
    std::string out = "no version of " + d.key + " fits " + NeedList(d.needs);
    if (!d.options.empty()) {
      out += "; tried " + std::to_string(d.options.size()) + ":";
    } else {
      out += ":";
    }
    size_t lines = 1;
    for (size_t i = 0; i < d.failures.size(); ++i) {
      size_t more = LineCount(d.failures[i]);
      if (lines + more > kMaxReasonLines) {
        out += "\n  ... and " + std::to_string(d.failures.size() - i) + " more";
        break;
      }
      out += "\n" + Indent(d.failures[i], "  ");
      lines += more;
    }
    return out;
  }

  // Progress after each decision: `needs` are the ones in force now.
  void Report(const std::map<std::string, std::vector<Need>>& needs) const {
    if (!request_.progress || stack_.empty()) return;
    ResolveProgress p;
    p.chosen = stack_.size();
    p.pending = needs.size() > stack_.size() ? needs.size() - stack_.size() : 0;
    p.attempts = attempts_;
    p.backjumps = backjumps_;
    request_.progress(p);
  }

  // In hash-checking mode every dist chosen must be one the requirements gave hashes for.
  Status CheckHashMode() const {
    if (hash_mode_where_.empty()) return Ok();
    std::string missing;
    for (const Decision& d : stack_) {
      if (d.key != d.name) continue;
      bool hashed = std::any_of(roots_.begin(), roots_.end(), [&](const Need& n) { return n.name == d.name && !n.hashes.empty(); });
      if (hashed) continue;
      auto sha256 = d.chosen->file.hashes.find("sha256");
      missing += "\n  " + d.name + "==" + d.chosen->version.ToString() + " --hash=sha256:" +
                 (sha256 == d.chosen->file.hashes.end() ? "<unknown>" : sha256->second) + "   # " +
                 NeedList(d.needs);
    }
    if (missing.empty()) return Ok();
    return InvalidArgument("hash-checking mode (a --hash in " + hash_mode_where_ +
                           "): these dists have no --hash in the requirements; add them as" + missing);
  }

  Result<Resolution> Finish() const {
    LAZYFS_TRY(CheckHashMode());
    Resolution out;
    out.warnings = warnings_;
    out.attempts = attempts_;
    out.backjumps = backjumps_;
    std::map<std::string, ResolvedDist> by_name;
    for (const Decision& d : stack_) {
      ResolvedDist& dist = by_name[d.name];
      if (dist.name.empty()) {
        dist.name = d.name;
        dist.version = d.chosen->version.ToString();
        dist.file = d.chosen->file;
      } else if (dist.version != d.chosen->version.ToString()) {
        return Internal("resolver chose " + d.name + " " + dist.version + " and " + d.chosen->version.ToString());
      }
      dist.extras.insert(d.dependencies->valid_extras.begin(), d.dependencies->valid_extras.end());
      for (const std::string& e : d.dependencies->missing_extras) {
        out.warnings.push_back(d.name + " " + dist.version + " does not provide the extra '" + e + "'");
      }
      std::set<std::string> depends_on(dist.depends_on.begin(), dist.depends_on.end());
      depends_on.insert(d.dependencies->names.begin(), d.dependencies->names.end());
      dist.depends_on.assign(depends_on.begin(), depends_on.end());
      for (const Need& n : d.needs) {
        if (n.parent == kConstraint) continue;
        if (n.parent >= 0 && stack_[n.parent].name == d.name) continue;  // b[x] -> b
        std::string by = n.parent == kRoot ? "your requirement '" + n.text + "' (" + n.where + ")"
                                           : stack_[n.parent].name + " " + stack_[n.parent].chosen->version.ToString();
        if (std::find(dist.required_by.begin(), dist.required_by.end(), by) == dist.required_by.end()) {
          dist.required_by.push_back(by);
        }
      }
    }
    for (auto& [name, dist] : by_name) out.dists.push_back(std::move(dist));
    return out;
  }

  const ResolveRequest& request_;
  PackageSource& source_;
  const std::vector<Tag> tags_;            // the target's, most preferred first
  const MarkerEnvironment markers_;        // the target's, extra = ""
  std::vector<Need> roots_;
  std::vector<Need> constraints_;
  std::vector<Decision> stack_;
  std::map<std::string, std::unique_ptr<Project>> projects_;
  std::map<std::string, std::unique_ptr<Dependencies>> dependencies_;
  std::vector<std::string> warnings_;
  std::string hash_mode_where_;  // the first root line with a --hash; "" when not in hash-checking mode
  size_t attempts_ = 0;
  size_t backjumps_ = 0;
};

}  // namespace

Result<Resolution> Resolve(const ResolveRequest& request, PackageSource& source) {
  Resolver resolver(request, source);
  return resolver.Run();
}

}  // namespace lazyfs::pkg
