// ChunkReader: turns "bytes [offset, offset+length) of this file" into cache hits and verified fetches.
// For each chunk covering the range: a cache hit is copied straight from the LMDB map into the reply
// buffer; a miss fetches the chunk's gzip member through the layer's BlobReader, inflates it, checks its
// sha256 against the TOC's chunkDigest, stores it, and serves it. Bytes that fail verification are never
// stored or served. Chunks of plain (non-lazy) layers exist only in the cache; a missing one makes the
// layer be streamed again through the LayerRestreamer.
//
// A miss fetches, in the same request, the read's later chunks that are missing too and, with fetch-ahead
// on (SetFetchAhead), the chunks that follow it in the layer blob (see fs/blob_order.h).
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
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/chunk_store.h"
#include "common/digest.h"
#include "common/result.h"
#include "fetch/blob_reader.h"
#include "fetch/image.h"
#include "fs/blob_order.h"
#include "fs/layer_index.h"

namespace lazyfs::fs {

struct LayerSource {
  fetch::BlobReader* blobs = nullptr;  // not owned; outlives the ChunkReader
  fetch::Descriptor descriptor;
  bool lazy = true;
};

// Re-streams a plain layer so its chunks, `wanted` among them, are back in the cache (they were evicted).
using LayerRestreamer = std::function<Status(uint32_t layer, const Sha256Digest& wanted)>;

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

  // Prefetch of several chunks of one layer: the ones not cached are fetched together, in as few requests
  // as the blob reader can merge them into. Chunks another thread or process is fetching right now are
  // left to it (counted as cached: this call does not wait for them).
  struct WarmOutcome {
    uint64_t fetched = 0;
    uint64_t cached = 0;
    uint64_t failed = 0;
    std::optional<Error> first_error;
  };
  WarmOutcome WarmGroup(uint32_t layer, std::span<const ChunkRef* const> chunks);

  // Fetch-ahead: a miss also fetches the chunks of files in its directory that follow it in its layer blob,
  // up to `bytes` compressed bytes past its end (fs/blob_order.h), that are neither cached nor being
  // fetched; 0 turns it off. Set once before the first Read; `order` (built from the mounted tree)
  // outlives the reader.
  void SetFetchAhead(const BlobOrder* order, uint64_t bytes) {
    blob_order_ = order;
    fetch_ahead_bytes_ = order ? bytes : 0;
  }

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
  // Upper bound on the chunks one request carries: the read's own plus fetch-ahead.
  static constexpr size_t kMaxBatchChunks = 256;
  // A Read missed `*first`: fetches it together with the following chunks of the read (up to file offset
  // `end`) and, with fetch-ahead, the chunks after it in the blob, that are neither cached nor being
  // fetched by another thread, through FetchGroup. Verified chunks land in `batch`; returns the bytes of
  // `*first`.
  Result<ChunkBytes> FetchForRead(uint32_t layer, std::vector<ChunkRef>::const_iterator first,
                                  std::vector<ChunkRef>::const_iterator last, uint64_t end, Batch& batch);
  // Fetches `candidates` (blob-backed chunks of `layer` not found in the cache) with one ReadRanges call
  // (a registry merges them into few requests under one deadline). Single flight per digest is kept: this
  // thread leads the flights of the chunks no other thread or process is fetching and skips the rest.
  // Returns the result of each chunk it led.
  using GroupResults = std::vector<std::pair<const ChunkRef*, Result<ChunkBytes>>>;
  GroupResults FetchGroup(uint32_t layer, std::vector<const ChunkRef*> candidates);
  std::string Where(uint32_t layer, const ChunkRef& chunk) const;

  // Constant after construction.
  cache::ChunkStore& store_;
  const std::vector<LayerSource> layers_;
  const LayerRestreamer restream_;

  ReadCounters counters_;
  FetchListener fetch_listener_;  // set before serving, then constant
  const BlobOrder* blob_order_ = nullptr;  // set before serving, then constant
  uint64_t fetch_ahead_bytes_ = 0;          // set before serving, then constant

  std::mutex mu_;  // protects inflight_ only; never held across I/O
  std::unordered_map<Sha256Digest, std::shared_ptr<Inflight>, Sha256DigestHash> inflight_;  // guarded by mu_
};

}  // namespace lazyfs::fs
