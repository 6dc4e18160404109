// MemberWriter: the compressed side of the eStargz writer. Deflates bytes into gzip members that the
// caller cuts where the format wants a gzip header, writes them to an fd, and hashes what it wrote (the
// blob digest) while counting offsets (a chunk's TOC `offset` is the member start).
//
// Thread safety: one thread at a time.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/digest.h"
#include "common/result.h"

namespace lazyfs::fs::estargz_internal {

class MemberWriter {
 public:
  // Writes to `fd` from its current position (not owned). `level` is zlib's 0..9.
  MemberWriter(int fd, int level);
  ~MemberWriter();
  MemberWriter(const MemberWriter&) = delete;
  MemberWriter& operator=(const MemberWriter&) = delete;

  Status Init();
  // Appends uncompressed bytes to the open member, opening one (with a fresh gzip header) if none is.
  Status Write(std::string_view bytes);
  // Finishes the open member (gzip trailer); a no-op when none is open, so members are never empty.
  Status CloseMember();
  // Bytes outside any member (the footer). No member may be open.
  Status WriteRaw(std::string_view bytes);
  // Writes out what is buffered.
  Status Flush();
  // Compressed bytes produced so far, buffered or not: the offset the next member will start at.
  uint64_t offset() const { return offset_; }
  // The sha256 of everything produced; call once, after the last Flush.
  Sha256Digest FinishDigest() { return hasher_.Finish(); }

 private:
  Status Deflate(int flush);
  Status Produce(std::string_view compressed);

  int fd_;
  int level_;
  z_stream stream_{};
  bool initialized_ = false;
  bool open_ = false;
  bool used_ = false;  // the stream has made a member already: the next one needs deflateReset
  std::string pending_;  // compressed bytes not yet written to fd_
  uint64_t offset_ = 0;
  Sha256Hasher hasher_;
};

}  // namespace lazyfs::fs::estargz_internal
