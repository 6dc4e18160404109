#include "common/digest.h"

#include <xxhash.h>

namespace lazyfs {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::optional<Sha256Digest> Sha256Digest::Parse(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  if (text.size() != kPrefix.size() + 64 || text.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  Sha256Digest d;
  for (size_t i = 0; i < 32; ++i) {
    int hi = HexValue(text[kPrefix.size() + 2 * i]);
    int lo = HexValue(text[kPrefix.size() + 2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return d;
}

std::optional<Sha256Digest> Sha256Digest::FromRaw(std::string_view raw) {
  if (raw.size() != 32) return std::nullopt;
  Sha256Digest d;
  std::memcpy(d.bytes.data(), raw.data(), 32);
  return d;
}

std::string Sha256Digest::Hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(64, '0');
  for (size_t i = 0; i < 32; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return out;
}

uint64_t Xxh3(std::string_view data) { return XXH3_64bits(data.data(), data.size()); }

}  // namespace lazyfs
