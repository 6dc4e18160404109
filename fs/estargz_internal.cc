// Implementation of the eStargz internals (see estargz_internal.h): handle owners and format files.
//
// Thread safety: reentrant.
#include "fs/estargz_internal.h"

#include <archive_entry.h>

#include "fs/estargz.h"

namespace lazyfs::fs::estargz_internal {

void ArchiveEntryDeleter::operator()(archive_entry* e) const { archive_entry_free(e); }

std::string ArchiveErrorString(archive* a) {
  const char* message = archive_error_string(a);
  return message != nullptr ? message : "unknown libarchive error";
}

GzipInflater::GzipInflater() { ok_ = inflateInit2(&stream_, 16 + MAX_WBITS) == Z_OK; }

GzipInflater::~GzipInflater() {
  if (ok_) inflateEnd(&stream_);
}

bool IsFormatFile(std::string_view clean_name) {
  return clean_name == kTocName || clean_name == kPrefetchLandmark || clean_name == kNoPrefetchLandmark;
}

}  // namespace lazyfs::fs::estargz_internal
