// The eStargz footer: the 51-byte empty gzip member at the end of a blob whose extra field holds
// "%016x" of the TOC's offset followed by "STARGZ" (spec "Footer"; byte-identical to Go's estargz writer).
//
// Thread safety: pure functions.
#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "fs/estargz.h"

namespace lazyfs::fs {
namespace {

// RFC 1952 header flag bits.
constexpr uint8_t kFlagHcrc = 0x02;
constexpr uint8_t kFlagExtra = 0x04;
constexpr uint8_t kFlagName = 0x08;
constexpr uint8_t kFlagComment = 0x10;

constexpr size_t kGzipHeaderSize = 10;
constexpr size_t kSubfieldSize = 22;  // 16 hex digits + "STARGZ"
constexpr size_t kExtraSize = 4 + kSubfieldSize;
constexpr std::string_view kMagic = "STARGZ";
// An empty final stored block (BFINAL=1, BTYPE=00, LEN=0, NLEN=0xffff), then CRC32 = 0 and ISIZE = 0.
constexpr std::array<uint8_t, 13> kEmptyBody = {0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0};

uint8_t Byte(std::string_view s, size_t i) { return static_cast<uint8_t>(s[i]); }

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<uint64_t> ParseEstargzFooter(std::string_view footer) {
  if (footer.size() != kEstargzFooterSize) {
    return Corrupt(fmt::format("eStargz footer: {} bytes, want {}", footer.size(), kEstargzFooterSize));
  }
  if (Byte(footer, 0) != 0x1f || Byte(footer, 1) != 0x8b || Byte(footer, 2) != 8) {
    return Corrupt("eStargz footer: not a gzip member");
  }
  // FNAME, FCOMMENT or FHCRC would move the fields below: such a member is not the eStargz footer.
  uint8_t flags = Byte(footer, 3);
  if ((flags & kFlagExtra) == 0 || (flags & (kFlagName | kFlagComment | kFlagHcrc)) != 0) {
    return Corrupt(fmt::format("eStargz footer: gzip flags {:#04x}, want only an extra field", flags));
  }
  size_t xlen = Byte(footer, 10) | size_t{Byte(footer, 11)} << 8;
  if (xlen != kExtraSize) return Corrupt(fmt::format("eStargz footer: extra field of {} bytes, want 26", xlen));
  std::string_view extra = footer.substr(kGzipHeaderSize + 2, kExtraSize);
  if (extra[0] != 'S' || extra[1] != 'G') return Corrupt("eStargz footer: extra subfield id is not 'SG'");
  size_t sublen = Byte(extra, 2) | size_t{Byte(extra, 3)} << 8;
  if (sublen != kSubfieldSize) {
    return Corrupt(fmt::format("eStargz footer: subfield of {} bytes, want 22", sublen));
  }
  std::string_view subfield = extra.substr(4);
  if (subfield.substr(16) != kMagic) return Corrupt("eStargz footer: no STARGZ magic");
  uint64_t offset = 0;
  for (char c : subfield.substr(0, 16)) {
    int digit = HexDigit(c);
    if (digit < 0) return Corrupt("eStargz footer: TOC offset is not 16 hex digits");
    offset = offset << 4 | static_cast<uint64_t>(digit);
  }
  // Go parses the offset as int64: anything with the top bit set is no offset of a real blob.
  if (offset > uint64_t{INT64_MAX}) return Corrupt("eStargz footer: TOC offset out of range");
  std::string_view body = footer.substr(kGzipHeaderSize + 2 + kExtraSize);
  if (body != std::string_view(reinterpret_cast<const char*>(kEmptyBody.data()), kEmptyBody.size())) {
    return Corrupt("eStargz footer: the member is not empty");
  }
  return offset;
}

std::string MakeEstargzFooter(uint64_t toc_offset) {
  std::string out;
  out.reserve(kEstargzFooterSize);
  // ID1 ID2 CM=deflate FLG=FEXTRA MTIME=0 XFL=0 OS=255 (unknown), as Go's gzip writer at NoCompression.
  const uint8_t header[] = {0x1f, 0x8b, 8, kFlagExtra, 0, 0, 0, 0, 0, 0xff,
                            static_cast<uint8_t>(kExtraSize), 0, 'S', 'G', static_cast<uint8_t>(kSubfieldSize), 0};
  out.append(reinterpret_cast<const char*>(header), sizeof header);
  out += fmt::format("{:016x}", toc_offset);
  out += kMagic;
  out.append(reinterpret_cast<const char*>(kEmptyBody.data()), kEmptyBody.size());
  return out;
}

}  // namespace lazyfs::fs
