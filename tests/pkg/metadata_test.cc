// Core metadata: a real METADATA from a Debian package, the RFC 822 details (continuations, CRLF, case),
// and the refusals (missing fields, garbage lines, bad bytes, a hostile size).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/fd.h"
#include "pkg/metadata.h"

#ifndef LAZYFS_PKG_TEST_DATA
#error "LAZYFS_PKG_TEST_DATA must name tests/pkg/data (a compile definition from meson)"
#endif

namespace lazyfs::pkg {
namespace {

// A file of tests/pkg/data.
std::string ReadFixture(const std::string& name) { return ReadWholeFile(std::string(LAZYFS_PKG_TEST_DATA) + "/" + name).value(); }

CoreMetadata Parse(std::string_view text) { return ParseCoreMetadata(text, "test/METADATA").value(); }

// The error for `text`, which must be one, with `where` and `needle` in its message.
void CheckError(std::string_view text, ErrorCode code, std::string_view needle) {
  Result<CoreMetadata> m = ParseCoreMetadata(text, "https://example/foo.whl.metadata");
  REQUIRE_MESSAGE(!m, text.substr(0, 80));
  CHECK(m.error().code() == code);
  CHECK_MESSAGE(m.error().message().starts_with("https://example/foo.whl.metadata: "), m.error().message());
  CHECK_MESSAGE(m.error().message().find(needle) != std::string::npos, m.error().message());
}

}  // namespace

TEST_CASE("ParseCoreMetadata: python3-ufolib2's METADATA from Debian 12") {
  CoreMetadata m = Parse(ReadFixture("ufoLib2-0.14.0.METADATA"));
  CHECK(m.metadata_version == "2.1");
  CHECK(m.name == "ufoLib2");
  CHECK(m.version == "0.14.0");
  CHECK(m.summary == "ufoLib2 is a UFO font processing library.");
  REQUIRE(m.requires_python);
  CHECK(*m.requires_python == ">=3.7");
  CHECK(m.requires_dist == std::vector<std::string>{
                               "attrs (>=22.1.0)",
                               "fonttools[ufo] (>=4.0.0)",
                               "typing-extensions ; python_version < \"3.8\"",
                               "cattrs (>=22.2.0) ; extra == 'converters'",
                               "cattrs (>=22.2.0) ; extra == 'json'",
                               "orjson ; (platform_python_implementation != \"PyPy\") and extra == 'json'",
                               "lxml ; extra == 'lxml'",
                               "cattrs (>=22.2.0) ; extra == 'msgpack'",
                               "msgpack ; extra == 'msgpack'",
                           });
  CHECK(m.provides_extra == std::vector<std::string>{"converters", "json", "lxml", "msgpack"});
}

TEST_CASE("ParseCoreMetadata: continuation lines unfold into the field before them") {
  CoreMetadata m = Parse(
      "Metadata-Version: 2.4\n"
      "Name: foo\n"
      "Summary: a summary\n"
      "  that goes on\n"
      "\tand on\n"
      "Classifier: skipped\n"
      "  also skipped\n"
      "Requires-Dist:\n"
      "  bar>=1;\n"
      "  extra == 'x'\n"
      "Version: 1.0\n");
  CHECK(m.summary == "a summary  that goes on\tand on");
  CHECK(m.requires_dist == std::vector<std::string>{"bar>=1;  extra == 'x'"});
  CHECK(m.version == "1.0");
}

TEST_CASE("ParseCoreMetadata: CRLF, field-name case, the body and what is optional") {
  SUBCASE("CRLF line ends") {
    CoreMetadata m = Parse(
        "Metadata-Version: 1.0\r\nName: foo\r\nVersion: 2.0\r\nRequires-Dist: a\r\n  ; extra == 'b'\r\n\r\n"
        "Name: not-a-field: the description\r\n");
    CHECK(m.name == "foo");
    CHECK(m.version == "2.0");
    CHECK(m.requires_dist == std::vector<std::string>{"a  ; extra == 'b'"});
  }
  SUBCASE("field names in any case; repeated fields keep their order; values stripped") {
    CoreMetadata m = Parse(
        "NAME:   foo  \nversion:1.0\nrequires-dist: b\nREQUIRES-DIST: a\nProvides-Extra: z\nprovides-extra: y\n"
        "requires-python: >=3.8\nsummary: first\nSummary: second\n");
    CHECK(m.name == "foo");
    CHECK(m.version == "1.0");
    CHECK(m.requires_dist == std::vector<std::string>{"b", "a"});
    CHECK(m.provides_extra == std::vector<std::string>{"z", "y"});
    CHECK(m.requires_python == std::optional<std::string>(">=3.8"));
    CHECK(m.summary == "first");
  }
  SUBCASE("only Name and Version are required, and no body is needed") {
    CoreMetadata m = Parse("Name: foo\nVersion: 1");
    CHECK(m.metadata_version == "");
    CHECK_FALSE(m.requires_python);
    CHECK(m.requires_dist.empty());
    CHECK(m.summary == "");
  }
  SUBCASE("an empty Requires-Python is kept as given") {
    CHECK(Parse("Name: foo\nVersion: 1\nRequires-Python:\n").requires_python == std::optional<std::string>(""));
  }
  SUBCASE("the body may hold anything, even bytes that are not UTF-8") {
    CoreMetadata m = Parse("Name: foo\nVersion: 1\n\n\xff\xfe garbage\nRequires-Dist: not-a-field\n");
    CHECK(m.requires_dist.empty());
  }
  SUBCASE("UTF-8 in values") {
    CHECK(Parse("Name: foo\nVersion: 1\nSummary: Adrien T\xc3\xa9tar \xe2\x9c\x93\n").summary ==
          "Adrien T\xc3\xa9tar \xe2\x9c\x93");
  }
}

TEST_CASE("ParseCoreMetadata: missing or repeated identity fields are errors naming the file") {
  CheckError("Metadata-Version: 2.1\nVersion: 1.0\n", ErrorCode::kCorrupt, "no Name field");
  CheckError("Name: foo\nSummary: x\n\nVersion: 1.0\n", ErrorCode::kCorrupt, "no Version field");
  CheckError("Name:   \nVersion: 1.0\n", ErrorCode::kCorrupt, "the Name field is empty");
  CheckError("Name: foo\nVersion:\n", ErrorCode::kCorrupt, "the Version field is empty");
  CheckError("", ErrorCode::kCorrupt, "no Name field");
  CheckError("\nName: foo\nVersion: 1\n", ErrorCode::kCorrupt, "no Name field");  // all of it is the body
  CheckError("Name: foo\nVersion: 1\nname: bar\n", ErrorCode::kCorrupt, "line 3: a second name field");
  CheckError("Name: foo\nVersion: 1\nVERSION: 2\n", ErrorCode::kCorrupt, "a second VERSION field");
  CheckError("Name: foo\nVersion: 1\nRequires-Python: >=3\nRequires-Python: <4\n", ErrorCode::kCorrupt,
             "line 4: a second Requires-Python field");
}

TEST_CASE("ParseCoreMetadata: a line that is neither a field nor a continuation is an error") {
  CheckError("Name: foo\nVersion: 1\ngarbage line\nRequires-Dist: bar\n", ErrorCode::kCorrupt,
             "line 3: neither a field nor a continuation line: \"garbage line\"");
  CheckError("Name: foo\n: no name\nVersion: 1\n", ErrorCode::kCorrupt, "line 2: neither a field");
  CheckError("Name: foo\nRequires Dist: bar\nVersion: 1\n", ErrorCode::kCorrupt, "line 2: neither a field");
  CheckError("  Name: foo\nVersion: 1\n", ErrorCode::kCorrupt, "line 1: a continuation line before any field");
  CheckError("Name: foo\nVersion: 1\nSummary: " + std::string(200, 'x') + "\n" + std::string(200, 'y') + "\n",
             ErrorCode::kCorrupt, "line 4: neither a field nor a continuation line: \"yyyyy");
}

TEST_CASE("ParseCoreMetadata: bytes that are not UTF-8 in the header are an error") {
  for (std::string_view bad : {"\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x9c"}) {
    CheckError("Name: foo\nVersion: 1\nSummary: x" + std::string(bad) + "y\n", ErrorCode::kCorrupt,
               "line 3: bytes that are not UTF-8");
  }
  CheckError("Name: f\xe9o\nVersion: 1\n", ErrorCode::kCorrupt, "line 1: bytes that are not UTF-8");  // Latin-1
}

TEST_CASE("ParseCoreMetadata: Metadata-Version must be major.minor, and a major past 2 is refused") {
  CHECK(Parse("Metadata-Version: 2.4\nName: foo\nVersion: 1\n").metadata_version == "2.4");
  CheckError("Metadata-Version: 3.0\nName: foo\nVersion: 1\n", ErrorCode::kUnsupported, "Metadata-Version \"3.0\"");
  CheckError("Metadata-Version: two\nName: foo\nVersion: 1\n", ErrorCode::kCorrupt, "is not <major>.<minor>");
  CheckError("Metadata-Version: 2\nName: foo\nVersion: 1\n", ErrorCode::kCorrupt, "is not <major>.<minor>");
}

TEST_CASE("ParseCoreMetadata: a header past kMaxMetadataHeaderBytes is refused, a long body is not") {
  const std::string fields = "Name: foo\nVersion: 1\n";
  SUBCASE("the limit itself is fine, one byte more is not") {
    const std::string summary_line = "Summary: ";
    const size_t fill = kMaxMetadataHeaderBytes - fields.size() - summary_line.size() - 1;  // 1 for the '\n'
    const std::string header = fields + summary_line + std::string(fill, 'x') + "\n";
    REQUIRE(header.size() == kMaxMetadataHeaderBytes);
    CHECK(ParseCoreMetadata(header + "\nbody", "w"));
    CHECK(ParseCoreMetadata(header + "\r\nbody", "w"));
    CHECK(ParseCoreMetadata(header, "w"));
    CheckError(fields + summary_line + std::string(fill + 1, 'x') + "\n\nbody", ErrorCode::kCorrupt,
               "larger than 1048576 bytes");
    CheckError(fields + summary_line + std::string(fill + 1, 'x') + "\n", ErrorCode::kCorrupt,
               "larger than 1048576 bytes");
  }
  SUBCASE("a hostile file: one endless line, or endless continuations") {
    CheckError(fields + "Summary: " + std::string(8 * kMaxMetadataHeaderBytes, 'x'), ErrorCode::kCorrupt,
               "larger than");
    std::string folded = fields + "Summary: x\n";
    while (folded.size() < 4 * kMaxMetadataHeaderBytes) folded += " y\n";
    CheckError(folded, ErrorCode::kCorrupt, "larger than");
  }
  SUBCASE("the description is not read, however long") {
    std::string text = fields + "\n" + std::string(8 * kMaxMetadataHeaderBytes, '\xff');
    CHECK(Parse(text).name == "foo");
  }
}

}  // namespace lazyfs::pkg
