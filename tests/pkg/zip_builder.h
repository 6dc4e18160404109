// A zip writer for tests: stored and deflate members, local and central extra fields set apart, data
// descriptors, zip64 end records and extra fields, an archive comment, and the offsets of every record,
// so a test can corrupt one field and know where. It writes what APPNOTE 6.3.10 describes and only
// what the zip tests use; it validates nothing, and sizes past 4 GiB need `zip64`.
//
// Thread safety: pure functions on values.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lazyfs::testing {

inline constexpr uint16_t kZipStored = 0;
inline constexpr uint16_t kZipDeflate = 8;

// Raw deflate (no zlib wrapper), as zip stores it.
inline std::string Deflate(std::string_view data) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int r = deflate(&z, Z_FINISH);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  if (r != Z_STREAM_END) throw std::runtime_error("deflate did not finish");
  return out;
}

inline uint32_t Crc32(std::string_view data) { return crc32_z(0, reinterpret_cast<const Bytef*>(data.data()), data.size()); }

// Little-endian integers: appended, overwritten in place, read back.
inline void PutLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void SetLe(std::string& zip, uint64_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) zip[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline uint64_t GetLe(const std::string& zip, uint64_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(zip[at + i])} << (8 * i);
  return v;
}

struct ZipMemberSpec {
  ZipMemberSpec(std::string name_in, std::string data_in, uint16_t method_in = kZipDeflate)
      : name(std::move(name_in)), data(std::move(data_in)), method(method_in) {}

  std::string name;
  std::string data;
  uint16_t method;
  std::string local_extra;  // raw extra field bytes, as Info-ZIP's differ between the two headers
  std::string central_extra;
  bool data_descriptor = false;  // CRC and sizes after the data, zero in the local header (streamed)
  uint32_t unix_mode = 0100644;  // st_mode in the external attributes (S_IFLNK for a symlink member)
};

struct ZipOptions {
  std::string comment;
  bool zip64 = false;
  int zip64_escape = 7;  // which central fields read 0xffffffff: 1 uncompressed, 2 compressed, 4 offset
};

struct BuiltZip {
  std::string bytes;
  std::vector<uint64_t> local;    // local header offsets, member order
  std::vector<uint64_t> central;  // central entry offsets, member order
  uint64_t cd_offset = 0;
  uint64_t end_offset = 0;        // the EOCD
  uint64_t zip64_end_offset = 0;  // with options.zip64
  uint64_t zip64_locator_offset = 0;
};

inline ZipOptions Zip64(int escape = 7) {
  ZipOptions options;
  options.zip64 = true;
  options.zip64_escape = escape;
  return options;
}

// The zip of `members` in order: local headers and data, central directory, zip64 records when asked,
// end record and comment. Version fields, times and attributes are fixed.
inline BuiltZip BuildZip(const std::vector<ZipMemberSpec>& members, const ZipOptions& options = {}) {
  BuiltZip z;
  std::string& out = z.bytes;
  std::vector<std::string> stored;
  for (const ZipMemberSpec& m : members) {
    stored.push_back(m.method == kZipDeflate ? Deflate(m.data) : m.data);
    z.local.push_back(out.size());
    PutLe(out, 0x04034b50, 4);
    PutLe(out, 20, 2);  // version needed
    PutLe(out, m.data_descriptor ? 8 : 0, 2);  // flags
    PutLe(out, m.method, 2);
    PutLe(out, 0, 2);     // time
    PutLe(out, 0x21, 2);  // date: 1980-01-01
    PutLe(out, m.data_descriptor ? 0 : Crc32(m.data), 4);
    PutLe(out, m.data_descriptor ? 0 : stored.back().size(), 4);
    PutLe(out, m.data_descriptor ? 0 : m.data.size(), 4);
    PutLe(out, m.name.size(), 2);
    PutLe(out, m.local_extra.size(), 2);
    out += m.name + m.local_extra + stored.back();
    if (m.data_descriptor) {
      PutLe(out, 0x08074b50, 4);
      PutLe(out, Crc32(m.data), 4);
      PutLe(out, stored.back().size(), 4);
      PutLe(out, m.data.size(), 4);
    }
  }
  z.cd_offset = out.size();
  for (size_t i = 0; i < members.size(); ++i) {
    const ZipMemberSpec& m = members[i];
    const bool esc_u = options.zip64 && (options.zip64_escape & 1);
    const bool esc_c = options.zip64 && (options.zip64_escape & 2);
    const bool esc_o = options.zip64 && (options.zip64_escape & 4);
    std::string zip64_extra;
    if (esc_u) PutLe(zip64_extra, m.data.size(), 8);
    if (esc_c) PutLe(zip64_extra, stored[i].size(), 8);
    if (esc_o) PutLe(zip64_extra, z.local[i], 8);
    std::string extra;
    if (!zip64_extra.empty()) {
      PutLe(extra, 0x0001, 2);
      PutLe(extra, zip64_extra.size(), 2);
      extra += zip64_extra;
    }
    extra += m.central_extra;
    z.central.push_back(out.size());
    PutLe(out, 0x02014b50, 4);
    PutLe(out, 0x031e, 2);                  // made by: Unix, 3.0
    PutLe(out, options.zip64 ? 45 : 20, 2);  // version needed
    PutLe(out, m.data_descriptor ? 8 : 0, 2);
    PutLe(out, m.method, 2);
    PutLe(out, 0, 2);
    PutLe(out, 0x21, 2);
    PutLe(out, Crc32(m.data), 4);
    PutLe(out, esc_c ? 0xffffffff : stored[i].size(), 4);
    PutLe(out, esc_u ? 0xffffffff : m.data.size(), 4);
    PutLe(out, m.name.size(), 2);
    PutLe(out, extra.size(), 2);
    PutLe(out, 0, 2);  // comment
    PutLe(out, 0, 2);  // disk
    PutLe(out, 0, 2);  // internal attributes
    PutLe(out, uint64_t{m.unix_mode} << 16, 4);
    PutLe(out, esc_o ? 0xffffffff : z.local[i], 4);
    out += m.name + extra;
  }
  const uint64_t cd_size = out.size() - z.cd_offset;
  const uint64_t n = members.size();
  if (options.zip64) {
    z.zip64_end_offset = out.size();
    PutLe(out, 0x06064b50, 4);
    PutLe(out, 44, 8);
    PutLe(out, 45, 2);
    PutLe(out, 45, 2);
    PutLe(out, 0, 4);
    PutLe(out, 0, 4);
    PutLe(out, n, 8);
    PutLe(out, n, 8);
    PutLe(out, cd_size, 8);
    PutLe(out, z.cd_offset, 8);
    z.zip64_locator_offset = out.size();
    PutLe(out, 0x07064b50, 4);
    PutLe(out, 0, 4);
    PutLe(out, z.zip64_end_offset, 8);
    PutLe(out, 1, 4);
  }
  z.end_offset = out.size();
  PutLe(out, 0x06054b50, 4);
  PutLe(out, 0, 2);
  PutLe(out, 0, 2);
  PutLe(out, options.zip64 ? 0xffff : n, 2);
  PutLe(out, options.zip64 ? 0xffff : n, 2);
  PutLe(out, options.zip64 ? 0xffffffff : cd_size, 4);
  PutLe(out, options.zip64 ? 0xffffffff : z.cd_offset, 4);
  PutLe(out, options.comment.size(), 2);
  out += options.comment;
  return z;
}

}  // namespace lazyfs::testing
