// MemberWriter implementation (see estargz_gzip_writer.h): zlib deflate with the gzip wrapper, one stream
// reset per member.
//
// Thread safety: one thread at a time.
#include "fs/estargz_gzip_writer.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace lazyfs::fs::estargz_internal {
namespace {

constexpr size_t kOutChunk = 256 << 10;
constexpr size_t kFlushThreshold = 4 << 20;

}  // namespace

MemberWriter::MemberWriter(int fd, int level) : fd_(fd), level_(level) {}

MemberWriter::~MemberWriter() {
  if (initialized_) deflateEnd(&stream_);
}

Status MemberWriter::Init() {
  // windowBits 16 + MAX_WBITS: gzip header and trailer around raw deflate, as RFC 1952 members.
  if (deflateInit2(&stream_, level_, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Internal("deflateInit2 failed");
  }
  initialized_ = true;
  return Ok();
}

Status MemberWriter::Write(std::string_view bytes) {
  if (!open_) {
    if (used_ && deflateReset(&stream_) != Z_OK) return Internal("deflateReset failed");
    open_ = true;
    used_ = true;
  }
  while (!bytes.empty()) {
    // avail_in is 32 bits: feed large writes in pieces.
    size_t piece = std::min<size_t>(bytes.size(), 1u << 30);
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    stream_.avail_in = static_cast<uInt>(piece);
    LAZYFS_TRY(Deflate(Z_NO_FLUSH));
    bytes.remove_prefix(piece);
  }
  return Ok();
}

Status MemberWriter::CloseMember() {
  if (!open_) return Ok();
  stream_.next_in = nullptr;
  stream_.avail_in = 0;
  LAZYFS_TRY(Deflate(Z_FINISH));
  open_ = false;
  return Ok();
}

Status MemberWriter::Deflate(int flush) {
  char out[kOutChunk];
  for (;;) {
    stream_.next_out = reinterpret_cast<Bytef*>(out);
    stream_.avail_out = sizeof out;
    int r = deflate(&stream_, flush);
    if (r == Z_STREAM_ERROR) return Internal("deflate failed");
    LAZYFS_TRY(Produce({out, sizeof out - stream_.avail_out}));
    if (flush == Z_FINISH) {
      if (r == Z_STREAM_END) return Ok();
    } else if (stream_.avail_in == 0 && stream_.avail_out != 0) {
      return Ok();
    }
  }
}

Status MemberWriter::WriteRaw(std::string_view bytes) {
  if (open_) return Internal("raw bytes written inside a gzip member");
  return Produce(bytes);
}

Status MemberWriter::Produce(std::string_view compressed) {
  hasher_.Update(compressed);
  offset_ += compressed.size();
  pending_.append(compressed);
  if (pending_.size() >= kFlushThreshold) return Flush();
  return Ok();
}

Status MemberWriter::Flush() {
  std::string_view rest = pending_;
  while (!rest.empty()) {
    ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(errno, "write eStargz blob");
    rest.remove_prefix(static_cast<size_t>(n));
  }
  pending_.clear();
  return Ok();
}

}  // namespace lazyfs::fs::estargz_internal
