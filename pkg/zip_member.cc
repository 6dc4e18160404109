// Reading one zip member through ranged reads (see zip_member.h).
//
// Layout read here (APPNOTE 6.3.10): local header + data for each member, then the central directory
// (one entry per member), then, for zip64, the zip64 end record and its locator, then the end record
// (EOCD) and its comment. Everything is found from the end: the EOCD gives the directory, the directory
// gives each member's sizes, CRC and local header offset. The central entry is trusted for sizes and
// CRC (a data descriptor leaves them zero in the local header); the local header is read only for the
// lengths of its name and extra field, which may differ from the central ones (Info-ZIP's timestamps).
//
// Every offset and length from the archive is checked against the file and the directory before it
// is used, in 64-bit arithmetic written so that it cannot overflow; loops are bounded by the bytes held
// (the entry count is checked against the directory's size first); inflate output is capped at the
// declared size plus one byte, which is how an over-long stream is detected.
//
// Thread safety: reentrant; all state lives in one call.
#include "pkg/zip_member.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lazyfs::pkg {
namespace {

constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kCentralSignature = 0x02014b50;
constexpr uint32_t kLocalSignature = 0x04034b50;

constexpr uint64_t kEndRecordBytes = 22;
constexpr uint64_t kMaxCommentBytes = 65535;
constexpr uint64_t kZip64LocatorBytes = 20;
constexpr uint64_t kZip64EndRecordBytes = 56;  // without its extensible data
constexpr uint64_t kCentralEntryBytes = 46;    // without name, extra field and comment
constexpr uint64_t kLocalHeaderBytes = 30;     // without name and extra field

// Read past the member's data in the same request, so a local extra field somewhat longer than the
// central one (Info-ZIP writes 28 bytes locally where the directory has 24) costs no second read.
constexpr uint64_t kLocalReadSlack = 1024;

constexpr uint16_t kFlagEncrypted = 0x0001;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kMethodStored = 0;
constexpr uint16_t kMethodDeflate = 8;

// How much of a member name an error message quotes.
constexpr size_t kQuotedNameBytes = 120;

uint16_t Le16(std::string_view b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) | static_cast<uint8_t>(b[at + 1]) << 8);
}
uint32_t Le32(std::string_view b, size_t at) { return Le16(b, at) | static_cast<uint32_t>(Le16(b, at + 2)) << 16; }
uint64_t Le64(std::string_view b, size_t at) { return Le32(b, at) | static_cast<uint64_t>(Le32(b, at + 4)) << 32; }

// A member name for an error message. Names come from the archive, so they may be long or hold
// control bytes; UTF-8 passes through.
std::string Quote(std::string_view name) {
  std::string out = "'";
  for (size_t i = 0; i < name.size() && i < kQuotedNameBytes; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      if (c == '\'' || c == '\\') out += '\\';
      out += static_cast<char>(c);
    }
  }
  if (name.size() > kQuotedNameBytes) out += "...";
  return out + "'";
}

const char* MethodName(uint16_t method) {
  switch (method) {
    case 1: return "shrink";
    case 6: return "implode";
    case 9: return "deflate64";
    case 12: return "bzip2";
    case 14: return "lzma";
    case 93: return "zstandard";
    case 95: return "xz";
    case 98: return "ppmd";
    case 99: return "WinZip AES";
    default: return "unknown";
  }
}

// The bytes of the zip read so far, as a few spans, and the RangeReader that fills the gaps. Owns the
// spans; the views Get returns stay valid until the next Get.
class ZipBytes {
 public:
  ZipBytes(const RangeReader& read, uint64_t size) : read_(read), size_(size) {}

  uint64_t size() const { return size_; }
  int range_reads() const { return range_reads_; }
  uint64_t bytes_read() const { return bytes_read_; }

  // Bytes [offset, offset + length), which the caller has checked lie inside the file. Reads only what
  // no span holds: a range that ends inside a span reads its missing head and grows that span (the
  // central directory in front of the tail), one that starts inside a span reads its missing end.
  Result<std::string_view> Get(uint64_t offset, uint64_t length) {
    if (offset > size_ || length > size_ - offset) {
      return Internal(fmt::format("zip range [{}, +{}) is outside the file (size {})", offset, length, size_));
    }
    if (length == 0) return std::string_view();
    const uint64_t end = offset + length;
    for (Span& span : spans_) {
      if (span.start <= offset && end <= span.end()) return span.View(offset, length);
    }
    for (Span& span : spans_) {
      if (offset < span.start && span.start <= end && end <= span.end()) {
        std::string head = LAZYFS_TRY(Fetch(offset, span.start - offset));
        span.bytes.insert(0, head);
        span.start = offset;
        return span.View(offset, length);
      }
    }
    for (Span& span : spans_) {
      if (span.start <= offset && offset <= span.end() && span.end() < end) {
        std::string rest = LAZYFS_TRY(Fetch(span.end(), end - span.end()));
        span.bytes += rest;
        return span.View(offset, length);
      }
    }
    std::string bytes = LAZYFS_TRY(Fetch(offset, length));
    spans_.push_back(Span{offset, std::move(bytes)});
    return spans_.back().View(offset, length);
  }

 private:
  struct Span {
    uint64_t start;
    std::string bytes;
    uint64_t end() const { return start + bytes.size(); }
    std::string_view View(uint64_t offset, uint64_t length) const {
      return std::string_view(bytes).substr(offset - start, length);
    }
  };

  Result<std::string> Fetch(uint64_t offset, uint64_t length) {
    ++range_reads_;
    Result<std::string> got = read_(offset, length);
    if (!got) {
      return std::move(got).error().Context(fmt::format("zip range read at offset {} ({} bytes)", offset, length));
    }
    if (got->size() != length) {
      return Corrupt(fmt::format("zip range read at offset {} returned {} bytes, asked for {}", offset, got->size(),
                                 length));
    }
    bytes_read_ += length;
    return got;
  }

  const RangeReader& read_;
  const uint64_t size_;
  std::vector<Span> spans_;
  int range_reads_ = 0;
  uint64_t bytes_read_ = 0;
};

struct CentralDirectory {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t entries = 0;
  uint64_t end_record_offset = 0;  // the zip64 end record, or the EOCD: the directory ends by here
};

struct CentralEntry {
  uint64_t at = 0;         // offset of the entry in the zip
  std::string_view name;   // into the directory's bytes
  uint16_t flags = 0;
  uint16_t method = 0;
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
  uint16_t extra_length = 0;  // the central extra field's, a guess at the local one's
};

// An entry picked from the directory, with its name copied: the directory's bytes may move on the next
// read.
struct ChosenEntry {
  CentralEntry entry;
  std::string name;
};

// Finds the EOCD: the last signature whose comment length reaches exactly to the end of the file, so
// that a comment holding a signature (a zip stored in the comment) does not fool it. Looks in the tail
// first and, when the tail is shorter than the longest possible comment allows, reads the rest of that
// window. When no record ends exactly at the end, takes the last one, as Python's zipfile (and so pip)
// does, which accepts bytes appended to a zip.
Result<uint64_t> FindEndRecord(ZipBytes& bytes, const ZipLimits& limits) {
  const uint64_t size = bytes.size();
  const uint64_t window = std::min(size, kEndRecordBytes + kMaxCommentBytes);
  uint64_t held = std::min(size, std::max(limits.tail_guess, kEndRecordBytes));
  constexpr uint64_t kNone = ~uint64_t{0};
  uint64_t last = kNone;  // the last signature, wherever its comment ends
  for (;;) {
    std::string_view tail = LAZYFS_TRY(bytes.Get(size - held, held));
    last = kNone;
    for (uint64_t back = kEndRecordBytes; back <= std::min(held, window); ++back) {
      const size_t at = held - back;
      if (Le32(tail, at) != kEndSignature) continue;
      if (Le16(tail, at + 20) == back - kEndRecordBytes) return size - back;
      if (last == kNone) last = size - back;
    }
    if (held >= window) break;
    held = window;
  }
  if (last != kNone) return last;
  return Corrupt(fmt::format("zip of {} bytes has no end of central directory record in its last {} bytes (from "
                             "offset {})", size, window, size - window));
}

// Reads the end records and checks the directory they describe against the file and `limits`.
Result<CentralDirectory> FindCentralDirectory(ZipBytes& bytes, const ZipLimits& limits) {
  const uint64_t size = bytes.size();
  const uint64_t end_at = LAZYFS_TRY(FindEndRecord(bytes, limits));
  std::string_view end = LAZYFS_TRY(bytes.Get(end_at, kEndRecordBytes));
  uint64_t disk = Le16(end, 4);
  uint64_t directory_disk = Le16(end, 6);
  uint64_t entries_on_disk = Le16(end, 8);
  CentralDirectory dir;
  dir.entries = Le16(end, 10);
  dir.size = Le32(end, 12);
  dir.offset = Le32(end, 16);
  dir.end_record_offset = end_at;

  // A directory larger than the tail: read the part the tail missed now, with the place of a zip64
  // locator, so that it costs one read, not two. Only when the EOCD's own fields put the directory
  // right before it (leaving room for zip64 records) and within the limit; zip64 archives whose fields
  // are escaped find their directory below.
  if (dir.offset <= end_at && dir.size <= end_at - dir.offset &&
      end_at - dir.offset - dir.size <= kZip64LocatorBytes + kZip64EndRecordBytes &&
      dir.size <= limits.max_central_directory_bytes) {
    const uint64_t start = std::min(dir.offset, end_at - std::min(end_at, kZip64LocatorBytes));
    LAZYFS_TRY(bytes.Get(start, end_at - start));
  }

  // Zip64: a locator right before the EOCD points to the zip64 end record, whose 64-bit fields replace
  // the EOCD's (which then hold 0xffff and 0xffffffff).
  if (end_at >= kZip64LocatorBytes) {
    const uint64_t locator_at = end_at - kZip64LocatorBytes;
    std::string_view locator = LAZYFS_TRY(bytes.Get(locator_at, kZip64LocatorBytes));
    if (Le32(locator, 0) == kZip64LocatorSignature) {
      const uint32_t record_disk = Le32(locator, 4);
      const uint64_t record_at = Le64(locator, 8);
      const uint32_t disks = Le32(locator, 16);
      if (record_disk != 0 || disks > 1) {
        return Unsupported(fmt::format("zip64 end record locator at offset {} describes a spanned archive "
                                       "(record on disk {} of {})", locator_at, record_disk, disks));
      }
      if (record_at > locator_at || locator_at - record_at < kZip64EndRecordBytes) {
        return Corrupt(fmt::format("zip64 end record locator at offset {} points to offset {}, which leaves no "
                                   "room for the {}-byte record before the locator", locator_at, record_at,
                                   kZip64EndRecordBytes));
      }
      std::string_view record = LAZYFS_TRY(bytes.Get(record_at, kZip64EndRecordBytes));
      if (Le32(record, 0) != kZip64EndSignature) {
        return Corrupt(fmt::format("no zip64 end of central directory record at offset {}, where the locator at "
                                   "offset {} points", record_at, locator_at));
      }
      const uint64_t record_size = Le64(record, 4);  // what follows the size field
      if (record_size < kZip64EndRecordBytes - 12 || record_size > locator_at - record_at - 12) {
        return Corrupt(fmt::format("zip64 end record at offset {} declares a size of {} bytes, but the locator "
                                   "follows at offset {}", record_at, record_size, locator_at));
      }
      disk = Le32(record, 16);
      directory_disk = Le32(record, 20);
      entries_on_disk = Le64(record, 24);
      dir.entries = Le64(record, 32);
      dir.size = Le64(record, 40);
      dir.offset = Le64(record, 48);
      dir.end_record_offset = record_at;
    }
  }

  if (disk != 0 || directory_disk != 0 || entries_on_disk != dir.entries) {
    return Unsupported(fmt::format("zip end record at offset {} describes a spanned archive (disk {}, directory "
                                   "on disk {}, {} of {} entries on this disk)", dir.end_record_offset, disk,
                                   directory_disk, entries_on_disk, dir.entries));
  }
  if (dir.offset > size || dir.size > size - dir.offset) {
    return Corrupt(fmt::format("zip central directory at offset {} ({} bytes) runs past the end of the file "
                               "(size {})", dir.offset, dir.size, size));
  }
  if (dir.offset + dir.size > dir.end_record_offset) {
    return Corrupt(fmt::format("zip central directory at offset {} ({} bytes) overlaps the end record at "
                               "offset {}", dir.offset, dir.size, dir.end_record_offset));
  }
  if (dir.size > limits.max_central_directory_bytes) {
    return Unsupported(fmt::format("zip central directory at offset {} is {} bytes, over the limit of {}",
                                   dir.offset, dir.size, limits.max_central_directory_bytes));
  }
  if (dir.entries > dir.size / kCentralEntryBytes) {
    return Corrupt(fmt::format("zip end record at offset {} declares {} entries, but the {}-byte central "
                               "directory at offset {} can hold at most {}", dir.end_record_offset, dir.entries,
                               dir.size, dir.offset, dir.size / kCentralEntryBytes));
  }
  return dir;
}

// Replaces the 32-bit sizes and offset that read 0xffffffff with the 64-bit ones from the zip64 extra
// field, which holds exactly those, in this order: uncompressed size, compressed size, local header
// offset, then the disk number (when the 16-bit one reads 0xffff). Other extra fields are skipped, and
// a malformed one ends the scan: only a zip64 field that is needed and missing is an error.
Status ApplyZip64Extra(std::string_view extra, bool disk_escaped, CentralEntry& entry) {
  const bool need_uncompressed = entry.uncompressed_size == 0xffffffff;
  const bool need_compressed = entry.compressed_size == 0xffffffff;
  const bool need_offset = entry.local_header_offset == 0xffffffff;
  if (!need_uncompressed && !need_compressed && !need_offset && !disk_escaped) return Ok();
  const size_t needed_bytes = 8 * (need_uncompressed + need_compressed + need_offset) + 4 * disk_escaped;
  size_t pos = 0;
  while (extra.size() - pos >= 4) {
    const uint16_t id = Le16(extra, pos);
    const uint16_t length = Le16(extra, pos + 2);
    if (length > extra.size() - pos - 4) break;
    if (id == kZip64ExtraId) {
      if (length < needed_bytes) {
        return Corrupt(fmt::format("zip central directory entry at offset {}: its zip64 extra field holds {} "
                                   "bytes, its entry needs {}", entry.at, length, needed_bytes));
      }
      size_t at = pos + 4;
      auto take = [&](uint64_t& field) {
        field = Le64(extra, at);
        at += 8;
      };
      if (need_uncompressed) take(entry.uncompressed_size);
      if (need_compressed) take(entry.compressed_size);
      if (need_offset) take(entry.local_header_offset);
      return Ok();
    }
    pos += 4 + length;
  }
  return Corrupt(fmt::format("zip central directory entry at offset {} has 32-bit fields set to 0xffffffff "
                             "but no zip64 extra field", entry.at));
}

// Calls `visit` on each entry in directory order until it returns false. `cd` is the directory's bytes.
Status WalkCentralDirectory(std::string_view cd, const CentralDirectory& dir,
                            const std::function<bool(const CentralEntry&)>& visit) {
  size_t pos = 0;
  for (uint64_t i = 0; i < dir.entries; ++i) {
    const uint64_t at = dir.offset + pos;
    if (cd.size() - pos < kCentralEntryBytes) {
      return Corrupt(fmt::format("zip central directory at offset {} ends at offset {} after {} of its {} "
                                 "declared entries", dir.offset, at, i, dir.entries));
    }
    if (Le32(cd, pos) != kCentralSignature) {
      return Corrupt(fmt::format("zip central directory entry {} at offset {} does not start with the entry "
                                 "signature", i, at));
    }
    const uint16_t name_length = Le16(cd, pos + 28);
    const uint16_t extra_length = Le16(cd, pos + 30);
    const uint16_t comment_length = Le16(cd, pos + 32);
    const size_t variable = size_t{name_length} + extra_length + comment_length;
    if (variable > cd.size() - pos - kCentralEntryBytes) {
      return Corrupt(fmt::format("zip central directory entry {} at offset {}: its name, extra field and comment "
                                 "({} bytes) run past the end of the directory at offset {}", i, at, variable,
                                 dir.offset + dir.size));
    }
    CentralEntry entry;
    entry.at = at;
    entry.flags = Le16(cd, pos + 8);
    entry.method = Le16(cd, pos + 10);
    entry.crc32 = Le32(cd, pos + 16);
    entry.compressed_size = Le32(cd, pos + 20);
    entry.uncompressed_size = Le32(cd, pos + 24);
    entry.local_header_offset = Le32(cd, pos + 42);
    entry.extra_length = extra_length;
    entry.name = cd.substr(pos + kCentralEntryBytes, name_length);
    const bool disk_escaped = Le16(cd, pos + 34) == 0xffff;
    LAZYFS_TRY(ApplyZip64Extra(cd.substr(pos + kCentralEntryBytes + name_length, extra_length), disk_escaped, entry));
    if (!visit(entry)) return Ok();
    pos += kCentralEntryBytes + variable;
  }
  if (pos != cd.size()) {
    return Corrupt(fmt::format("zip central directory at offset {} holds {} more bytes at offset {}, after its {} "
                               "declared entries", dir.offset, cd.size() - pos, dir.offset + pos, dir.entries));
  }
  return Ok();
}

// zlib's raw inflate stream (no zlib or gzip wrapper: windowBits -15), as zip's deflate stores it.
// Owns the z_stream.
class RawInflater {
 public:
  RawInflater() { ok_ = inflateInit2(&stream_, -MAX_WBITS) == Z_OK; }
  ~RawInflater() {
    if (ok_) inflateEnd(&stream_);
  }
  RawInflater(const RawInflater&) = delete;
  RawInflater& operator=(const RawInflater&) = delete;

  bool ok() const { return ok_; }
  z_stream* stream() { return &stream_; }

 private:
  z_stream stream_{};
  bool ok_ = false;
};

// Inflates `in` to exactly `declared` bytes. The output grows in steps instead of being sized from
// the declaration, and stops one byte past it: that byte is how a stream longer than declared shows.
Result<std::string> InflateRaw(std::string_view in, uint64_t declared, const std::string& where) {
  RawInflater inflater;
  if (!inflater.ok()) return Internal(where + ": inflateInit2 failed");
  z_stream* z = inflater.stream();
  constexpr size_t kStep = size_t{256} << 10;
  constexpr size_t kMaxFeed = size_t{1} << 30;  // avail_in is 32 bits
  const uint64_t cap = declared + 1;
  std::string out;
  size_t fed = 0;
  for (;;) {
    if (z->avail_in == 0 && fed < in.size()) {
      const size_t take = std::min(in.size() - fed, kMaxFeed);
      z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + fed));
      z->avail_in = static_cast<uInt>(take);
      fed += take;
    }
    if (z->avail_out == 0) {
      const size_t produced = out.size();
      if (produced >= cap) {
        return Corrupt(fmt::format("{}: deflate data inflates to more than the declared {} bytes", where, declared));
      }
      out.resize(std::min<uint64_t>(cap, produced + kStep));
      z->next_out = reinterpret_cast<Bytef*>(out.data() + produced);
      z->avail_out = static_cast<uInt>(out.size() - produced);
    }
    const int r = inflate(z, Z_NO_FLUSH);
    const size_t produced = out.size() - z->avail_out;
    if (r == Z_STREAM_END) {
      if (produced > declared) {
        return Corrupt(fmt::format("{}: deflate data inflates to more than the declared {} bytes", where, declared));
      }
      if (produced < declared) {
        return Corrupt(fmt::format("{}: deflate data inflates to {} bytes, the central directory says {}", where,
                                   produced, declared));
      }
      out.resize(produced);
      return out;
    }
    if (r == Z_BUF_ERROR) {  // output space was there, so the input ran out
      return Corrupt(fmt::format("{}: deflate data ends after {} compressed bytes, {} of {} bytes inflated", where,
                                 in.size(), produced, declared));
    }
    if (r != Z_OK) {
      return Corrupt(fmt::format("{}: deflate data is invalid near compressed byte {}: {}", where, fed - z->avail_in,
                                 z->msg != nullptr ? z->msg : "zlib error"));
    }
  }
}

uint32_t Crc32(std::string_view data) {
  return static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(data.data()), data.size()));
}

// Reads and decodes the chosen member: the local header and the data in one read, sized from the
// central entry plus some slack; a second read only for what that missed.
Result<std::string> ReadMemberData(ZipBytes& bytes, const CentralDirectory& dir, const ChosenEntry& chosen,
                                   const ZipLimits& limits) {
  const CentralEntry& entry = chosen.entry;
  const std::string& name = chosen.name;
  const std::string where = fmt::format("zip member {} (central directory entry at offset {})", Quote(name), entry.at);
  if (entry.flags & kFlagEncrypted) return Unsupported(where + " is encrypted");
  if (entry.method != kMethodStored && entry.method != kMethodDeflate) {
    return Unsupported(fmt::format("{} uses compression method {} ({}); only stored (0) and deflate (8) are read",
                                   where, entry.method, MethodName(entry.method)));
  }
  if (entry.uncompressed_size > limits.max_member_bytes || entry.compressed_size > limits.max_member_bytes) {
    return Unsupported(fmt::format("{} is {} bytes ({} compressed), over the limit of {}", where,
                                   entry.uncompressed_size, entry.compressed_size, limits.max_member_bytes));
  }
  if (entry.method == kMethodStored && entry.compressed_size != entry.uncompressed_size) {
    return Corrupt(fmt::format("{} is stored but declares {} bytes compressed and {} uncompressed", where,
                               entry.compressed_size, entry.uncompressed_size));
  }
  const uint64_t local = entry.local_header_offset;
  if (local > dir.offset || dir.offset - local < kLocalHeaderBytes) {
    return Corrupt(fmt::format("{}: its local header offset {} is not before the central directory at offset {}",
                               where, local, dir.offset));
  }

  // All of these are bounded (names and extra fields by 65535, the data by the limit), so the sum fits.
  const uint64_t guess = kLocalHeaderBytes + name.size() + entry.extra_length + entry.compressed_size + kLocalReadSlack;
  std::string_view head = LAZYFS_TRY(bytes.Get(local, std::min(guess, bytes.size() - local)));
  if (Le32(head, 0) != kLocalSignature) {
    return Corrupt(fmt::format("{}: no local header signature at offset {}", where, local));
  }
  if (Le16(head, 6) & kFlagEncrypted) {
    return Unsupported(fmt::format("{}: the local header at offset {} says it is encrypted", where, local));
  }
  const uint16_t local_name_length = Le16(head, 26);
  const uint16_t local_extra_length = Le16(head, 28);
  const uint64_t data_at = local + kLocalHeaderBytes + local_name_length + local_extra_length;
  if (data_at > dir.offset) {
    return Corrupt(fmt::format("{}: its local header at offset {} ({} bytes with name and extra field) runs into "
                               "the central directory at offset {}", where, local, data_at - local, dir.offset));
  }
  if (local_name_length != name.size() || head.substr(kLocalHeaderBytes, local_name_length) != name) {
    // `head` holds the whole local name: the guess covers the central name's length, and the file
    // holds data_at - local bytes from `local`.
    return Corrupt(fmt::format("{}: the local header at offset {} names {}", where, local,
                               Quote(head.substr(kLocalHeaderBytes, local_name_length))));
  }
  if (entry.compressed_size > dir.offset - data_at) {
    return Corrupt(fmt::format("{}: its {} bytes of data at offset {} run past {}", where, entry.compressed_size,
                               data_at,
                               entry.compressed_size > bytes.size() - data_at
                                   ? fmt::format("the end of the file (size {})", bytes.size())
                                   : fmt::format("the start of the central directory at offset {}", dir.offset)));
  }
  std::string_view stored = LAZYFS_TRY(bytes.Get(data_at, entry.compressed_size));

  std::string data;
  if (entry.method == kMethodStored) {
    data.assign(stored);
  } else {
    data = LAZYFS_TRY(InflateRaw(stored, entry.uncompressed_size, where));
  }
  const uint32_t crc = Crc32(data);
  if (crc != entry.crc32) {
    return Corrupt(fmt::format("{}: the CRC-32 of its {} bytes is {:08x}, the central directory says {:08x}", where,
                               data.size(), crc, entry.crc32));
  }
  return data;
}

using ChooseEntry = std::function<Result<ChosenEntry>(std::string_view cd, const CentralDirectory& dir)>;

// Finds the central directory, lets `choose` pick an entry from its bytes, and reads that member.
Result<ZipMemberRead> ReadChosenMember(const RangeReader& read, uint64_t size, const ZipLimits& limits,
                                       const ChooseEntry& choose) {
  if (size < kEndRecordBytes) {
    return Corrupt(fmt::format("zip of {} bytes is shorter than the {}-byte end of central directory record", size,
                               kEndRecordBytes));
  }
  ZipBytes bytes(read, size);
  const CentralDirectory dir = LAZYFS_TRY(FindCentralDirectory(bytes, limits));
  std::string_view cd = LAZYFS_TRY(bytes.Get(dir.offset, dir.size));
  ChosenEntry chosen = LAZYFS_TRY(choose(cd, dir));
  std::string data = LAZYFS_TRY(ReadMemberData(bytes, dir, chosen, limits));
  return ZipMemberRead{std::move(chosen.name), std::move(data), bytes.range_reads(), bytes.bytes_read()};
}

ChosenEntry Choose(const CentralEntry& entry) { return ChosenEntry{entry, std::string(entry.name)}; }

// "<dir>.dist-info/METADATA" with <dir> a non-empty top-level directory name.
bool IsTopLevelMetadata(std::string_view name) {
  constexpr std::string_view kSuffix = ".dist-info/METADATA";
  if (!name.ends_with(kSuffix) || name.size() == kSuffix.size()) return false;
  return name.substr(0, name.size() - kSuffix.size()).find('/') == std::string_view::npos;
}

}  // namespace

Result<ZipMemberRead> ReadZipMember(const RangeReader& read, uint64_t size,
                                    const std::function<bool(std::string_view)>& want, const ZipLimits& limits) {
  return ReadChosenMember(read, size, limits, [&](std::string_view cd, const CentralDirectory& dir) -> Result<ChosenEntry> {
    std::optional<ChosenEntry> chosen;
    LAZYFS_TRY(WalkCentralDirectory(cd, dir, [&](const CentralEntry& entry) {
      if (!want(entry.name)) return true;
      chosen = Choose(entry);
      return false;
    }));
    if (!chosen) {
      return NotFound(fmt::format("none of the {} members of the zip (central directory at offset {}) is the one "
                                  "asked for", dir.entries, dir.offset));
    }
    return *std::move(chosen);
  });
}

Result<ZipMemberRead> ReadWheelMetadata(const RangeReader& read, uint64_t size, std::string_view metadata_name,
                                        const ZipLimits& limits) {
  return ReadChosenMember(read, size, limits, [&](std::string_view cd, const CentralDirectory& dir) -> Result<ChosenEntry> {
    std::optional<ChosenEntry> exact;
    std::optional<ChosenEntry> candidate;  // the first top-level .dist-info/METADATA
    uint64_t candidates = 0;
    std::string other_names;               // a few more candidates, for the error
    LAZYFS_TRY(WalkCentralDirectory(cd, dir, [&](const CentralEntry& entry) {
      if (entry.name == metadata_name) {
        exact = Choose(entry);
        return false;
      }
      if (IsTopLevelMetadata(entry.name)) {
        if (++candidates == 1) {
          candidate = Choose(entry);
        } else if (candidates <= 3) {
          other_names += ", " + Quote(entry.name);
        }
      }
      return true;
    }));
    if (exact) return *std::move(exact);
    if (candidates == 1) return *std::move(candidate);
    if (candidates == 0) {
      return NotFound(fmt::format("wheel has no {} and no other .dist-info/METADATA among the {} members of its "
                                  "central directory at offset {}", Quote(metadata_name), dir.entries, dir.offset));
    }
    return Corrupt(fmt::format("wheel has no {} but {} top-level .dist-info/METADATA members ({}{}{}) in its central "
                               "directory at offset {}", Quote(metadata_name), candidates, Quote(candidate->name),
                               other_names, candidates > 3 ? ", ..." : "", dir.offset));
  });
}

}  // namespace lazyfs::pkg
