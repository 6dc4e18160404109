// Implementation of the eStargz internals (see estargz_internal.h): the inflate stream and format files.
//
// Thread safety: reentrant.
#include "fs/estargz_internal.h"

#include "fs/estargz.h"

namespace lazyfs::fs::estargz_internal {

GzipInflater::GzipInflater() { ok_ = inflateInit2(&stream_, 16 + MAX_WBITS) == Z_OK; }

GzipInflater::~GzipInflater() {
  if (ok_) inflateEnd(&stream_);
}

bool IsFormatFile(std::string_view clean_name) {
  return clean_name == kTocName || clean_name == kPrefetchLandmark || clean_name == kNoPrefetchLandmark;
}

}  // namespace lazyfs::fs::estargz_internal
