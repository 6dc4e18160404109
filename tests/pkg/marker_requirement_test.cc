// PEP 508 markers and requirements, and the name rules they use. The full conformance check against
// pypa/packaging is tests/pkg/check_probe.py; these cases document the behaviour one rule at a time.
#include <doctest/doctest.h>

#include <string>

#include "pkg/marker.h"
#include "pkg/names.h"
#include "pkg/python_literal.h"
#include "pkg/requirement.h"

namespace lazyfs::pkg {
namespace {

MarkerEnvironment Linux311(std::string extra = "") {
  MarkerEnvironment env;
  env.values = {
      {"os_name", "posix"},           {"sys_platform", "linux"},   {"platform_system", "Linux"},
      {"platform_machine", "x86_64"}, {"python_version", "3.11"},  {"python_full_version", "3.11.7"},
      {"implementation_name", "cpython"}, {"extra", std::move(extra)},
  };
  return env;
}

bool Eval(std::string_view marker, const MarkerEnvironment& env) {
  Result<Marker> m = Marker::Parse(marker);
  REQUIRE_MESSAGE(m, std::string(marker));
  Result<bool> result = m->Evaluate(env);
  REQUIRE_MESSAGE(result, (result ? std::string() : result.error().message()));
  return *result;
}

std::string Canonical(std::string_view marker) {
  Result<Marker> m = Marker::Parse(marker);
  REQUIRE_MESSAGE(m, std::string(marker));
  return m->ToString();
}

TEST_CASE("Names: CanonicalName folds case and runs of separators (PEP 503)") {
  CHECK(CanonicalName("Foo..Bar__baz") == "foo-bar-baz");
  CHECK(CanonicalName("zope.interface") == "zope-interface");
  CHECK(CanonicalName("A-_.-b") == "a-b");
  CHECK(NormalizeExtra("Different.punctuation..is...equal") == "different-punctuation-is-equal");
}

TEST_CASE("Names: IsValidName follows the requirement grammar") {
  for (const char* good : {"A", "aa", "A.B-C_D", "4suite", "name_"}) CHECK_MESSAGE(IsValidName(good), good);
  for (const char* bad : {"", "_name", "-name", "name-", "name.", "na me", "n\xc3\xa9"}) {
    CHECK_MESSAGE(!IsValidName(bad), bad);
  }
}

TEST_CASE("PythonLiteral: escapes decode as in Python, and what Python refuses is refused") {
  CHECK(DecodePythonStringLiteral("\\x70osix").value() == "posix");
  CHECK(DecodePythonStringLiteral("\\u0070\\101\\\\").value() == "pA\\");
  CHECK(DecodePythonStringLiteral("\\d stays").value() == "\\d stays");  // not an escape
  CHECK(DecodePythonStringLiteral("\\400").value() == "\xc4\x80");      // octal up to 0o777: U+0100
  CHECK(!DecodePythonStringLiteral("C:\\"));                              // escapes the closing quote
  CHECK(!DecodePythonStringLiteral("\\x"));
  CHECK(!DecodePythonStringLiteral("two\nlines"));
}

TEST_CASE("Marker: and binds tighter than or") {
  MarkerEnvironment env = Linux311();
  CHECK(Eval("os_name == 'nt' and python_version >= '3' or sys_platform == 'linux'", env));
  CHECK(!Eval("os_name == 'nt' or python_version >= '3' and sys_platform == 'win32'", env));
  CHECK(!Eval("os_name == 'nt' and (python_version >= '3' or sys_platform == 'linux')", env));
}

TEST_CASE("Marker: the canonical string drops redundant parentheses but keeps groups as written") {
  CHECK(Canonical("python_version>='3.3'") == "python_version >= \"3.3\"");
  CHECK(Canonical("((python_version >= \"3\"))") == "python_version >= \"3\"");
  CHECK(Canonical("(python_version>=\"3.4\")and extra==\"oursql\"") == "python_version >= \"3.4\" and extra == \"oursql\"");
  CHECK(Canonical("python_version < \"3.10\" and ((sys_platform == \"linux\" or sys_platform == \"darwin\"))") ==
        "python_version < \"3.10\" and (sys_platform == \"linux\" or sys_platform == \"darwin\")");
  // Not flattened: the group stays although `and` is associative.
  CHECK(Canonical("(os_name == 'a' and os_name == 'b') and os_name == 'c'") ==
        "(os_name == \"a\" and os_name == \"b\") and os_name == \"c\"");
  SUBCASE("variables by canonical name, values quoted as packaging does") {
    CHECK(Canonical("os.name == 'posix'") == "os_name == \"posix\"");
    CHECK(Canonical("python_implementation == 'CPython'") == "platform_python_implementation == \"CPython\"");
    CHECK(Canonical("os_name == 'say \"hi\"'") == "os_name == 'say \"hi\"'");
    CHECK(Canonical("os_name == \"\\x70osix\"") == "os_name == \"posix\"");
  }
}

TEST_CASE("Marker: extras compare PEP 685 normalised on both sides") {
  CHECK(Canonical("extra == 'Foo_Bar'") == "extra == \"foo-bar\"");
  CHECK(Canonical("'S_P__A_M' == extra") == "\"s-p-a-m\" == extra");
  CHECK(Canonical("extra ~= '1.0'") == "extra ~= \"1-0\"");
  CHECK(Canonical("extra == os_name") == "extra == os_name");  // no literal: nothing to normalise
  CHECK(Eval("extra == 'Foo_Bar'", Linux311("FOO.BAR")));
  CHECK(!Eval("extra == 'Foo_Bar'", Linux311("foobar")));
  CHECK(Eval("extra == ''", Linux311()));
  // `extra` is never a version, even when it looks like one.
  CHECK(!Eval("extra >= '1.0'", Linux311("2.0")));
}

TEST_CASE("Marker: a literal on the left takes its value from the name written on the right") {
  MarkerEnvironment env = Linux311();
  CHECK(Eval("'3.6' < python_version", env));  // `<3.11` tested against 3.6
  CHECK(Eval("'linux' in sys_platform", env));
  // The right side of a variable comparison is text, even when it names a variable.
  CHECK(!Eval("os_name == os_name", env));
  env.values["b"] = "a";
  CHECK(Eval("\"a\" == \"b\"", env));  // packaging looks up "b"
}

TEST_CASE("Marker: version variables compare as versions when the specifier is valid, else as strings") {
  MarkerEnvironment env = Linux311();
  CHECK(Eval("python_version > '3.9'", env));
  CHECK(Eval("python_version < '3.100'", env));  // numerically, not as text
  CHECK(Eval("python_full_version ~= '3.11.0'", env));
  CHECK(Eval("python_version == '3.*'", env));
  CHECK(!Eval("python_version == 'abc'", env));  // no version: string equality
  CHECK(Eval("python_version in '3.10 3.11 3.12'", env));
  CHECK(!Eval("os_name < 'z'", env));  // strings have no order: < and > are false
  CHECK(Eval("os_name >= 'posix'", env));
  env.values["python_full_version"] = "3.11.1+";  // an untagged build: read as 3.11.1+local
  CHECK(Eval("python_full_version < '3.12'", env));
}

TEST_CASE("Marker: undefined names and comparisons are errors, evaluated without short circuit") {
  MarkerEnvironment env = Linux311();
  Result<Marker> m = Marker::Parse("python_version >= '3' or 'foo' in extras");
  REQUIRE(m);
  Result<bool> missing = m->Evaluate(env);
  REQUIRE(!missing);
  CHECK(missing.error().code() == ErrorCode::kNotFound);
  CHECK(missing.error().message().find("extras") != std::string::npos);

  m = Marker::Parse("os_name == 'posix' or os_name ~= 'x'");
  REQUIRE(m);
  Result<bool> undefined = m->Evaluate(env);
  REQUIRE(!undefined);
  CHECK(undefined.error().code() == ErrorCode::kInvalidArgument);

  SUBCASE("a lock file's set-valued extras work in the membership form only") {
    env.sets["extras"] = {"Foo_Bar", "docs"};
    CHECK(Eval("'foo-bar' in extras", env));
    CHECK(Eval("'tests' not in extras", env));
    Result<Marker> left = Marker::Parse("extras == 'docs'");
    REQUIRE(left);
    CHECK(!left->Evaluate(env));
  }
}

TEST_CASE("Marker: malformed markers are refused, naming the column") {
  for (const char* bad : {"", "python_version", "python_version >= 3", "python_version = \"3\"",
                          "python_version == \"3\" AND os_name == \"posix\"", "not python_version == \"3\"",
                          "python_version >= \"3\"\n", "python_versionX == \"3\"", "python_version notin \"3\"",
                          "(os_name == \"posix\"", "os_name == \"posix\")", "os_name == \"C:\\\""}) {
    CAPTURE(bad);
    Result<Marker> m = Marker::Parse(bad);
    REQUIRE(!m);
    CHECK(m.error().code() == ErrorCode::kInvalidArgument);
  }
  Result<Marker> m = Marker::Parse("os_name == posix");
  REQUIRE(!m);
  CHECK(m.error().message().find("column 12") != std::string::npos);
  CHECK(Marker::Parse("python_version==\"3\"and os_name==\"posix\""));  // no space needed after a quote
}

TEST_CASE("Requirement: PEP 508 examples parse into their parts") {
  Result<Requirement> req = Requirement::Parse("requests [security,tests] >= 2.8.1, == 2.8.* ; python_version < \"2.7\"");
  REQUIRE(req);
  CHECK(req->name == "requests");
  CHECK(req->extras == std::set<std::string>{"security", "tests"});
  CHECK(req->specifier.ToString() == "==2.8.*,>=2.8.1");
  CHECK(!req->url);
  REQUIRE(req->marker);
  CHECK(req->marker->ToString() == "python_version < \"2.7\"");
  CHECK(req->ToString() == "requests[security,tests]==2.8.*,>=2.8.1; python_version < \"2.7\"");

  SUBCASE("parenthesised, trailing comma, nothing at all") {
    CHECK(Requirement::Parse("name (>=1.0,<2)")->ToString() == "name<2,>=1.0");
    CHECK(Requirement::Parse("name>=3,")->ToString() == "name>=3");
    CHECK(Requirement::Parse("name ()")->ToString() == "name");
    CHECK(Requirement::Parse("name[ ]")->ToString() == "name");
  }
}

TEST_CASE("Requirement: a URL runs to the next space, and a marker after it needs one before ';'") {
  Result<Requirement> req = Requirement::Parse("pip @ https://github.com/pypa/pip/archive/1.3.1.zip#sha1=da9234ee ; extra == 'Foo'");
  REQUIRE(req);
  CHECK(req->url == "https://github.com/pypa/pip/archive/1.3.1.zip#sha1=da9234ee");
  CHECK(req->specifier.empty());
  CHECK(req->ToString() == "pip @ https://github.com/pypa/pip/archive/1.3.1.zip#sha1=da9234ee ; extra == \"foo\"");

  // Without the space the ';' belongs to the URL, and the rest cannot follow it.
  CHECK(Requirement::Parse("name@https://x;os_name=='a'")->url == "https://x;os_name=='a'");
  CHECK(!Requirement::Parse("name @ https://x; python_version>\"3\""));
  CHECK(!Requirement::Parse("name @ http://x.com/a b"));
}

TEST_CASE("Requirement: name and extras are kept as written, extras as a set") {
  Result<Requirement> req = Requirement::Parse("Foo.Bar[b,a,B,a]");
  REQUIRE(req);
  CHECK(req->name == "Foo.Bar");
  CHECK(req->CanonicalName() == "foo-bar");
  CHECK(req->extras == std::set<std::string>{"B", "a", "b"});
  CHECK(req->ToString() == "Foo.Bar[B,a,b]");
}

TEST_CASE("Requirement: malformed requirements name what was expected") {
  struct Case {
    const char* text;
    const char* says;
  };
  Case cases[] = {
      {"name-", "ends in '-'"},
      {"_name", "expected a package name"},
      {"name[a,]", "extra name after ','"},
      {"name[a b]", "']'"},
      {"name (>=1.0", "')'"},
      {"name>=1.0+local", "local version label"},
      {"name>1.0.*", "'.*'"},
      {"name~=1", "';' (after the name)"},  // ~= needs two release numbers: no clause at all
      {"name;", "marker"},
      {"name<1 >0", "',' or ';'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    Result<Requirement> req = Requirement::Parse(c.text);
    REQUIRE(!req);
    CHECK(req.error().code() == ErrorCode::kInvalidArgument);
    CHECK_MESSAGE(req.error().message().find(c.says) != std::string::npos, req.error().message());
  }
}

}  // namespace
}  // namespace lazyfs::pkg
