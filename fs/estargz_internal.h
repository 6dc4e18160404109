// Internals shared by the eStargz reader, TOC parser and writer (not part of the fs/ API): RAII owners for
// libarchive and zlib handles, and how the format recognises its own files.
//
// Thread safety: each object is owned by one thread at a time; the free functions are reentrant.
#pragma once

#include <archive.h>
#include <zlib.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace lazyfs::fs::estargz_internal {

struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveEntryDeleter {
  void operator()(archive_entry* e) const;
};
using ArchiveReadPtr = std::unique_ptr<archive, ArchiveReadDeleter>;
using ArchiveWritePtr = std::unique_ptr<archive, ArchiveWriteDeleter>;
using ArchiveEntryPtr = std::unique_ptr<archive_entry, ArchiveEntryDeleter>;

// libarchive's last error on `a`, for messages.
std::string ArchiveErrorString(archive* a);

// An inflate stream for gzip members (zlib, 16 + MAX_WBITS: gzip wrapper only). Owns the z_stream.
class GzipInflater {
 public:
  GzipInflater();
  ~GzipInflater();
  GzipInflater(const GzipInflater&) = delete;
  GzipInflater& operator=(const GzipInflater&) = delete;

  bool ok() const { return ok_; }
  z_stream* stream() { return &stream_; }

 private:
  z_stream stream_{};
  bool ok_ = false;
};

// True for the files the format adds (TOC, landmarks), which the mount hides. `clean_name` is as
// fs/entry_name.h's NormalizeEntryName gives it, so "./stargz.index.json" is one too.
bool IsFormatFile(std::string_view clean_name);

}  // namespace lazyfs::fs::estargz_internal
