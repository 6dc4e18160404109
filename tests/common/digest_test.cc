#include "common/digest.h"

#include <doctest/doctest.h>

namespace lazyfs {
namespace {

constexpr const char* kEmptySha256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST_CASE("Sha256Of: known vectors") {
  CHECK(Sha256Of("").ToString() == kEmptySha256);
  CHECK(Sha256Of("abc").Hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("Sha256Hasher: streaming equals one-shot") {
  Sha256Hasher h;
  h.Update("a");
  h.Update("bc");
  CHECK(h.Finish() == Sha256Of("abc"));
}

TEST_CASE("Sha256Digest::Parse: accepts only sha256:<64 lowercase hex>") {
  auto d = Sha256Digest::Parse(kEmptySha256);
  REQUIRE(d);
  CHECK(d->ToString() == kEmptySha256);
  CHECK(Sha256Digest::FromRaw(d->Raw()) == d);
  CHECK_FALSE(Sha256Digest::Parse("sha512:e3b0"));
  CHECK_FALSE(Sha256Digest::Parse("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
  CHECK_FALSE(Sha256Digest::Parse("sha256:e3b0"));
  CHECK_FALSE(Sha256Digest::Parse(std::string(kEmptySha256) + "0"));
  CHECK_FALSE(Sha256Digest::FromRaw("short"));
}

TEST_CASE("Xxh3: stable and content-sensitive") {
  CHECK(Xxh3("hello") == Xxh3("hello"));
  CHECK(Xxh3("hello") != Xxh3("hellp"));
}

}  // namespace
}  // namespace lazyfs
