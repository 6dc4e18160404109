// Image manifests and configs kept in the shared chunk store's meta table (key "doc:<digest>"), as the
// fetch::DocumentCache of docker:// sources: the mount daemon that `lazyfs run` starts, and any later mount
// of the same image, read them from there instead of asking the registry again.
//
// Thread safety: as ChunkStore (any thread). The store must outlive the returned cache.
#pragma once

#include <memory>

#include "cache/chunk_store.h"
#include "fetch/document_cache.h"

namespace lazyfs::fs {

std::shared_ptr<fetch::DocumentCache> StoreDocuments(cache::ChunkStore& store);

}  // namespace lazyfs::fs
