// RAII owners for libarchive handles, and libarchive's error text, for every module that reads or writes
// tars with it (fetch/'s docker-archive reader, fs/'s layer formats). Here because fetch/ is the lowest
// module that links libarchive and fs/ builds on fetch/; header-only, so including it costs nothing but
// the libarchive headers.
//
// Thread safety: a handle is owned by one thread at a time.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <string>

namespace lazyfs::fetch {

struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteDeleter {
  // archive_write_free first closes an unfinished archive, so a writer's sink sees its end blocks.
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveEntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using ArchiveReadPtr = std::unique_ptr<archive, ArchiveReadDeleter>;
using ArchiveWritePtr = std::unique_ptr<archive, ArchiveWriteDeleter>;
using ArchiveEntryPtr = std::unique_ptr<archive_entry, ArchiveEntryDeleter>;

// libarchive's last error on `a`, for messages.
inline std::string ArchiveErrorString(archive* a) {
  const char* message = archive_error_string(a);
  return message != nullptr ? message : "unknown libarchive error";
}

}  // namespace lazyfs::fetch
