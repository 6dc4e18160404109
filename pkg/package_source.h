// PackageSource: what the resolver asks of an index — the files listed for a project, and the core
// metadata of one file. IndexClient is the real one (HTTP, the shared cache); unit tests give a map.
//
// Thread safety: implementations say; the resolver calls from one thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "pkg/index_page.h"

namespace lazyfs::pkg {

// How a file's metadata was obtained, for `lazyfs pkg show` and the resolver's report.
enum class MetadataSource { kCache, kMetadataFile, kWheelRanges };
std::string_view MetadataSourceName(MetadataSource source);

struct FetchedMetadata {
  std::string text;  // the METADATA file
  MetadataSource source = MetadataSource::kCache;
};

class PackageSource {
 public:
  virtual ~PackageSource() = default;

  // Every file listed for `project` (any spelling of its name). kNotFound when no index knows it; any
  // other error (network, a page that does not parse) stops the resolution.
  virtual Result<std::vector<IndexFile>> ProjectFiles(std::string_view project) = 0;

  // The METADATA of `file`, already checked against whatever hash vouches for it. `project` is for
  // messages.
  virtual Result<FetchedMetadata> Metadata(const IndexFile& file, std::string_view project) = 0;
};

}  // namespace lazyfs::pkg
