#include "common/byte_codec.h"

#include <doctest/doctest.h>

#include <limits>

namespace lazyfs {
namespace {

TEST_CASE("ByteCodec: values round-trip") {
  ByteWriter w;
  w.U64(0);
  w.U64(300);
  w.U64(std::numeric_limits<uint64_t>::max());
  w.I64(-1);
  w.I64(std::numeric_limits<int64_t>::min());
  w.Bytes("hello");
  w.Bytes("");
  ByteReader r(w.data());
  CHECK(*r.U64() == 0);
  CHECK(*r.U64() == 300);
  CHECK(*r.U64() == std::numeric_limits<uint64_t>::max());
  CHECK(*r.I64() == -1);
  CHECK(*r.I64() == std::numeric_limits<int64_t>::min());
  CHECK(*r.Bytes() == "hello");
  CHECK(*r.Bytes() == "");
  CHECK(r.AtEnd());
}

TEST_CASE("ByteCodec: truncated and hostile input is corrupt, not a crash") {
  ByteWriter w;
  w.Bytes("hello");
  std::string data = w.data();
  ByteReader truncated(std::string_view(data).substr(0, 3));
  CHECK(truncated.Bytes().error().code() == ErrorCode::kCorrupt);
  std::string huge_length = "\xff\xff\xff\xff\xff\xff\xff\xff\x7f";
  ByteReader hostile(huge_length);
  CHECK_FALSE(hostile.Bytes());
  std::string endless(20, '\xff');
  ByteReader too_long(endless);
  CHECK_FALSE(too_long.U64());
}

}  // namespace
}  // namespace lazyfs
