// pep_probe: answers conformance queries about pkg/ (PEP 440 versions and specifiers, PEP 508 markers
// and requirements) so tests/pkg/check_probe.py can compare them with what pypa/packaging answers
// (tests/pkg/data/). Not installed; not a user tool.
//
// One JSON query per line on stdin, one JSON answer per line on stdout (flushed), exit 0 at EOF. Lines
// are split on '\n' only: queries may hold U+2028/U+2029 and other characters some readers treat as line
// breaks.
//   ["version", s]                    {"normalized", "public", ..., "is_devrelease"} | "INVALID"
//   ["compare", a, b]                 -1 | 0 | 1 | "INVALID"
//   ["specifier", s]                  canonical string | "INVALID"
//   ["contains", spec, version, pre]  true | false | "INVALID"   (pre: null, true or false)
//   ["filter", spec, [versions], pre] the versions kept, in input order | "INVALID"
//   ["marker_str", m]                 canonical string | "INVALID"
//   ["marker", m, env]                true | false | "INVALID" | "ERROR" (undefined name or comparison)
//   ["requirement", s]                {"name", "extras", "specifier", "marker", "url", "str"} | "INVALID"
// A line that is not such a query gets {"error": MESSAGE}.
//
// Thread safety: single-threaded tool.
#include <nlohmann/json.hpp>

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "pkg/marker.h"
#include "pkg/requirement.h"
#include "pkg/specifier.h"
#include "pkg/version.h"

namespace lazyfs::pkg {
namespace {

using nlohmann::json;

const json kInvalid = "INVALID";

// The environment make_probe_data.py evaluates markers in (before `extra` and the query's own values).
MarkerEnvironment BaseEnvironment() {
  MarkerEnvironment env;
  env.values = {
      {"implementation_name", "cpython"},
      {"implementation_version", "3.11.7"},
      {"os_name", "posix"},
      {"platform_machine", "x86_64"},
      {"platform_release", "6.1.0-13-amd64"},
      {"platform_system", "Linux"},
      {"platform_version", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1"},
      {"platform_python_implementation", "CPython"},
      {"python_full_version", "3.11.7"},
      {"python_version", "3.11"},
      {"sys_platform", "linux"},
  };
  return env;
}

json Optional(const auto& value) { return value ? json(*value) : json(nullptr); }

std::optional<bool> PreArgument(const json& pre) {
  if (pre.is_null()) return std::nullopt;
  return pre.get<bool>();
}

json VersionAnswer(const std::string& text) {
  Result<Version> v = Version::Parse(text);
  if (!v) return kInvalid;
  json pre = nullptr;
  if (v->pre()) pre = json::array({std::string(v->pre()->Label()), v->pre()->number});
  return {
      {"normalized", v->ToString()},
      {"public", v->Public()},
      {"base_version", v->BaseVersion()},
      {"epoch", v->epoch()},
      {"release", v->release()},
      {"pre", pre},
      {"post", Optional(v->post())},
      {"dev", Optional(v->dev())},
      {"local", v->HasLocal() ? json(v->LocalString()) : json(nullptr)},
      {"is_prerelease", v->IsPrerelease()},
      {"is_postrelease", v->IsPostrelease()},
      {"is_devrelease", v->IsDevrelease()},
  };
}

json CompareAnswer(const std::string& a, const std::string& b) {
  Result<Version> va = Version::Parse(a);
  Result<Version> vb = Version::Parse(b);
  if (!va || !vb) return kInvalid;
  return (*va > *vb) - (*va < *vb);
}

json MarkerAnswer(const std::string& text, const json& overrides) {
  Result<Marker> marker = Marker::Parse(text);
  if (!marker) return kInvalid;
  MarkerEnvironment env = BaseEnvironment();
  env.values["extra"] = "";  // packaging's default "metadata" context
  for (const auto& [key, value] : overrides.items()) env.values[key] = value.get<std::string>();
  Result<bool> result = marker->Evaluate(env);
  if (!result) return "ERROR";
  return *result;
}

json RequirementAnswer(const std::string& text) {
  Result<Requirement> req = Requirement::Parse(text);
  if (!req) return kInvalid;
  return {
      {"name", req->name},
      {"extras", std::vector<std::string>(req->extras.begin(), req->extras.end())},
      {"specifier", req->specifier.ToString()},
      {"marker", req->marker ? json(req->marker->ToString()) : json(nullptr)},
      {"url", Optional(req->url)},
      {"str", req->ToString()},
  };
}

json Answer(const json& query) {
  const std::string kind = query.at(0).get<std::string>();
  if (kind == "version") return VersionAnswer(query.at(1).get<std::string>());
  if (kind == "compare") return CompareAnswer(query.at(1).get<std::string>(), query.at(2).get<std::string>());
  if (kind == "marker_str") {
    Result<Marker> marker = Marker::Parse(query.at(1).get<std::string>());
    return marker ? json(marker->ToString()) : kInvalid;
  }
  if (kind == "marker") return MarkerAnswer(query.at(1).get<std::string>(), query.at(2));
  if (kind == "requirement") return RequirementAnswer(query.at(1).get<std::string>());

  Result<SpecifierSet> spec = SpecifierSet::Parse(query.at(1).get<std::string>());
  if (kind == "specifier") return spec ? json(spec->ToString()) : kInvalid;
  if (kind == "contains") {
    if (!spec) return kInvalid;
    return spec->Contains(query.at(2).get<std::string>(), PreArgument(query.at(3)));
  }
  if (kind == "filter") {
    if (!spec) return kInvalid;
    std::vector<std::string> versions = query.at(2).get<std::vector<std::string>>();
    json kept = json::array();
    for (size_t i : spec->Filter(versions, PreArgument(query.at(3)))) kept.push_back(versions.at(i));
    return kept;
  }
  return {{"error", "unknown query kind " + kind}};
}

int Main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    json answer;
    try {
      answer = Answer(json::parse(line));
    } catch (const json::exception& e) {  // a malformed query, not a pkg/ answer
      answer = {{"error", e.what()}};
    }
    std::cout << answer.dump(-1, ' ', false, json::error_handler_t::replace) << '\n' << std::flush;
  }
  return 0;
}

}  // namespace
}  // namespace lazyfs::pkg

int main() { return lazyfs::pkg::Main(); }
