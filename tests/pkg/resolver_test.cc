// The resolver over an index held in memory: newest versions, ranges, backtracking, extras, markers,
// Requires-Python, yanked files, the pre-release policy, constraints, --lock preference, hashes, and
// conflicts explained along their requirement chains.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include "pkg/lock_file.h"
#include "pkg/names.h"
#include "pkg/resolver.h"

namespace lazyfs::pkg {
namespace {

// What one dist's METADATA and index entry say; built as Spec().Requires({...}).Yanked("why").
struct DistSpec {
  std::vector<std::string> requires_dist;
  std::vector<std::string> provides_extra;
  std::optional<std::string> requires_python;  // in METADATA only
  std::optional<std::string> yanked;
  std::string tag = "py3-none-any";
  std::string metadata_name;  // "" = the project's own name

  DistSpec& Requires(std::vector<std::string> v) { requires_dist = std::move(v); return *this; }
  DistSpec& Extras(std::vector<std::string> v) { provides_extra = std::move(v); return *this; }
  DistSpec& RequiresPython(std::string v) { requires_python = std::move(v); return *this; }
  DistSpec& Yanked(std::string why) { yanked = std::move(why); return *this; }
  DistSpec& Tag(std::string v) { tag = std::move(v); return *this; }
  DistSpec& MetadataName(std::string v) { metadata_name = std::move(v); return *this; }
};
DistSpec Spec() { return {}; }

class MemoryIndex : public PackageSource {
 public:
  void Add(const std::string& project, const std::string& version, DistSpec spec = {}) {
    IndexFile file;
    std::string escaped = project;  // wheel names spell '-' as '_'
    std::replace(escaped.begin(), escaped.end(), '-', '_');
    file.filename = escaped + "-" + version + "-" + spec.tag + ".whl";
    file.url = "https://index.test/files/" + file.filename;
    file.hashes["sha256"] = std::string(64, "0123456789abcdef"[files_[CanonicalName(project)].size() % 16]);
    file.yanked = spec.yanked;
    file.has_metadata = true;
    std::string text = "Metadata-Version: 2.1\nName: " + (spec.metadata_name.empty() ? project : spec.metadata_name) +
                       "\nVersion: " + version + "\n";
    if (spec.requires_python) text += "Requires-Python: " + *spec.requires_python + "\n";
    for (const std::string& r : spec.requires_dist) text += "Requires-Dist: " + r + "\n";
    for (const std::string& e : spec.provides_extra) text += "Provides-Extra: " + e + "\n";
    metadata_[file.url] = text;
    files_[CanonicalName(project)].push_back(file);
  }

  Result<std::vector<IndexFile>> ProjectFiles(std::string_view project) override {
    ++page_requests[std::string(project)];
    auto it = files_.find(CanonicalName(project));
    if (it == files_.end()) return NotFound("no project " + std::string(project));
    return it->second;
  }
  Result<FetchedMetadata> Metadata(const IndexFile& file, std::string_view) override {
    ++metadata_requests;
    return FetchedMetadata{metadata_.at(file.url), MetadataSource::kMetadataFile};
  }

  std::map<std::string, int> page_requests;
  int metadata_requests = 0;

 private:
  std::map<std::string, std::vector<IndexFile>> files_;
  std::map<std::string, std::string> metadata_;
};

ResolveRequest RequestFor(std::vector<std::string> lines, std::vector<std::string> constraints = {}) {
  ResolveRequest request;
  request.target = MakeTarget("3.11.7", "").value();
  for (const std::string& line : lines) {
    request.requirements.push_back(RequirementLine{Requirement::Parse(line).value(), {}, "command line"});
  }
  for (const std::string& line : constraints) {
    request.constraints.push_back(RequirementLine{Requirement::Parse(line).value(), {}, "c.txt:1"});
  }
  return request;
}

// "a==1.0 b==2.0" for the pinned set, easy to compare.
std::string Pins(const Resolution& resolution) {
  std::string out;
  for (const ResolvedDist& d : resolution.dists) out += (out.empty() ? "" : " ") + d.name + "==" + d.version;
  return out;
}

std::string PinsOf(MemoryIndex& index, const ResolveRequest& request) {
  Result<Resolution> resolution = Resolve(request, index);
  REQUIRE_MESSAGE(resolution, resolution.error().ToString());
  return Pins(*resolution);
}

std::string ErrorOf(MemoryIndex& index, const ResolveRequest& request) {
  Result<Resolution> resolution = Resolve(request, index);
  REQUIRE(!resolution);
  return resolution.error().message();
}

}  // namespace

TEST_CASE("Resolve: the newest version of each project, transitively, with ranges honoured") {
  MemoryIndex index;
  index.Add("A", "1.0");
  index.Add("A", "2.0", Spec().Requires({"b-lib<2", "c"}));
  index.Add("b_lib", "1.0");
  index.Add("b_lib", "1.5", Spec().Requires({"C>=1"}));
  index.Add("b_lib", "2.0");
  index.Add("c", "0.9");
  index.Add("c", "1.1");
  CHECK(PinsOf(index, RequestFor({"a"})) == "a==2.0 b-lib==1.5 c==1.1");
  // One page per project and one metadata file per dist chosen: no backtracking here.
  CHECK(index.page_requests.size() == 3);
  for (const auto& [project, count] : index.page_requests) CHECK_MESSAGE(count == 1, project);
  CHECK(index.metadata_requests == 3);
  CHECK(PinsOf(index, RequestFor({"a<2"})) == "a==1.0");
}

TEST_CASE("Resolve: backtracks to an older version when a later project conflicts") {
  MemoryIndex index;
  index.Add("a", "1.0", Spec().Requires({"c>=1"}));
  index.Add("a", "2.0", Spec().Requires({"c<1"}));
  index.Add("b", "1.0", Spec().Requires({"c>=1"}));
  index.Add("c", "0.5");
  index.Add("c", "1.0");
  Result<Resolution> resolution = Resolve(RequestFor({"a", "b"}), index);
  REQUIRE(resolution);
  CHECK(Pins(*resolution) == "a==1.0 b==1.0 c==1.0");
  CHECK(resolution->attempts >= 4);
}

TEST_CASE("Resolve: jumps back over decisions that had no part in the conflict") {
  MemoryIndex index;
  // x has many versions and nothing to do with the conflict between a and b.
  for (int v = 1; v <= 30; ++v) index.Add("x", std::to_string(v) + ".0");
  index.Add("a", "1.0", Spec().Requires({"b>=1"}));
  index.Add("a", "2.0", Spec().Requires({"b>=2"}));
  index.Add("b", "1.0");
  index.Add("b", "2.0", Spec().Requires({"d"}));
  index.Add("d", "1.0", Spec().Requires({"e<1"}));
  index.Add("e", "1.0");
  Result<Resolution> resolution = Resolve(RequestFor({"a", "x", "e"}), index);
  REQUIRE_MESSAGE(resolution, resolution.error().ToString());
  CHECK(Pins(*resolution) == "a==1.0 b==1.0 e==1.0 x==30.0");
  CHECK(resolution->attempts < 15);  // x's 29 other versions were never tried
}

TEST_CASE("Resolve: a conflict names the chains of requirements and each version tried") {
  MemoryIndex index;
  index.Add("a", "2.0", Spec().Requires({"b<1"}));
  index.Add("a", "2.1", Spec().Requires({"b<1"}));
  index.Add("a", "1.0");
  index.Add("b", "0.5");
  index.Add("b", "1.5");
  std::string message = ErrorOf(index, RequestFor({"a>=2", "b>=1"}));
  CHECK(message.find("cannot all be met") != std::string::npos);
  CHECK(message.find("your requirement 'a>=2' (command line)") != std::string::npos);
  CHECK(message.find("a 2.1 requires 'b<1', but 'b>=1' from your requirement 'b>=1' (command line)") !=
        std::string::npos);
  CHECK(message.find("a 2.0 requires 'b<1'") != std::string::npos);
}

TEST_CASE("Resolve: a deep conflict is explained through the chain that forced it") {
  MemoryIndex index;
  index.Add("top", "1.0", Spec().Requires({"mid"}));
  index.Add("mid", "1.0", Spec().Requires({"leaf<1"}));
  index.Add("leaf", "0.1");
  index.Add("leaf", "2.0");
  std::string message = ErrorOf(index, RequestFor({"leaf>=1", "top"}));
  INFO(message);
  CHECK(message.find("mid 1.0 requires 'leaf<1'") != std::string::npos);
  CHECK(message.find("'leaf>=1' from your requirement 'leaf>=1'") != std::string::npos);
  // The project that must give way is reached through its chain.
  CHECK((message.find("top 1.0 leads to a dead end") != std::string::npos ||
         message.find("leaf 2.0 leads to a dead end") != std::string::npos));
}

TEST_CASE("Resolve: nothing fits a root requirement; a missing project says so") {
  MemoryIndex index;
  index.Add("a", "1.0");
  std::string message = ErrorOf(index, RequestFor({"a>=2"}));
  CHECK(message.find("no installable wheel for a>=2") != std::string::npos);
  CHECK(message.find("the versions with a wheel for this target are 1.0") != std::string::npos);
  CHECK(ErrorOf(index, RequestFor({"nosuch"})).find("no index has a project named 'nosuch'") != std::string::npos);
  index.Add("b", "1.0", Spec().Requires({"ghost>=1"}));
  message = ErrorOf(index, RequestFor({"b"}));
  CHECK(message.find("b 1.0 requires 'ghost>=1': no index has a project named 'ghost'") != std::string::npos);
}

TEST_CASE("Resolve: extras add their dependencies, also extras of dependencies, normalised (PEP 685)") {
  MemoryIndex index;
  index.Add("a", "1.0", Spec().Requires({"b[Fast_Mode]", "c; extra == 'Plot.X'", "d; python_version < '3'"}).Extras({"plot.x"}));
  index.Add("b", "1.0", Spec().Requires({"e; extra == 'fast-mode'"}).Extras({"fast-mode"}));
  index.Add("b", "2.0", Spec().Requires({"e; extra == 'fast-mode'"}).Extras({"fast-mode"}));
  index.Add("c", "1.0");
  index.Add("d", "1.0");
  index.Add("e", "1.0");
  CHECK(PinsOf(index, RequestFor({"a"})) == "a==1.0 b==2.0 e==1.0");
  Result<Resolution> with_extra = Resolve(RequestFor({"a[plot_x, nope]"}), index);
  REQUIRE(with_extra);
  CHECK(Pins(*with_extra) == "a==1.0 b==2.0 c==1.0 e==1.0");
  CHECK(with_extra->dists[0].extras == std::set<std::string>{"plot-x"});
  CHECK(with_extra->dists[0].depends_on == std::vector<std::string>{"b", "c"});
  REQUIRE(with_extra->warnings.size() == 1);
  CHECK(with_extra->warnings[0] == "a 1.0 does not provide the extra 'nope'");
}

TEST_CASE("Resolve: an extra and its project stay on one version") {
  MemoryIndex index;
  index.Add("a", "1.0", Spec().Requires({"s; extra == 'x'"}).Extras({"x"}));
  index.Add("a", "2.0", Spec().Requires({"s<1; extra == 'x'"}).Extras({"x"}));
  index.Add("s", "1.0");
  index.Add("s", "0.5");
  // a[x] 2.0 would want s<1 against the root's s>=1, so both a and a[x] end on 1.0.
  CHECK(PinsOf(index, RequestFor({"a", "a[x]", "s>=1"})) == "a==1.0 s==1.0");
}

TEST_CASE("Resolve: Requires-Python, yanked files and the pre-release policy") {
  MemoryIndex index;
  index.Add("p", "1.0");
  index.Add("p", "2.0", Spec().RequiresPython(">=3.12"));
  CHECK(PinsOf(index, RequestFor({"p"})) == "p==1.0");
  CHECK(ErrorOf(index, RequestFor({"p>=2"})).find("p 2.0: it requires Python >=3.12, the target is 3.11.7") !=
        std::string::npos);

  index.Add("y", "1.0");
  index.Add("y", "1.1", Spec().Yanked("broken"));
  CHECK(PinsOf(index, RequestFor({"y"})) == "y==1.0");
  CHECK(PinsOf(index, RequestFor({"y==1.1"})) == "y==1.1");   // an exact pin may take a yanked file

  index.Add("r", "1.0");
  index.Add("r", "2.0b1");
  index.Add("only-pre", "1.0rc1");
  CHECK(PinsOf(index, RequestFor({"r"})) == "r==1.0");
  CHECK(PinsOf(index, RequestFor({"r>=2.0b1"})) == "r==2.0b1");
  CHECK(PinsOf(index, RequestFor({"only-pre"})) == "only-pre==1.0rc1");  // the only match
  ResolveRequest pre = RequestFor({"r"});
  pre.pre = true;
  CHECK(PinsOf(index, pre) == "r==2.0b1");
}

TEST_CASE("Resolve: a yanked-only range has no candidate") {
  MemoryIndex index;
  index.Add("y", "1.0");
  index.Add("y", "1.1", Spec().Yanked(""));
  CHECK(ErrorOf(index, RequestFor({"y>=1.1"})).find("1 yanked file(s)") != std::string::npos);
}

TEST_CASE("Resolve: cycles, constraints, --lock preference and hashes") {
  MemoryIndex index;
  index.Add("a", "1.0", Spec().Requires({"b"}));
  index.Add("b", "1.0", Spec().Requires({"a"}));
  index.Add("b", "1.5", Spec().Requires({"a"}));
  CHECK(PinsOf(index, RequestFor({"a"})) == "a==1.0 b==1.5");
  // A constraint narrows b; one on a project nothing needs adds nothing.
  CHECK(PinsOf(index, RequestFor({"a"}, {"b<1.5", "unused==3"})) == "a==1.0 b==1.0");
  ResolveRequest locked = RequestFor({"a"});
  locked.locked["b"] = "1.0";
  CHECK(PinsOf(index, locked) == "a==1.0 b==1.0");
  locked.locked["b"] = "9.9";  // a locked version that no longer exists is only a preference
  CHECK(PinsOf(index, locked) == "a==1.0 b==1.5");

  // pip's hash-checking mode: every requirement pinned, every dist chosen hashed.
  IndexFile a10 = index.ProjectFiles("a").value()[0];
  IndexFile b10 = index.ProjectFiles("b").value()[0];
  auto hashed_line = [](std::string text, const IndexFile& file, std::string where) {
    return RequirementLine{Requirement::Parse(text).value(), {"sha256:" + file.hashes.at("sha256")}, std::move(where)};
  };
  ResolveRequest hashed;
  hashed.target = RequestFor({"a"}).target;
  hashed.requirements = {hashed_line("a==1.0", a10, "r.txt:1"), hashed_line("b==1.0", b10, "r.txt:2")};
  CHECK(PinsOf(index, hashed) == "a==1.0 b==1.0");
  hashed.requirements.back().hashes = {"sha256:" + std::string(64, 'f')};
  CHECK(ErrorOf(index, hashed).find("has a hash given for it in r.txt:2") != std::string::npos);
  hashed.requirements.pop_back();
  IndexFile b15 = index.ProjectFiles("b").value()[1];  // a's dependency on b takes the newest
  CHECK(ErrorOf(index, hashed).find("add them as\n  b==1.5 --hash=sha256:" + b15.hashes.at("sha256")) !=
        std::string::npos);
  hashed.requirements.push_back(hashed_line("b>=1", b10, "r.txt:2"));
  CHECK(ErrorOf(index, hashed).find("'b>=1' (r.txt:2) is not pinned with ==") != std::string::npos);
}

TEST_CASE("Resolve: roots whose marker is false are dropped with a warning; URLs and bad metadata are refused") {
  MemoryIndex index;
  index.Add("a", "1.0");
  Result<Resolution> resolution = Resolve(RequestFor({"a", "win-only; sys_platform == 'win32'"}), index);
  REQUIRE(resolution);
  CHECK(Pins(*resolution) == "a==1.0");
  REQUIRE(resolution->warnings.size() == 1);
  CHECK(resolution->warnings[0].find("ignoring 'win-only; sys_platform == \"win32\"'") != std::string::npos);

  CHECK(ErrorOf(index, RequestFor({"a @ https://x.test/a.whl"})).find("names a URL") != std::string::npos);
  CHECK(ErrorOf(index, RequestFor({"a"}, {"a[x]<2"})).find("has extras") != std::string::npos);

  index.Add("liar", "1.0", Spec().MetadataName("other"));
  Result<Resolution> lying = Resolve(RequestFor({"liar"}), index);
  REQUIRE(!lying);
  CHECK(lying.error().code() == ErrorCode::kCorrupt);
  CHECK(lying.error().message().find("says it is other 1.0") != std::string::npos);

  index.Add("badreq", "1.0", Spec().Requires({"ok (>=1"}));
  Result<Resolution> bad = Resolve(RequestFor({"badreq"}), index);
  REQUIRE(!bad);
  CHECK(bad.error().message().find("Requires-Dist that does not parse") != std::string::npos);
  CHECK(bad.error().message().find("https://index.test/files/badreq-1.0-py3-none-any.whl") != std::string::npos);
}

TEST_CASE("Resolve: wheels for other platforms are no candidates; compiled ones for the target are") {
  MemoryIndex index;
  index.Add("ext", "2.0", Spec().Tag("cp311-cp311-win_amd64"));
  index.Add("ext", "1.0", Spec().Tag("cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"));
  CHECK(PinsOf(index, RequestFor({"ext"})) == "ext==1.0");
  CHECK(ErrorOf(index, RequestFor({"ext>=2"})).find("wheel(s) for other platforms") != std::string::npos);
}

TEST_CASE("Resolve: gives up with a clear error after max_attempts") {
  MemoryIndex index;
  for (int v = 1; v <= 20; ++v) index.Add("a", std::to_string(v) + ".0", Spec().Requires({"b<1"}));
  index.Add("b", "1.0");
  ResolveRequest request = RequestFor({"a", "b>=1"});
  request.max_attempts = 5;
  Result<Resolution> resolution = Resolve(request, index);
  REQUIRE(!resolution);
  CHECK(resolution.error().code() == ErrorCode::kUnsupported);
  CHECK(resolution.error().message().find("gave up after trying 5 candidates") != std::string::npos);
}

TEST_CASE("Lock file: written for a resolution and read back; hostile files refused") {
  MemoryIndex index;
  index.Add("a", "1.0", Spec().Requires({"b"}));
  index.Add("b", "2.0");
  ResolveRequest request = RequestFor({"a"});
  Result<Resolution> resolution = Resolve(request, index);
  REQUIRE(resolution);
  Result<LockFile> lock = MakeLockFile(request, *resolution);
  REQUIRE(lock);
  std::string text = LockFileText(*lock);
  Result<LockFile> back = ParseLockFile(text, "pkg.lock");
  REQUIRE_MESSAGE(back, back.error().ToString());
  REQUIRE(back->packages.size() == 2);
  CHECK(back->packages[0].name == "a");
  CHECK(back->packages[0].depends_on == std::vector<std::string>{"b"});
  CHECK(back->packages[1].required_by == std::vector<std::string>{"a 1.0"});
  CHECK(back->requirements == std::vector<std::string>{"a"});
  CHECK(back->environment["markers"]["python_full_version"] == "3.11.7");
  CHECK(back->environment["preferred_tag"] == "cp311-cp311-manylinux_2_36_x86_64");

  CHECK(!ParseLockFile("[]", "x"));
  CHECK(ParseLockFile(R"({"lock_version": 2, "packages": []})", "x").error().message().find("lock_version") !=
        std::string::npos);
  std::string bad_hash = R"({"lock_version": 1, "packages": [{"name": "a", "version": "1", "filename": "a.whl",
      "url": "https://x/a.whl", "sha256": "00"}]})";
  CHECK(ParseLockFile(bad_hash, "x").error().message().find("packages[0]: sha256") != std::string::npos);
  std::string not_canonical = R"({"lock_version": 1, "packages": [{"name": "A_b", "version": "1", "filename": "a.whl",
      "url": "https://x/a.whl", "sha256": ")" + std::string(64, 'a') + R"("}]})";
  CHECK(ParseLockFile(not_canonical, "x").error().message().find("not a canonical project name") != std::string::npos);

  IndexFile& b_file = resolution->dists[1].file;
  b_file.hashes.clear();
  Result<LockFile> unverifiable = MakeLockFile(request, *resolution);
  REQUIRE(!unverifiable);
  CHECK(unverifiable.error().message().find("gives no sha256 for b-2.0-py3-none-any.whl") != std::string::npos);
}

}  // namespace lazyfs::pkg
