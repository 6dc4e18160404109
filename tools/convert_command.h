// `lazyfs convert`: rewrites every layer of an image as eStargz and writes the result, an ordinary OCI
// image that any runtime still runs, into an OCI layout directory.
//
// Thread safety: ConvertImage is reentrant but assumes it is the only writer of the destination layout.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "fetch/image_ref.h"

namespace lazyfs::tools {

struct ConvertOptions {
  uint64_t chunk_size = 1 << 20;         // uncompressed bytes per eStargz chunk
  std::string platform = "linux/amd64";  // picks the manifest when the source is a multi-platform index
  bool quiet = false;                    // no progress lines (errors are still returned)
};

// Converts `src` (oci:DIR[:TAG] or docker-archive:FILE) into `dst` (oci:DIR[:TAG]; the layout is created
// if needed, the tag defaults to "latest"). Every source layer is verified against its digest while it is
// converted (kCorrupt on mismatch); nothing is tagged unless every layer converted. Registry destinations
// are kUnsupported for now.
Status ConvertImage(const fetch::ImageRef& src, const fetch::ImageRef& dst, const ConvertOptions& options);

}  // namespace lazyfs::tools
