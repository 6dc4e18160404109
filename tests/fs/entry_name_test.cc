#include "fs/entry_name.h"

#include <doctest/doctest.h>

namespace lazyfs::fs {
namespace {

TEST_CASE("NormalizeEntryName: cleans names to relative paths") {
  CHECK(NormalizeEntryName("a") == "a");
  CHECK(NormalizeEntryName("./a") == "a");
  CHECK(NormalizeEntryName("a//b") == "a/b");
  CHECK(NormalizeEntryName("a/./b") == "a/b");
  CHECK(NormalizeEntryName("usr/bin/") == "usr/bin");
  CHECK(NormalizeEntryName("./usr/bin//") == "usr/bin");
  CHECK(NormalizeEntryName("a//b/./c") == "a/b/c");
  SUBCASE("the root") {
    CHECK(NormalizeEntryName("") == "");
    CHECK(NormalizeEntryName(".") == "");
    CHECK(NormalizeEntryName("./") == "");
    CHECK(NormalizeEntryName(".//./") == "");
  }
  SUBCASE("dots that are ordinary names") {
    CHECK(NormalizeEntryName("a/..b/c") == "a/..b/c");
    CHECK(NormalizeEntryName("...") == "...");
    CHECK(NormalizeEntryName(".wh..wh..opq") == ".wh..wh..opq");
  }
}

TEST_CASE("NormalizeEntryName: rejects names that escape the root") {
  CHECK_FALSE(NormalizeEntryName("/etc/passwd"));
  CHECK_FALSE(NormalizeEntryName("/"));
  CHECK_FALSE(NormalizeEntryName(".."));
  CHECK_FALSE(NormalizeEntryName("../x"));
  CHECK_FALSE(NormalizeEntryName("a/../../x"));
  // Even a ".." that stays inside: the safe rule is "never", not "not too many".
  CHECK_FALSE(NormalizeEntryName("a/../b"));
  CHECK_FALSE(NormalizeEntryName("a/.."));
  CHECK_FALSE(NormalizeEntryName("./a/../"));
}

}  // namespace
}  // namespace lazyfs::fs
