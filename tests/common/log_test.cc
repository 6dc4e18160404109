#include "common/log.h"

#include <doctest/doctest.h>

namespace lazyfs {
namespace {

TEST_CASE("LogLevelName: every level's name parses back to it") {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError, LogLevel::kOff}) {
    LogLevel parsed = LogLevel::kOff;
    REQUIRE(ParseLogLevel(LogLevelName(level), &parsed));
    CHECK(parsed == level);
  }
  CHECK(std::string_view(LogLevelName(LogLevel::kWarn)) == "warn");
  LogLevel untouched = LogLevel::kInfo;
  CHECK_FALSE(ParseLogLevel("verbose", &untouched));
}

}  // namespace
}  // namespace lazyfs
