// A `docker save` tarball as an ImageSource (convert input): manifest.json names the config and the layer
// files inside the tarball. The tarball is indexed once at open with libarchive (entry name -> where its
// data sits in the file, and the sha256 of every file, computed in the same pass); blobs are then served
// by pread. Resolve returns a synthesized OCI manifest whose descriptors carry those digests.
//
// Only uncompressed archives are supported (what `docker save` writes): a compressed tarball has no byte
// offsets to pread, so it is rejected with a message saying to decompress it first.
//
// Thread safety: the source is immutable after OpenDockerArchive; its BlobReader is thread-safe.
#pragma once

#include <memory>
#include <string>

#include "fetch/image_source.h"

namespace lazyfs::fetch {

// Indexes the archive at `path` (reading it once, whole). kNotFound if it does not exist, kUnsupported if
// it is compressed or holds several images, kCorrupt if it is not a tar or its manifest.json is malformed.
Result<std::unique_ptr<ImageSource>> OpenDockerArchive(const std::string& path);

}  // namespace lazyfs::fetch
