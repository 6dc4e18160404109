// Internals shared by the eStargz reader, TOC parser and writer (not part of the fs/ API): the libarchive
// handle owners (fetch/archive_handles.h) under the names these files use, a zlib inflate stream, and how
// the format recognises its own files.
//
// Thread safety: each object is owned by one thread at a time; the free functions are reentrant.
#pragma once

#include <zlib.h>

#include <string_view>

#include "fetch/archive_handles.h"

namespace lazyfs::fs::estargz_internal {

using fetch::ArchiveEntryPtr;
using fetch::ArchiveErrorString;
using fetch::ArchiveReadPtr;
using fetch::ArchiveWritePtr;

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
