// PushImage: copies one tagged image from an OCI layout directory to a registry. Blobs the registry
// already has (HEAD) are skipped; missing ones are uploaded monolithically from their files in the
// layout; the manifest goes last, byte for byte as stored, so its digest is unchanged by the push.
// An image index is pushed with every manifest it names (each by digest) before the index itself.
//
// Thread safety: reentrant; pushes run on the calling thread, one blob at a time.
#pragma once

#include <functional>
#include <string>

#include "common/result.h"
#include "fetch/image_ref.h"
#include "fetch/oci_layout.h"
#include "fetch/registry_source.h"

namespace lazyfs::fetch {

// Receives human-readable progress lines ("uploading sha256:ab12… 48.0/120.0 MiB"), at most a few per
// second per blob; may be null.
using PushProgress = std::function<void(const std::string& line)>;

// Pushes `layout`'s image tagged `tag` (empty: the layout's only manifest, or "latest") to `dst`
// (docker://HOST[:PORT]/NAME[:TAG]; a pinned digest is kInvalidArgument, an empty tag means "latest").
// Errors: those of OciLayout for the source, of RegistryClient for the destination; kCorrupt when a
// layout blob's file does not have its descriptor's size.
Status PushImage(const OciLayout& layout, const std::string& tag, const ImageRef& dst, const RegistryOptions& options,
                 const PushProgress& progress);

}  // namespace lazyfs::fetch
