#include "tools/run_resolve.h"

#include <memory>

#include "cache/chunk_store.h"
#include "fetch/image_ref.h"
#include "fetch/image_source.h"
#include "fs/store_documents.h"

namespace lazyfs::tools {

Result<run::ResolvedRef> ResolveImageRef(const std::string& ref, const RunCommandOptions& options) {
  fetch::ImageRef parsed = LAZYFS_TRY(fetch::ImageRef::Parse(ref));
  fetch::SourceOptions source_options = LAZYFS_TRY(ToSourceOptions(options.source));
  std::unique_ptr<cache::ChunkStore> store;  // outlives the source, which holds a cache over it
  if (parsed.transport == fetch::ImageRef::Transport::kDocker) {
    cache::CacheOptions cache_options;
    cache_options.dir = options.cache_dir;
    cache_options.access_flush_interval = std::chrono::milliseconds(0);  // this process reads no chunks
    cache_options.background_eviction = false;                          // nor stores any
    store = LAZYFS_TRY(cache::ChunkStore::Open(cache_options));
    source_options.documents = fs::StoreDocuments(*store);
  }
  std::unique_ptr<fetch::ImageSource> source = LAZYFS_TRY(fetch::OpenImageSource(parsed, source_options));
  fetch::ResolvedImage image = LAZYFS_TRY(source->Resolve());
  return run::ResolvedRef{image.manifest_digest, std::move(image.config_json)};
}

}  // namespace lazyfs::tools
