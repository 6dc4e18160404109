// Wheel tags: SupportedTags against the lists Debian 12's pip computes (tests/pkg/data, written by
// tests/pkg/make_pip_tags_data.py), `--platform` values, wheel and sdist file names, and choosing the
// best wheel of a release.
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "pkg/tags.h"

#ifndef LAZYFS_PKG_TEST_DATA
#error "LAZYFS_PKG_TEST_DATA must name tests/pkg/data (a compile definition from meson)"
#endif

namespace lazyfs::pkg {
namespace {

std::vector<std::string> ReadLines(const std::string& name) {
  std::ifstream in(std::string(LAZYFS_PKG_TEST_DATA) + "/" + name);
  REQUIRE_MESSAGE(in.good(), name);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> Strings(const std::vector<Tag>& tags) {
  std::vector<std::string> out;
  for (const Tag& t : tags) out.push_back(t.ToString());
  return out;
}

// Compares whole lists, reporting the first difference rather than 900 lines.
void CheckSameList(const std::vector<std::string>& got, const std::vector<std::string>& want) {
  CHECK(got.size() == want.size());
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    if (got[i] != want[i]) {
      FAIL_CHECK("first difference at line " << i + 1 << ": got " << got[i] << ", pip has " << want[i]);
      return;
    }
  }
}

TargetPython WithPlatform(std::string_view tag, int minor = 11) {
  TargetPython t;
  t.minor = minor;
  t.platform = ParsePlatformTag(tag).value();
  return t;
}

WheelName Wheel(std::string_view filename) { return ParseWheelFilename(filename).value(); }

}  // namespace

TEST_CASE("SupportedTags: CPython 3.11 on glibc 2.36 in pip's order") {
  // The defaults are Debian 12 on x86_64.
  std::vector<std::string> pip = ReadLines("pip_supported_tags_cp311_x86_64_glibc236.txt");
  REQUIRE(pip.size() == 914);
  CheckSameList(Strings(SupportedTags(TargetPython{})), pip);
}

TEST_CASE("SupportedTags: CPython 3.12 on musl 1.2 aarch64 in pip's order") {
  TargetPython t = WithPlatform("musllinux_1_2_aarch64", 12);
  CheckSameList(Strings(SupportedTags(t)), ReadLines("pip_supported_tags_cp312_aarch64_musl12.txt"));
}

TEST_CASE("SupportedTags: PyPy 3.9 on glibc 2.28 in pip's order") {
  TargetPython t = WithPlatform("manylinux_2_28_x86_64", 9);
  t.implementation = "pp";
  SUBCASE("the default PyPy ABI") {}
  SUBCASE("the ABI given") { t.abi = "pypy39_pp73"; }
  CheckSameList(Strings(SupportedTags(t)), ReadLines("pip_supported_tags_pp39_x86_64_glibc228.txt"));
}

TEST_CASE("SupportedTags: the sections of the CPython list, and where cp311-none-any sits") {
  std::vector<std::string> tags = Strings(SupportedTags(WithPlatform("manylinux2014_x86_64")));
  // 17 platforms: manylinux_2_17 .. 2_5, three aliases, linux_x86_64.
  CHECK(tags[0] == "cp311-cp311-manylinux_2_17_x86_64");
  CHECK(tags[1] == "cp311-cp311-manylinux2014_x86_64");
  CHECK(tags[16] == "cp311-cp311-linux_x86_64");
  CHECK(tags[17] == "cp311-abi3-manylinux_2_17_x86_64");
  CHECK(tags[34] == "cp311-none-manylinux_2_17_x86_64");
  CHECK(tags[51] == "cp310-abi3-manylinux_2_17_x86_64");
  // cp310 .. cp32: 9 versions of abi3, then py311, py3, py310 .. py30 for each platform.
  CHECK(tags[51 + 9 * 17] == "py311-none-manylinux_2_17_x86_64");
  CHECK(tags[51 + 9 * 17 + 17] == "py3-none-manylinux_2_17_x86_64");
  // packaging 21.3's sys_tags() has no cp311-none-any; pip's get_supported() puts it before py311-none-any.
  const size_t any = 51 + 9 * 17 + 13 * 17;
  CHECK(tags[any] == "cp311-none-any");
  CHECK(tags[any + 1] == "py311-none-any");
  CHECK(tags[any + 2] == "py3-none-any");
  CHECK(tags.back() == "py30-none-any");
  CHECK(tags.size() == any + 1 + 13);
}

TEST_CASE("SupportedTags: CPython before 3.8 has the pymalloc ABI, an explicit ABI replaces it") {
  TargetPython t;
  t.minor = 7;
  CHECK(SupportedTags(t).front().ToString() == "cp37-cp37m-manylinux_2_36_x86_64");
  t.abi = "cp37dm";
  CHECK(SupportedTags(t).front().ToString() == "cp37-cp37dm-manylinux_2_36_x86_64");
  t.abi = "abi3";  // stays in its usual place, after the interpreter's own ABI would be
  CHECK(SupportedTags(t).front().ToString() == "cp37-abi3-manylinux_2_36_x86_64");
}

TEST_CASE("PlatformTags: the legacy alias follows its manylinux version, linux_<arch> comes last") {
  SUBCASE("manylinux2014 on x86_64 goes down to manylinux1") {
    TargetPlatform p = ParsePlatformTag("manylinux2014_x86_64").value();
    CHECK(p.arch == "x86_64");
    CHECK(p.libc == Libc::kGlibc);
    CHECK(p.libc_major == 2);
    CHECK(p.libc_minor == 17);
    std::vector<std::string> tags = PlatformTags(p);
    REQUIRE(tags.size() == 17);
    CHECK(tags[0] == "manylinux_2_17_x86_64");
    CHECK(tags[1] == "manylinux2014_x86_64");
    CHECK(tags[2] == "manylinux_2_16_x86_64");
    CHECK(tags[6] == "manylinux_2_12_x86_64");
    CHECK(tags[7] == "manylinux2010_x86_64");
    CHECK(tags[14] == "manylinux_2_5_x86_64");
    CHECK(tags[15] == "manylinux1_x86_64");
    CHECK(tags[16] == "linux_x86_64");
  }
  SUBCASE("aarch64 stops at manylinux2014") {
    std::vector<std::string> tags = PlatformTags(ParsePlatformTag("manylinux_2_28_aarch64").value());
    REQUIRE(tags.size() == 12 + 1 + 1);
    CHECK(tags[0] == "manylinux_2_28_aarch64");
    CHECK(tags[11] == "manylinux_2_17_aarch64");
    CHECK(tags[12] == "manylinux2014_aarch64");
    CHECK(tags[13] == "linux_aarch64");
  }
  SUBCASE("the other aliases name their glibc") {
    CHECK(ParsePlatformTag("manylinux2010_x86_64").value().libc_minor == 12);
    CHECK(ParsePlatformTag("manylinux1_i686").value().libc_minor == 5);
    CHECK(ParsePlatformTag("MANYLINUX2014_PPC64LE").value().arch == "ppc64le");
  }
  SUBCASE("musllinux counts down to minor 0") {
    TargetPlatform p = ParsePlatformTag("musllinux_1_2_x86_64").value();
    CHECK(p.libc == Libc::kMusl);
    CHECK(PlatformTags(p) == std::vector<std::string>{"musllinux_1_2_x86_64", "musllinux_1_1_x86_64",
                                                      "musllinux_1_0_x86_64", "linux_x86_64"});
  }
  SUBCASE("linux_<arch> promises nothing portable") {
    TargetPlatform p = ParsePlatformTag("linux_riscv64").value();
    CHECK(p.libc == Libc::kNone);
    CHECK(PlatformTags(p) == std::vector<std::string>{"linux_riscv64"});
  }
  SUBCASE("an arch without manylinux gets linux_<arch> only") {
    TargetPlatform p;
    p.arch = "riscv64";
    CHECK(PlatformTags(p) == std::vector<std::string>{"linux_riscv64"});
  }
  SUBCASE("a newer glibc major counts down through a guessed 2.50") {
    TargetPlatform p;
    p.libc_major = 3;
    p.libc_minor = 1;
    std::vector<std::string> tags = PlatformTags(p);
    CHECK(tags[0] == "manylinux_3_1_x86_64");
    CHECK(tags[1] == "manylinux_3_0_x86_64");
    CHECK(tags[2] == "manylinux_2_50_x86_64");
  }
}

TEST_CASE("ParsePlatformTag: what is not a Linux platform tag is an error that names it") {
  for (std::string_view bad :
       {"", "any", "win_amd64", "macosx_11_0_arm64", "manylinux_2_x86_64", "manylinux_x_17_x86_64", "manylinux_2_17_",
        "manylinux_2_17_x86-64", "manylinux_2_17_riscv64", "manylinux1_aarch64", "manylinux2010_s390x",
        "manylinux_2_4_x86_64", "manylinux_1_99_x86_64", "manylinux_2_99999_x86_64", "musllinux_0_9_x86_64",
        "musllinux_1_x86_64", "linux_", "linux", "manylinux2014"}) {
    Result<TargetPlatform> p = ParsePlatformTag(bad);
    CHECK_MESSAGE(!p, bad);
    if (!p) {
      CHECK(p.error().code() == ErrorCode::kInvalidArgument);
      CHECK_MESSAGE(p.error().message().find("\"" + std::string(bad) + "\"") != std::string::npos, p.error().message());
    }
  }
}

TEST_CASE("ParseWheelFilename: name, version, build tag and the expanded tag set") {
  SUBCASE("a compressed tag set expands in order") {
    WheelName w = Wheel("six-1.16.0-py2.py3-none-any.whl");
    CHECK(w.name == "six");
    CHECK(w.version == "1.16.0");
    CHECK(w.build == "");
    CHECK(Strings(w.tags) == std::vector<std::string>{"py2-none-any", "py3-none-any"});
  }
  SUBCASE("several platforms") {
    WheelName w = Wheel("numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl");
    CHECK(Strings(w.tags) ==
          std::vector<std::string>{"cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64"});
  }
  SUBCASE("every component compressed, duplicates dropped") {
    WheelName w = Wheel("foo-1.0-cp38.cp39.cp38-abi3.none-any.whl");
    CHECK(Strings(w.tags) ==
          std::vector<std::string>{"cp38-abi3-any", "cp38-none-any", "cp39-abi3-any", "cp39-none-any"});
  }
  SUBCASE("build tags start with a digit") {
    CHECK(Wheel("foo-1.0-1-py3-none-any.whl").build == "1");
    WheelName w = Wheel("foo-1.0-20b_x-py3-none-any.whl");
    CHECK(w.build == "20b_x");
    CHECK(w.version == "1.0");
    CHECK(Strings(w.tags) == std::vector<std::string>{"py3-none-any"});
  }
  SUBCASE("names and versions are kept as written, tags lower-cased") {
    WheelName w = Wheel("Typing_Extensions.X-4.9.0rc1_post2-PY3-None-Any.whl");
    CHECK(w.name == "Typing_Extensions.X");
    CHECK(w.version == "4.9.0rc1_post2");
    CHECK(Strings(w.tags) == std::vector<std::string>{"py3-none-any"});
  }
}

TEST_CASE("ParseWheelFilename: a malformed name is an error that names the file") {
  const std::string huge = "foo-1.0-a.b.c.d.e.f.g-a.b.c.d.e.f.g-a.b.c.d.e.f.g.whl";  // 7^3 = 343 tags
  for (const std::string& bad : std::vector<std::string>{
           "foo-1.0-py3-none-any.zip", "foo-1.0-py3-none-any", "foo-1.0-py3-none.whl", "foo-1.0-1-2-py3-none-any.whl",
           "foo-bar-1.0-py3-none-any.whl", "foo__bar-1.0-py3-none-any.whl", "-1.0-py3-none-any.whl",
           "fo o-1.0-py3-none-any.whl", "föo-1.0-py3-none-any.whl" /* packaging's \w admits it */,
           "foo-1.0.x-py3-none-any.whl", "foo--py3-none-any.whl", "foo-1.0-x1-py3-none-any.whl",
           "foo-1.0--py3-none-any.whl", "foo-1.0-py3..py2-none-any.whl", "foo-1.0-py3-none-.whl",
           "foo-1.0-3py-none-any.whl", "foo-1.0-py+3-none-any.whl", huge}) {
    Result<WheelName> w = ParseWheelFilename(bad);
    CHECK_MESSAGE(!w, bad);
    if (!w) {
      CHECK(w.error().code() == ErrorCode::kInvalidArgument);
      CHECK_MESSAGE(w.error().message().find(bad) != std::string::npos, w.error().message());
    }
  }
}

TEST_CASE("ParseTagSet: the size limit is on the expanded set") {
  CHECK(ParseTagSet("a.b.c.d-a.b.c.d-a.b.c.d").value().size() == 64);
  std::string many = "py3-none-";
  for (int i = 0; i < 300; ++i) many += (i ? ".p" : "p") + std::to_string(i);
  CHECK_FALSE(ParseTagSet(many));
  CHECK_FALSE(ParseTagSet("py3-none-any-extra"));
}

TEST_CASE("BestTagRank: the manylinux wheel beats the pure one, what does not fit is nullopt") {
  const std::vector<Tag> host = SupportedTags(TargetPython{});
  WheelName manylinux = Wheel("foo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl");
  WheelName newer = Wheel("foo-1.0-cp311-cp311-manylinux_2_28_x86_64.whl");
  WheelName abi3 = Wheel("foo-1.0-cp38-abi3-manylinux_2_17_x86_64.whl");
  WheelName pure = Wheel("foo-1.0-py2.py3-none-any.whl");
  REQUIRE(BestTagRank(manylinux, host));
  REQUIRE(BestTagRank(newer, host));
  REQUIRE(BestTagRank(abi3, host));
  REQUIRE(BestTagRank(pure, host));
  CHECK(*BestTagRank(newer, host) < *BestTagRank(manylinux, host));
  CHECK(*BestTagRank(manylinux, host) < *BestTagRank(abi3, host));
  CHECK(*BestTagRank(abi3, host) < *BestTagRank(pure, host));
  CHECK(host[*BestTagRank(pure, host)].ToString() == "py3-none-any");
  CHECK(host[*BestTagRank(manylinux, host)].ToString() == "cp311-cp311-manylinux_2_17_x86_64");

  SUBCASE("not installable") {
    CHECK_FALSE(BestTagRank(Wheel("foo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"), host));
    CHECK_FALSE(BestTagRank(Wheel("foo-1.0-cp311-cp311-musllinux_1_1_x86_64.whl"), host));
    CHECK_FALSE(BestTagRank(Wheel("foo-1.0-cp311-cp311-manylinux_2_17_aarch64.whl"), host));
    CHECK_FALSE(BestTagRank(Wheel("foo-1.0-cp311-cp311-win_amd64.whl"), host));
    CHECK_FALSE(BestTagRank(Wheel("foo-1.0-py2-none-any.whl"), host));
    CHECK_FALSE(BestTagRank(Wheel("foo-1.0-cp311-abi3-manylinux_2_17_x86_64.whl"),
                            SupportedTags(WithPlatform("manylinux_2_17_x86_64", 10))));
  }
  SUBCASE("an older target refuses the newer manylinux and takes manylinux2014") {
    const std::vector<Tag> old = SupportedTags(WithPlatform("manylinux2014_x86_64"));
    CHECK_FALSE(BestTagRank(newer, old));
    REQUIRE(BestTagRank(manylinux, old));
    CHECK(*BestTagRank(manylinux, old) == 0);
  }
  SUBCASE("a musl target takes the musllinux wheel over the pure one") {
    const std::vector<Tag> musl = SupportedTags(WithPlatform("musllinux_1_2_x86_64"));
    WheelName m = Wheel("foo-1.0-cp311-cp311-musllinux_1_1_x86_64.whl");
    CHECK_FALSE(BestTagRank(manylinux, musl));
    REQUIRE(BestTagRank(m, musl));
    REQUIRE(BestTagRank(pure, musl));
    CHECK(*BestTagRank(m, musl) < *BestTagRank(pure, musl));
  }
}

TEST_CASE("IsSdistFilename: source archives by extension") {
  for (std::string_view yes : {"foo-1.0.tar.gz", "foo-1.0.zip", "Foo-1.0.TAR.GZ", "foo-1.0.tgz", "foo-1.0.tar.bz2",
                               "foo-1.0.tar.xz", "foo-1.0.tar"}) {
    CHECK_MESSAGE(IsSdistFilename(yes), yes);
  }
  for (std::string_view no :
       {"foo-1.0-py3-none-any.whl", "foo-1.0.egg", "foo-1.0.exe", "foo-1.0.tar.gz.asc", ".tar.gz", "foo-1.0.gz", ""}) {
    CHECK_MESSAGE(!IsSdistFilename(no), no);
  }
}

}  // namespace lazyfs::pkg
