#include "common/result.h"

#include <doctest/doctest.h>

#include <cerrno>

namespace lazyfs {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  int h = LAZYFS_TRY(Half(x));
  return LAZYFS_TRY(Half(h));
}

TEST_CASE("Result: LAZYFS_TRY passes values through and propagates the first error") {
  REQUIRE(Quarter(8));
  CHECK(*Quarter(8) == 2);
  auto r = Quarter(6);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == ErrorCode::kInvalidArgument);
  CHECK(r.error().message() == "odd: 3");
}

TEST_CASE("Error: Context prefixes the message and keeps the code") {
  Error e = Corrupt("bad footer").Context("layer sha256:ab");
  CHECK(e.message() == "layer sha256:ab: bad footer");
  CHECK(e.code() == ErrorCode::kCorrupt);
  CHECK(e.ToString() == "corrupt: layer sha256:ab: bad footer");
}

TEST_CASE("PosixError and ToErrno: errno maps to a code and back at the FUSE edge") {
  CHECK(ToErrno(PosixError(ENOENT, "open /x")) == ENOENT);
  CHECK(PosixError(ENOENT, "open /x").message().find("open /x: ") == 0);
  CHECK(ToErrno(Corrupt("digest mismatch")) == EIO);
  CHECK(ToErrno(Error(ErrorCode::kTimeout, "slow", true)) == EIO);
  CHECK(PosixError(EAGAIN, "read").retryable());
  CHECK_FALSE(PosixError(EBADF, "read").retryable());
}

}  // namespace
}  // namespace lazyfs
