// The whole-layer fallback for plain OCI layers (tar, tar+gzip, tar+zstd), which cannot be read lazily:
// the layer is streamed once through its BlobReader (one streaming request), its files cut into chunks that are stored in the
// cache by sha256 like any other chunk, and the blob's digest checked at the end.
//
// Chunks are stored while streaming, before the layer digest is known to match: that is safe because the
// cache is content-addressed (a chunk is stored under the sha256 of its own bytes, so it can only ever be
// served as exactly those bytes). The index is returned only if the whole blob verifies.
//
// Thread safety: reentrant; concurrent calls for one layer do the work twice (callers collapse them).
#pragma once

#include <cstdint>

#include "cache/chunk_store.h"
#include "common/result.h"
#include "fetch/blob_reader.h"
#include "fetch/image.h"
#include "fs/layer_index.h"

namespace lazyfs::fs {

inline constexpr uint64_t kTarChunkSize = 1 << 20;

// Streams `layer` once (BlobReader::Stream, bounded as `bound` says), stores its files' chunks and returns
// its index once the whole blob matched its digest and size. Errors name the layer; kCorrupt for a bad
// tar stream or blob, the stream's error otherwise.
Result<LayerIndex> IndexTarLayer(fetch::BlobReader& blobs, const fetch::Descriptor& layer, cache::ChunkStore& store,
                                 fetch::BlobReader::StreamBound bound, uint64_t chunk_size = kTarChunkSize);

}  // namespace lazyfs::fs
