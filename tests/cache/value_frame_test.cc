#include "cache/value_frame.h"

#include <doctest/doctest.h>

#include <string>

namespace lazyfs::cache {
namespace {

std::string Framed(std::string_view data) {
  std::string out(FramedSize(data.size()), '\0');
  WriteFrame(data, out.data());
  return out;
}

TEST_CASE("ValueFrame: a framed value verifies and yields its payload") {
  for (std::string data : {std::string(), std::string("x"), std::string(100000, 'q')}) {
    std::string stored = Framed(data);
    CHECK(stored.size() == data.size() + kFrameHeaderBytes);
    auto payload = VerifiedPayload(stored);
    REQUIRE(payload.has_value());
    CHECK(*payload == data);
  }
}

TEST_CASE("ValueFrame: the checksum is the little-endian XXH3 of the data") {
  std::string stored = Framed("hello");
  uint64_t sum = Xxh3("hello");
  for (size_t i = 0; i < kFrameHeaderBytes; ++i) {
    CHECK(static_cast<unsigned char>(stored[i]) == ((sum >> (8 * i)) & 0xff));
  }
}

TEST_CASE("ValueFrame: a flipped bit or a short value does not verify") {
  std::string stored = Framed("some chunk bytes");
  SUBCASE("payload bit") { stored[kFrameHeaderBytes + 3] ^= 0x10; }
  SUBCASE("checksum bit") { stored[2] ^= 0x01; }
  SUBCASE("truncated payload") { stored.pop_back(); }
  SUBCASE("shorter than the header") { stored.resize(kFrameHeaderBytes - 1); }
  CHECK_FALSE(VerifiedPayload(stored).has_value());
}

}  // namespace
}  // namespace lazyfs::cache
