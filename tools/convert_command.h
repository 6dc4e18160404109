// `lazyfs convert`: rewrites every layer of an image as eStargz and writes the result, an ordinary OCI
// image that any runtime still runs, into an OCI layout directory or a registry.
//
// A registry destination is written in two steps: the conversion goes into a temporary OCI layout (under
// TempRoot(): $TMPDIR, else /var/tmp; removed afterwards), which is then pushed with fetch::PushImage.
// Staging on disk keeps the converter one code path, lets the push HEAD-skip blobs the registry already
// has (layers converted before convert to the same digest), and retries uploads from a file instead of
// re-converting.
//
// Thread safety: ConvertImage is reentrant but assumes it is the only writer of the destination layout.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "fetch/image_ref.h"
#include "fetch/image_source.h"

namespace lazyfs::tools {

struct ConvertOptions {
  uint64_t chunk_size = 1 << 20;         // uncompressed bytes per eStargz chunk
  // Platform (picks the manifest of a multi-platform source) and registry options, used for a docker://
  // source and a docker:// destination alike.
  fetch::SourceOptions source;
  bool quiet = false;                    // no progress lines (errors are still returned)
};

// Converts `src` (oci:DIR[:TAG], docker-archive:FILE or docker://…) into `dst` (oci:DIR[:TAG], the layout
// created if needed; or docker://HOST[:PORT]/NAME[:TAG]; the tag defaults to "latest"). Every source layer
// is verified against its digest while it is converted (kCorrupt on mismatch); nothing is tagged (or
// pushed) unless every layer converted.
Status ConvertImage(const fetch::ImageRef& src, const fetch::ImageRef& dst, const ConvertOptions& options);

}  // namespace lazyfs::tools
