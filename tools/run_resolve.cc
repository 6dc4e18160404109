#include "tools/run_resolve.h"

#include <memory>

#include "fetch/image_ref.h"
#include "fetch/image_source.h"

namespace lazyfs::tools {

Result<ResolvedRef> ResolveImageRef(const std::string& ref, const SourceFlags& flags) {
  fetch::SourceOptions source_options = LAZYFS_TRY(ToSourceOptions(flags));
  std::unique_ptr<fetch::ImageSource> source =
      LAZYFS_TRY(fetch::OpenImageSource(LAZYFS_TRY(fetch::ImageRef::Parse(ref)), source_options));
  fetch::ResolvedImage image = LAZYFS_TRY(source->Resolve());
  return ResolvedRef{image.manifest_digest, std::move(image.config_json)};
}

}  // namespace lazyfs::tools
