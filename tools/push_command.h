// `lazyfs push oci:DIR[:TAG] docker://HOST[:PORT]/NAME[:TAG]`: copies an image from an OCI layout to a
// registry through fetch::PushImage: blobs the registry already has (HEAD) are skipped, missing ones are
// uploaded with progress lines on long uploads, the manifest goes last, byte for byte.
//
// Thread safety: one push per call; all state local.
#pragma once

#include <string>

#include "fetch/image_source.h"

namespace lazyfs::tools {

// Returns the process exit code (0 pushed, 1 failed, 2 bad arguments); errors go to stderr.
int RunPush(const std::string& src, const std::string& dst, const fetch::SourceOptions& options, bool quiet);

}  // namespace lazyfs::tools
