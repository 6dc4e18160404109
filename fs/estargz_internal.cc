// Implementation of the eStargz internals (see estargz_internal.h): handle owners and name cleaning.
//
// Thread safety: reentrant.
#include "fs/estargz_internal.h"

#include <archive_entry.h>

#include <vector>

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

std::string CleanEntryName(std::string_view name) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t slash = name.find('/', pos);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view part = name.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      // Rooted like path.Clean("/" + name): ".." at the root stays at the root.
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (std::string_view part : parts) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

bool IsFormatFile(std::string_view clean_name) {
  return clean_name == kTocName || clean_name == kPrefetchLandmark || clean_name == kNoPrefetchLandmark;
}

}  // namespace lazyfs::fs::estargz_internal
