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
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
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
  // Foreground reads waiting on a fetch right now; background prefetchers back off while it is non-zero.
  std::atomic<uint64_t> misses_in_flight{0};
};

// What one Read found: filled in when the caller asks (access statistics and traces).
struct ReadOutcome {
  uint32_t chunk_hits = 0;
  uint32_t chunk_misses = 0;
};

// Told of every request to a blob reader (foreground or prefetch; merged chunks count once): the layer,
// the compressed bytes and how long the request took. Called on the fetching thread; must be cheap and thread-safe.
using FetchListener = std::function<void(uint32_t layer, uint64_t bytes, std::chrono::nanoseconds latency)>;

class ChunkReader {
 public:
  ChunkReader(cache::ChunkStore& store, std::vector<LayerSource> layers, LayerRestreamer restream);

  // Copies bytes [offset, offset + length) of a file made of `chunks` (stored in `layer`) into `dst`.
  // The caller clamps the range to the file size. Errors name the layer and chunk that failed.
  // `outcome`, when given, receives this read's chunk hits and misses.
  Status Read(uint32_t layer, const std::vector<ChunkRef>& chunks, uint64_t offset, uint64_t length, char* dst,
              ReadOutcome* outcome = nullptr);

  // Makes sure one chunk is in the cache (prefetch); returns whether it had to be fetched.
  Result<bool> Warm(uint32_t layer, const ChunkRef& chunk);

  const ReadCounters& counters() const { return counters_; }
  // Set once before the first Read (not synchronised with reads).
  void SetFetchListener(FetchListener listener) { fetch_listener_ = std::move(listener); }

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
  // Host-wide single flight (cache/fetch_lock.h): waits while another process fetches the chunk, then takes
  // it from the cache, or fetches it (FetchAndVerify) holding the host-wide lock.
  Result<ChunkBytes> FetchHostWide(uint32_t layer, const ChunkRef& chunk);
  // Inflates one fetched gzip member, checks it against chunkDigest and stores it (kCorrupt on mismatch,
  // nothing stored).
  Result<ChunkBytes> VerifyAndStore(const ChunkRef& chunk, std::string_view member);

  // Chunks one Read fetched together, by digest (served from memory for the rest of that Read).
  using Batch = std::unordered_map<Sha256Digest, ChunkBytes, Sha256DigestHash>;
  static constexpr size_t kMaxBatchChunks = 64;
  // A Read missed `*first`: fetches it together with the following chunks of the read (up to file offset
  // `end`) that are neither cached nor being fetched by another thread, in one BlobReader::ReadRanges call
  // (a registry merges them into one request, under one deadline). Single flight per digest is kept:
  // this thread leads the flights of the chunks it fetches, and waits on the others'. Verified chunks
  // land in `batch`; returns the bytes of `*first`.
  Result<ChunkBytes> FetchForRead(uint32_t layer, std::vector<ChunkRef>::const_iterator first,
                                  std::vector<ChunkRef>::const_iterator last, uint64_t end, Batch& batch);
  std::string Where(uint32_t layer, const ChunkRef& chunk) const;

  // Constant after construction.
  cache::ChunkStore& store_;
  const std::vector<LayerSource> layers_;
  const LayerRestreamer restream_;

  ReadCounters counters_;
  FetchListener fetch_listener_;  // set before serving, then constant

  std::mutex mu_;  // protects inflight_ only; never held across I/O
  std::unordered_map<Sha256Digest, std::shared_ptr<Inflight>, Sha256DigestHash> inflight_;  // guarded by mu_
};

}  // namespace lazyfs::fs
