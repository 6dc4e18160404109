// OciLayout: an OCI image layout directory (index.json, oci-layout, blobs/sha256/...), read and written.
// It is the embedded default source: no server needed. Reads go through OciLayoutBlobReader (pread);
// writes (convert, tests) add blobs atomically and tag manifests in index.json.
//
// Thread safety: reading is thread-safe. Writers (AddBlob, Tag) assume one writing process per layout.
#pragma once

#include <memory>
#include <string>

#include "fetch/blob_reader.h"
#include "fetch/image.h"

namespace lazyfs::fetch {

class OciLayout {
 public:
  // Opens an existing layout; kNotFound if `dir` has no oci-layout/index.json.
  static Result<OciLayout> Open(const std::string& dir);
  // Opens or creates (mkdir -p, oci-layout, empty index.json).
  static Result<OciLayout> Create(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::string BlobPath(const Sha256Digest& digest) const;

  // Finds the manifest descriptor tagged `tag` (annotation org.opencontainers.image.ref.name). An empty
  // tag picks the only manifest, or "latest".
  Result<Descriptor> Resolve(const std::string& tag) const;

  // Writes `data` as a blob (sha256 computed here) unless present; returns its digest.
  Result<Sha256Digest> AddBlob(std::string_view data) const;
  // Moves an already written file into the blob store under `digest` (caller computed and verified it).
  Status AdoptBlobFile(const std::string& file, const Sha256Digest& digest) const;
  // Points `tag` at `manifest` in index.json (replacing an older entry with that tag).
  Status Tag(const Descriptor& manifest, const std::string& tag) const;

  std::unique_ptr<BlobReader> NewBlobReader() const;

 private:
  explicit OciLayout(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace lazyfs::fetch
