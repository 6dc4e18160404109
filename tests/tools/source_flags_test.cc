// The source flags every image command takes: parsed by CLI11 as a user types them, turned into the fetch
// options, and passed on to a child daemon unchanged (SourceFlagArgs).
#include "tools/source_flags.h"

#include <CLI/CLI.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace lazyfs::tools {
namespace {

// Parses `args` (without the program name) into a fresh SourceFlags.
SourceFlags Parse(std::vector<std::string> args) {
  CLI::App app("test");
  SourceFlags flags;
  AddSourceFlags(app, flags);
  std::reverse(args.begin(), args.end());  // CLI11 takes the vector back to front
  app.parse(args);
  return flags;
}

}  // namespace

TEST_CASE("Source flags: --mirror-tags decides whether mirrors may resolve tags; default yes") {
  CHECK(ToSourceOptions(Parse({})).value().registry.mirror_tags);
  CHECK_FALSE(ToSourceOptions(Parse({"--mirror-tags", "no"})).value().registry.mirror_tags);
  CHECK(ToSourceOptions(Parse({"--mirror-tags", "yes"})).value().registry.mirror_tags);
  CHECK_THROWS_AS(Parse({"--mirror-tags", "maybe"}), CLI::ValidationError);
}

TEST_CASE("Source flags: what a child daemon is given parses back to the same options") {
  SourceFlags flags = Parse({"--mirror", "http://mirror.test", "--mirror-tags", "no", "--insecure-registry",
                             "127.0.0.1:5000", "--read-timeout", "2.5", "--retries", "1"});
  SourceFlags again = Parse(SourceFlagArgs(flags));
  fetch::SourceOptions a = ToSourceOptions(flags).value();
  fetch::SourceOptions b = ToSourceOptions(again).value();
  CHECK(b.registry.mirrors == std::vector<std::string>{"http://mirror.test"});
  CHECK_FALSE(b.registry.mirror_tags);
  CHECK(b.registry.insecure_registries == a.registry.insecure_registries);
  CHECK(b.registry.read_timeout == std::chrono::milliseconds(2500));
  CHECK(b.registry.retry.max_attempts == 2);
}

TEST_CASE("Source flags: a read timeout that is not a positive finite number is refused by the parser") {
  for (const char* bad : {"0", "-1", "nan", "inf"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(Parse({"--read-timeout", bad}), CLI::ValidationError);
  }
}

}  // namespace lazyfs::tools
