// Reading one member of a remote zip (a wheel) through ranged reads, the way pip's lazy wheel reads
// METADATA without downloading the wheel: one read of the file's tail (the end record and, in most
// wheels, the whole central directory), at most one more for the part of the central directory the
// tail missed, and one for the member's local header and data, skipped when the bytes are already held.
//
// Zip64 archives are read (big wheels need them); spanned archives, encryption and compression methods
// other than stored and deflate are refused. Every size the archive declares is checked against the
// file and against ZipLimits before anything is allocated or read, so a hostile archive costs at most
// the limits and ends in an error that names the offset where it went wrong.
//
// Thread safety: reentrant. Each call owns its buffers; the RangeReader is called only from the calling
// thread, one read at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace lazyfs::pkg {

// Returns bytes [offset, offset + length) of the zip, exactly `length` of them; the index client
// implements it with an HTTP Range request. Its errors pass through unchanged (retryable stays
// retryable), prefixed with the range. Fewer or more bytes than asked is kCorrupt.
using RangeReader = std::function<Result<std::string>(uint64_t offset, uint64_t length)>;

struct ZipLimits {
  // The largest member, both as stored in the zip (compressed) and inflated. METADATA is a few KiB.
  uint64_t max_member_bytes = uint64_t{16} << 20;
  uint64_t max_central_directory_bytes = uint64_t{64} << 20;
  // How many bytes the first read takes from the end of the file. The end record needs 22; 64 KiB
  // holds the central directory of a wheel with several hundred files, and all of a small wheel.
  uint64_t tail_guess = uint64_t{64} << 10;
};

struct ZipMemberRead {
  std::string name;  // the member's name as the central directory spells it
  std::string data;  // uncompressed, CRC-32 and size checked
  int range_reads = 0;     // calls to the RangeReader
  uint64_t bytes_read = 0; // bytes they returned, in total
};

// Reads the first member, in central directory order, whose name `want` accepts; the entries after
// it are not looked at. Names are the raw bytes the archive holds (UTF-8 in wheels); directories are
// members whose name ends in '/'. `size` is the zip's length in bytes (from the index or a HEAD
// request). Offsets in the archive are taken as file offsets: a zip with bytes prepended (a
// self-extractor) is refused, one with bytes appended after its end record is read, as Python's
// zipfile reads it.
//
// Errors, each naming the offset in the zip where it went wrong (but for a file under 22 bytes):
//   the RangeReader's own errors, with "zip range read at offset N (L bytes)" in front;
//   kCorrupt: no end record; end records whose fields contradict the file (a zip64 locator or record
//     out of place, a central directory outside the file or overlapping the end record, more entries
//     than its bytes can hold); a directory that ends before its declared entries or holds bytes after
//     them; an entry, its name or extra field running past the directory; 0xffffffff fields without a
//     zip64 extra field to replace them; a local header missing, naming another file, or running into
//     the directory; member data past the directory or the file; a stored member whose two sizes
//     differ; a deflate stream that is invalid, truncated, or inflates to a size other than the
//     declared one; a CRC-32 mismatch; a short or long read from the RangeReader;
//   kUnsupported: a spanned (multi-disk) archive; an encrypted member; a compression method other
//     than stored (0) and deflate (8), named; a central directory or a member (compressed or not)
//     over `limits`, refused before it is read or inflated;
//   kNotFound: no member matches.
Result<ZipMemberRead> ReadZipMember(const RangeReader& read, uint64_t size,
                                    const std::function<bool(std::string_view)>& want,
                                    const ZipLimits& limits = {});

// Reads a wheel's core metadata: the member named `metadata_name` ("tiny-1.0.dist-info/METADATA",
// as the wheel's file name predicts it) or, when the archive has no member by that name, the single
// top-level "<anything>.dist-info/METADATA". Returns what ReadZipMember returns; `name` says which
// member was read. kCorrupt when there is no exact match and several candidates (they are named),
// kNotFound when there are none.
Result<ZipMemberRead> ReadWheelMetadata(const RangeReader& read, uint64_t size, std::string_view metadata_name,
                                        const ZipLimits& limits = {});

}  // namespace lazyfs::pkg
