// The in-process image resolver of `lazyfs run` (lazyfs-core only: it needs the registry client).
#pragma once

#include <string>

#include "common/result.h"
#include "tools/run_command.h"
#include "tools/source_flags.h"

namespace lazyfs::tools {

// Fetches the manifest (registry) or reads it (OCI layout) and the image config: an ImageResolver.
Result<ResolvedRef> ResolveImageRef(const std::string& ref, const SourceFlags& flags);

}  // namespace lazyfs::tools
