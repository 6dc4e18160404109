// Requirements files as pip reads them: comments, continuations, --hash, nested -r/-c, index options, and
// clear errors (FILE:LINE) for what does not parse or is not supported.
#include <doctest/doctest.h>

#include <map>

#include "pkg/requirements_file.h"

namespace lazyfs::pkg {
namespace {

struct Files {
  std::map<std::string, std::string> texts;
  FileLoader Loader() const {
    return [this](const std::string& path) -> Result<std::string> {
      auto it = texts.find(path);
      if (it == texts.end()) return NotFound("no such file: " + path);
      return it->second;
    };
  }
};

}  // namespace

TEST_CASE("ReadRequirementsFile: comments, continuations, markers and hashes") {
  Files files;
  files.texts["/w/req.txt"] =
      "# a comment\n"
      "requests[socks] >= 2.0, <3   # trailing comment\n"
      "six==1.16.0 \\\n"
      "    --hash=sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926\r\n"
      "\n"
      "importlib-metadata; python_version < \"3.8\"\n"
      "pkg @ https://files.example/pkg-1.0-py3-none-any.whl#sha256=00\n"
      "--index-url http://127.0.0.1:8080/simple\n"
      "--extra-index-url=http://127.0.0.1:8081/simple\n";
  RequirementsFile r = ReadRequirementsFile("/w/req.txt", files.Loader()).value();
  REQUIRE(r.requirements.size() == 4);
  CHECK(r.requirements[0].requirement.ToString() == "requests[socks]<3,>=2.0");
  CHECK(r.requirements[0].where == "/w/req.txt:2");
  CHECK(r.requirements[1].requirement.ToString() == "six==1.16.0");
  CHECK(r.requirements[1].hashes ==
        std::vector<std::string>{"sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926"});
  CHECK(r.requirements[2].requirement.marker.has_value());
  CHECK(r.requirements[3].requirement.url == "https://files.example/pkg-1.0-py3-none-any.whl#sha256=00");
  CHECK(r.index_url == "http://127.0.0.1:8080/simple");
  CHECK(r.extra_index_urls == std::vector<std::string>{"http://127.0.0.1:8081/simple"});
}

TEST_CASE("ReadRequirementsFile: -r and -c files relative to the including file") {
  Files files;
  files.texts["/w/req.txt"] = "-r sub/base.txt\n-c constraints.txt\nflask\n";
  files.texts["/w/sub/base.txt"] = "click>=8\n";
  files.texts["/w/constraints.txt"] = "click<8.2\n";
  RequirementsFile r = ReadRequirementsFile("/w/req.txt", files.Loader()).value();
  REQUIRE(r.requirements.size() == 2);
  CHECK(r.requirements[0].requirement.name == "click");
  CHECK(r.requirements[0].where == "/w/sub/base.txt:1");
  CHECK(r.requirements[1].requirement.name == "flask");
  REQUIRE(r.constraints.size() == 1);
  CHECK(r.constraints[0].requirement.specifier.ToString() == "<8.2");
}

TEST_CASE("ReadRequirementsFile: errors name the file and line") {
  Files files;
  files.texts["/w/bad.txt"] = "flask\nnot a requirement!\n";
  files.texts["/w/editable.txt"] = "-e ./local\n";
  files.texts["/w/hash.txt"] = "six --hash=nothex\n";
  files.texts["/w/cycle.txt"] = "-r cycle.txt\n";
  files.texts["/w/missing.txt"] = "-r nowhere.txt\n";
  auto message = [&](const std::string& path) {
    Result<RequirementsFile> r = ReadRequirementsFile(path, files.Loader());
    REQUIRE_FALSE(r.has_value());
    return r.error().ToString();
  };
  CHECK(message("/w/bad.txt").find("/w/bad.txt:2") != std::string::npos);
  CHECK(message("/w/editable.txt").find("-e") != std::string::npos);
  CHECK(message("/w/hash.txt").find("ALGORITHM:HEX") != std::string::npos);
  CHECK(message("/w/cycle.txt").find("cycle") != std::string::npos);
  CHECK(message("/w/missing.txt").find("nowhere.txt") != std::string::npos);
}

}  // namespace lazyfs::pkg
