// PEP 440 versions and specifiers: the rules a resolver leans on, as readable cases. The exhaustive
// conformance check against pypa/packaging is tests/pkg/check_probe.py over data/probe_expected.jsonl.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "pkg/specifier.h"
#include "pkg/version.h"

namespace lazyfs::pkg {
namespace {

Version V(std::string_view text) { return Version::Parse(text).value(); }

std::vector<std::string> Kept(std::string_view spec, const std::vector<std::string>& versions,
                              std::optional<bool> pre = std::nullopt) {
  std::vector<std::string> out;
  for (size_t i : SpecifierSet::Parse(spec).value().Filter(versions, pre)) out.push_back(versions[i]);
  return out;
}

}  // namespace

TEST_CASE("Version: every spelling PEP 440 allows normalises to one form") {
  CHECK(V("1.0-1").ToString() == "1.0.post1");
  CHECK(V("v1.0").ToString() == "1.0");
  CHECK(V("1.0.RC1").ToString() == "1.0rc1");
  CHECK(V("1.0alpha").ToString() == "1.0a0");
  CHECK(V("1.0-preview_2").ToString() == "1.0rc2");
  CHECK(V("0!1.0.rev").ToString() == "1.0.post0");
  CHECK(V("  2!01.02dev3+Ubuntu-007 ").ToString() == "2!1.2.dev3+ubuntu.7");
  CHECK(V("1.0+abc.5").Public() == "1.0");
  CHECK(V("1!2.0rc1.post3").BaseVersion() == "1!2.0");
}

TEST_CASE("Version: what is not a version is an error that names it") {
  for (std::string_view bad : {"", "1.0 1", "1..0", "a1", "1.0+", "1.0+abc.", "1.0-", "1.0.post-dev-x", "١.0"}) {
    Result<Version> v = Version::Parse(bad);
    CHECK_MESSAGE(!v, bad);
    if (!v) CHECK(v.error().message().find(std::string(bad)) != std::string::npos);
  }
  CHECK_FALSE(Version::Parse("1.1234567890123456789"));  // more digits than a number holds
}

TEST_CASE("Version: the PEP 440 order") {
  std::vector<std::string> ordered = {"1.0.dev1", "1.0a1.dev1", "1.0a1", "1.0a2.post1", "1.0b1", "1.0rc1",
                                      "1.0",      "1.0+abc",    "1.0+abc.0", "1.0+1",   "1.0.post1.dev1", "1.0.post1",
                                      "1.1",      "1!0.1"};
  for (size_t i = 0; i + 1 < ordered.size(); ++i) CHECK_MESSAGE(V(ordered[i]) < V(ordered[i + 1]), ordered[i]);
  CHECK(V("1.0") == V("1.0.0"));
  CHECK(V("1.0+ABC") == V("1.0+abc"));
}

TEST_CASE("Specifier: exclusive < and > leave out the boundary's pre- and post-releases") {
  SpecifierSet below = SpecifierSet::Parse("<2.0").value();
  CHECK(below.Contains("1.9"));
  CHECK_FALSE(below.Contains("2.0rc1", true));
  CHECK_FALSE(below.Contains("2.0.dev1", true));
  SpecifierSet above = SpecifierSet::Parse(">1.0").value();
  CHECK_FALSE(above.Contains("1.0.post1"));
  CHECK_FALSE(above.Contains("1.0+local"));
  CHECK(above.Contains("1.0.1"));
  CHECK(SpecifierSet::Parse(">1.0.post1").value().Contains("1.0.post2"));
}

TEST_CASE("Specifier: ~=, wildcards and local versions") {
  SpecifierSet compatible = SpecifierSet::Parse("~=1.4.5").value();
  CHECK(compatible.Contains("1.4.9"));
  CHECK_FALSE(compatible.Contains("1.5.0"));
  CHECK_FALSE(compatible.Contains("1.5a1"));
  SpecifierSet series = SpecifierSet::Parse("==1.0.*").value();
  CHECK(series.Contains("1"));
  CHECK(series.Contains("1.0.post3+local"));
  CHECK_FALSE(series.Contains("1.1"));
  CHECK(SpecifierSet::Parse("!=1.0.*").value().Contains("1.1"));
  CHECK(SpecifierSet::Parse("==1.0").value().Contains("1.0+anything"));
  CHECK_FALSE(SpecifierSet::Parse("==1.0+a").value().Contains("1.0+b"));
  CHECK(SpecifierSet::Parse("===foo").value().Contains("FOO"));
  CHECK_FALSE(SpecifierSet::Parse("===1.0").value().Contains("1.0.0"));
}

TEST_CASE("SpecifierSet: canonical string, sorted, duplicates by meaning dropped") {
  CHECK(SpecifierSet::Parse(" >= 1.0 , <2 ,,").value().ToString() == "<2,>=1.0");
  CHECK(SpecifierSet::Parse(">=1.0.0,>=1.0").value().ToString() == ">=1.0");
  CHECK(SpecifierSet::Parse("~=1.0,~=1.0.0").value().ToString() == "~=1.0,~=1.0.0");
  CHECK(SpecifierSet::Parse("").value().empty());
  CHECK_FALSE(SpecifierSet::Parse(">=1.0+local"));
  CHECK_FALSE(SpecifierSet::Parse("~=1"));
  CHECK_FALSE(SpecifierSet::Parse(">=1.0.*"));
  CHECK_FALSE(SpecifierSet::Parse("=>1.0"));
}

TEST_CASE("SpecifierSet: pre-releases only when asked for, named, or the only match") {
  CHECK(Kept(">=1.0", {"1.0", "1.1a1", "1.1"}) == std::vector<std::string>{"1.0", "1.1"});
  CHECK(Kept(">=1.0", {"1.1a1", "1.2b1"}) == std::vector<std::string>{"1.1a1", "1.2b1"});
  CHECK(Kept(">=1.0a1", {"1.0a1", "1.0"}) == std::vector<std::string>{"1.0a1", "1.0"});
  CHECK(Kept(">=1.0", {"1.0", "1.1a1"}, true) == std::vector<std::string>{"1.0", "1.1a1"});
  CHECK(Kept("==2.0a1", {"2.0a1"}, false).empty());
  CHECK(Kept("", {"1.3", "1.5a1"}) == std::vector<std::string>{"1.3"});
  CHECK(SpecifierSet::Parse(">=1.0").value().Contains("1.1a1"));  // a lone version has no alternative
  CHECK_FALSE(SpecifierSet::Parse(">=1.0").value().Contains("1.1a1", false));
}

}  // namespace lazyfs::pkg
