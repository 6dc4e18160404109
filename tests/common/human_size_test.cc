#include "common/human_size.h"

#include <doctest/doctest.h>

namespace lazyfs {

TEST_CASE("HumanSize: bytes below 1 KiB exact, then one decimal in binary units") {
  CHECK(HumanSize(0) == "0 B");
  CHECK(HumanSize(1023) == "1023 B");
  CHECK(HumanSize(1024) == "1.0 KiB");
  CHECK(HumanSize(17920) == "17.5 KiB");
  CHECK(HumanSize(uint64_t{120} << 20) == "120.0 MiB");
  CHECK(HumanSize(68719476736) == "64.0 GiB");
  CHECK(HumanSize(uint64_t{3} << 40) == "3.0 TiB");
  CHECK(HumanSize(UINT64_MAX) == "16.0 EiB");
}

TEST_CASE("HumanSize: a value that rounds up to the next unit is named in it") {
  CHECK(HumanSize((uint64_t{1} << 20) - 1) == "1.0 MiB");  // not "1024.0 KiB"
  CHECK(HumanSize((uint64_t{1} << 30) - 1) == "1.0 GiB");
}

}  // namespace lazyfs
