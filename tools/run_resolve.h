// The in-process image resolver of `lazyfs run` (lazyfs-core only: it needs the registry client).
#pragma once

#include <string>

#include "common/result.h"
#include "tools/run_command.h"

namespace lazyfs::tools {

// Fetches the manifest (registry) or reads it (OCI layout) and the image config: an ImageResolver. A
// docker:// image's manifest and config are kept in the run's cache, where the mount daemon it starts
// finds them (fs/store_documents.h); a config found there is not fetched.
Result<run::ResolvedRef> ResolveImageRef(const std::string& ref, const RunCommandOptions& options);

}  // namespace lazyfs::tools
