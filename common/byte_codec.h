// ByteWriter / ByteReader: a compact binary encoding (LEB128 varints, length-prefixed strings) for the
// values lazyfs stores in its cache's meta database (layer indexes, merged trees) and for traces.
// The reader bounds-checks everything: a truncated or hostile value yields kCorrupt, never a crash.
//
// Thread safety: one thread per writer/reader.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/result.h"

namespace lazyfs {

class ByteWriter {
 public:
  void U64(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void I64(int64_t v) { U64((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }  // zigzag
  void Bytes(std::string_view s) {
    U64(s.size());
    out_.append(s);
  }
  void Fixed(std::string_view s) { out_.append(s); }  // caller knows the length (digests)

  const std::string& data() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  Result<uint64_t> U64() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return Corrupt("encoded value truncated");
      auto byte = static_cast<uint8_t>(in_[pos_++]);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    return Corrupt("varint too long");
  }
  Result<int64_t> I64() {
    uint64_t u = LAZYFS_TRY(U64());
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  Result<std::string_view> Bytes() {
    uint64_t n = LAZYFS_TRY(U64());
    return Fixed(n);
  }
  Result<std::string_view> Fixed(uint64_t n) {
    if (n > in_.size() - pos_) return Corrupt("encoded string runs past the end");
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  bool AtEnd() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace lazyfs
