// ImageSource: a resolved image (manifest + config) and the BlobReader its layers are read through.
// OpenImageSource picks the implementation from the reference's transport (oci:, docker-archive:,
// docker:// through registry_source.h).
//
// Thread safety: Resolve once, then blobs() may be used from any thread.
#pragma once

#include <memory>
#include <string>

#include "fetch/blob_reader.h"
#include "fetch/document_cache.h"
#include "fetch/image.h"
#include "fetch/image_ref.h"
#include "fetch/registry_options.h"

namespace lazyfs::fetch {

struct ResolvedImage {
  Sha256Digest manifest_digest;
  Manifest manifest;
  std::string config_json;
};

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // Fetches and verifies the manifest (choosing a platform from an index) and the config.
  virtual Result<ResolvedImage> Resolve() = 0;
  virtual BlobReader& blobs() = 0;
  virtual std::string Describe() const = 0;
};

struct SourceOptions {
  std::string platform = "linux/amd64";
  RegistryOptions registry;  // used by docker:// references only
  // docker:// only: where manifests and configs are looked up by digest before the registry is asked, and
  // kept after they were fetched. Null: none.
  std::shared_ptr<DocumentCache> documents;
};

Result<std::unique_ptr<ImageSource>> OpenImageSource(const ImageRef& ref, const SourceOptions& options);

}  // namespace lazyfs::fetch
