#include "common/base64.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace lazyfs {
namespace {

TEST_CASE("Base64: RFC 4648 vectors and round trips") {
  CHECK(Base64Encode("") == "");
  CHECK(Base64Encode("f") == "Zg==");
  CHECK(Base64Encode("fo") == "Zm8=");
  CHECK(Base64Encode("foo") == "Zm9v");
  CHECK(Base64Encode("foobar") == "Zm9vYmFy");
  CHECK(Base64Encode("user:pass") == "dXNlcjpwYXNz");
  for (const std::string& text : std::vector<std::string>{"", "a", "ab", "abc", "abcd", "user:pa:ss\xff",
                                                           std::string("\0\x01\xfe", 3)}) {
    std::optional<std::string> decoded = Base64Decode(Base64Encode(text));
    REQUIRE(decoded);
    CHECK(*decoded == text);
  }
  SUBCASE("input longer than one EVP piece") {
    std::string big((size_t{3} << 20) + 7, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + i / 977);
    std::string encoded = Base64Encode(big);
    CHECK(encoded.size() == (big.size() + 2) / 3 * 4);
    CHECK(Base64Decode(encoded) == big);
  }
}

TEST_CASE("Base64Decode: only padded standard base64") {
  CHECK(Base64Decode("Zm9vYg==") == "foob");
  CHECK_FALSE(Base64Decode("Zm9vYg"));     // unpadded
  CHECK_FALSE(Base64Decode("abcde"));
  CHECK_FALSE(Base64Decode("a$bc"));
  CHECK_FALSE(Base64Decode("Zm=vYg=="));   // padding before the end
  CHECK_FALSE(Base64Decode(" Zm9v"));      // EVP_DecodeBlock would skip the blank
  CHECK_FALSE(Base64Decode("Zm9v\n"));
  CHECK_FALSE(Base64Decode("Zm9-"));       // URL-safe alphabet
  CHECK_FALSE(Base64Decode("not base64!"));
}

}  // namespace
}  // namespace lazyfs
