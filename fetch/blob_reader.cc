// BlobReader's shared helpers: reading a small blob whole and verifying it; ranges one by one (see
// blob_reader.h).
//
// Thread safety: as thread-safe as the implementation it calls.
#include "fetch/blob_reader.h"

#include <fmt/format.h>

namespace lazyfs::fetch {

Result<std::vector<std::string>> BlobReader::ReadRanges(const Sha256Digest& blob,
                                                        const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  std::vector<std::string> out;
  out.reserve(ranges.size());
  for (const auto& [offset, length] : ranges) out.push_back(LAZYFS_TRY(ReadRange(blob, offset, length)));
  return out;
}

Result<std::string> BlobReader::ReadVerified(const Sha256Digest& blob, uint64_t max_size) {
  uint64_t size = LAZYFS_TRY(Size(blob));
  // Checked before reading, so a hostile source cannot make us allocate what it claims.
  if (size > max_size) {
    return Corrupt(fmt::format("blob {} in {} is too large: {} bytes (limit {})", blob.ToString(), Describe(), size,
                               max_size));
  }
  std::string data = LAZYFS_TRY(ReadRange(blob, 0, size));
  Sha256Digest actual = Sha256Of(data);
  if (actual != blob) {
    return Corrupt(fmt::format("blob {} in {}: digest mismatch (content hashes to {})", blob.ToString(), Describe(),
                               actual.ToString()));
  }
  return data;
}

}  // namespace lazyfs::fetch
