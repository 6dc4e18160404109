// ChunkReader: turns "bytes [offset, offset+length) of this file" into cache hits and verified fetches.
// For each chunk covering the range: a cache hit is copied straight from the LMDB map into the reply
// buffer; a miss fetches the chunk's gzip member through the layer's BlobReader, inflates it, checks its
// sha256 against the TOC's chunkDigest, stores it, and serves it. Bytes that fail verification are never
// stored or served. Chunks of plain (non-lazy) layers exist only in the cache; a missing one makes the
// layer be streamed again through the LayerRestreamer.
//
// Concurrent misses of one chunk within the process collapse into one fetch (single flight).
// Thread safety: Read may be called from any number of threads at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/chunk_store.h"
#include "common/digest.h"
#include "common/result.h"
#include "fetch/blob_reader.h"
#include "fetch/image.h"
#include "fs/layer_index.h"

namespace lazyfs::fs {

struct LayerSource {
  fetch::BlobReader* blobs = nullptr;  // not owned; outlives the ChunkReader
  fetch::Descriptor descriptor;
  bool lazy = true;
};

// Re-streams a plain layer so its chunks are back in the cache (they were evicted).
using LayerRestreamer = std::function<Status(uint32_t layer)>;

// Counters of one mount; relaxed atomics, so the read path takes no lock for them.
struct ReadCounters {
  std::atomic<uint64_t> reads{0};
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<uint64_t> chunk_hits{0};
  std::atomic<uint64_t> chunk_misses{0};
  std::atomic<uint64_t> fetches{0};        // chunk fetches that went to a blob reader
  std::atomic<uint64_t> fetched_bytes{0};  // compressed bytes read from blob readers
  std::atomic<uint64_t> errors{0};
};

class ChunkReader {
 public:
  ChunkReader(cache::ChunkStore& store, std::vector<LayerSource> layers, LayerRestreamer restream);

  // Copies bytes [offset, offset + length) of a file made of `chunks` (stored in `layer`) into `dst`.
  // The caller clamps the range to the file size. Errors name the layer and chunk that failed.
  Status Read(uint32_t layer, const std::vector<ChunkRef>& chunks, uint64_t offset, uint64_t length, char* dst);

  // Makes sure one chunk is in the cache (prefetch); returns whether it had to be fetched.
  Result<bool> Warm(uint32_t layer, const ChunkRef& chunk);

  const ReadCounters& counters() const { return counters_; }

 private:
  using ChunkBytes = std::shared_ptr<const std::string>;
  struct Inflight {
    std::mutex mu;
    std::condition_variable done_cv;
    std::optional<Result<ChunkBytes>> result;  // guarded by mu
  };

  // Fetches, verifies and stores one chunk; concurrent callers for one digest share one fetch.
  Result<ChunkBytes> FetchOnce(uint32_t layer, const ChunkRef& chunk);
  Result<ChunkBytes> FetchAndVerify(uint32_t layer, const ChunkRef& chunk);
  std::string Where(uint32_t layer, const ChunkRef& chunk) const;

  // Constant after construction.
  cache::ChunkStore& store_;
  const std::vector<LayerSource> layers_;
  const LayerRestreamer restream_;

  ReadCounters counters_;

  std::mutex mu_;  // protects inflight_ only; never held across I/O
  std::unordered_map<Sha256Digest, std::shared_ptr<Inflight>, Sha256DigestHash> inflight_;  // guarded by mu_
};

}  // namespace lazyfs::fs
