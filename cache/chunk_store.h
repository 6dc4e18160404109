// ChunkStore: the host-wide, content-addressed cache in one LMDB environment, shared by every lazyfs
// process (every mount, every sandbox). Databases:
//   chunks: raw sha256 (32 bytes) -> [8-byte little-endian XXH3 of the data][data]
//   meta:   string key -> opaque value (parsed TOCs, merged trees), same checksum framing
//   access: raw sha256 -> coarse last-access tick (u32 LE; a tick is access_granularity seconds)
//   info:   the cache's own state: tracked chunk count and data bytes (updated in the same transaction as
//           every chunk put and delete, so they are exact and crash-safe), the size cap, eviction totals
//
// Size cap and eviction. The cap bounds the data bytes of the chunks database; meta values (indexes, trees)
// are small and are never evicted (`lazyfs cache rm` removes an image's). Eviction stays off the read path:
// a Put that takes the chunk bytes past the high-water mark (nine tenths of the cap) stores and wakes a
// background evictor (cache/background_evictor.h; one per host at a time), which evicts least-recently-used
// chunks down to four fifths of the cap. Only a Put that would pass the cap itself (the evictor is behind)
// evicts inline first, down to the cap minus the new chunk minus a tenth of the cap; so does every Put past
// the cap when background_eviction is off. A full map (MDB_MAP_FULL) or a full disk (ENOSPC) also evicts and retries the put once; if it still
// fails the put is kNoSpace, and the caller serves the verified bytes it has anyway, so a full cache never
// fails a read. Access tracking costs no write transaction per read: reads note the digest in an in-memory
// batch (lock-free once per digest per tick), and a background thread writes the batch in one short write
// transaction every access_flush_interval; puts write their own stamp. Eviction is oldest tick first.
// Eviction never frees bytes under a reader: ReadChunk copies inside its read transaction, and LMDB's MVCC
// keeps every page of that snapshot alive until the transaction ends, whatever other processes delete.
//
// Choosing the cap: CacheOptions::max_bytes when nonzero (and it is then recorded in the cache, so tools
// that open the cache without a cap use the same one), else the recorded cap, else kDefaultMaxBytes (10 GiB,
// a size that fits the images of a busy host and any real disk). Each writing process enforces the cap it
// opened with; give every mount the same --cache-size.
// Only bytes already verified against their sha256 may be Put: the store trusts its callers on that, and
// the XXH3 framing catches on-disk corruption on Get (a bad value is dropped and reported as absent).
//
// Thread safety: all methods are thread-safe and multi-process safe (LMDB). Reads never block on writers.
// No LMDB transaction outlives a call: values are copied out before the read transaction ends. A store
// must not be used in a child after fork(); the child opens its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/result.h"

namespace lazyfs::cache {

inline constexpr const char* kDefaultCacheDir = "/var/lib/lazyfs/cache";

inline constexpr uint64_t kDefaultMaxBytes = uint64_t{10} << 30;
inline constexpr uint64_t kMinMapBytes = uint64_t{64} << 30;

struct CacheOptions {
  std::string dir = kDefaultCacheDir;
  // LMDB map size: the most the cache file can grow to (sparse; costs nothing until used). 0: derived from
  // the cap, max(kMinMapBytes, 2 * cap), comfortably above it so free-list pages and meta values fit.
  uint64_t map_size = 0;
  // Size cap on chunk data bytes; 0: the cap recorded in the cache, else kDefaultMaxBytes (see above).
  uint64_t max_bytes = 0;
  // Access stamps are this coarse: a chunk read all the time is stamped once per tick, not once per read.
  std::chrono::seconds access_granularity{60};
  // How often the background thread writes the batch of access stamps; zero: no thread (FlushAccess only).
  std::chrono::milliseconds access_flush_interval{5000};
  // Wall clock in seconds since the epoch; empty: the system clock. A seam for tests.
  std::function<int64_t()> clock = {};
  // A background thread evicts from the high-water mark (see above); false: no thread, and only a put past
  // the cap evicts, inline (tools that put nothing, tests that want eviction at a known moment).
  bool background_eviction = true;
};

struct CacheCounters {
  uint64_t chunks = 0;          // entries in the chunks database (tracked)
  uint64_t chunk_bytes = 0;     // data bytes in them (tracked; what the cap bounds)
  uint64_t max_bytes = 0;       // the cap this store enforces
  uint64_t meta_entries = 0;
  uint64_t access_entries = 0;
  uint64_t evicted_chunks = 0;  // totals over the cache's life, all processes
  uint64_t evicted_bytes = 0;
  uint64_t file_bytes = 0;      // size of the LMDB data file
  uint64_t map_bytes = 0;       // LMDB map size
};

struct EvictionReport {
  uint64_t chunks = 0;           // chunks evicted by this call
  uint64_t bytes = 0;            // their data bytes
  uint64_t remaining_bytes = 0;  // tracked chunk bytes afterwards
};

struct VerifyReport {
  uint64_t chunks = 0;        // chunks checked
  uint64_t bytes = 0;         // their data bytes
  uint64_t bad_chunks = 0;    // failed their XXH3 frame or sha256 (dropped)
  uint64_t meta_entries = 0;  // meta values checked
  uint64_t bad_meta = 0;      // failed their XXH3 frame (dropped)
  bool counters_fixed = false;  // the tracked count/bytes disagreed with the walk and were reset
};

// Called by Verify for each bad value: the chunk digest (or nullopt for a meta entry) and why.
using BadValueReporter = std::function<void(const std::optional<Sha256Digest>& chunk, const std::string& why)>;

class ChunkStore {
 public:
  // Opens (creating the directory and environment if needed) and clears stale reader slots. Opening the same
  // dir again in one process is fine: the stores share the process's one LMDB environment (LMDB forbids two),
  // and options.map_size then only applies to the first. Every process on the host may open the same dir.
  static Result<std::unique_ptr<ChunkStore>> Open(const CacheOptions& options);
  virtual ~ChunkStore() = default;

  // Copies bytes [offset, offset + length) of chunk `digest` into `dst` (which has room for `length`).
  // `chunk_size` is the size the caller's index gives the chunk: a stored chunk of another size is
  // kCorrupt and nothing is copied (the cache is shared, so a hostile image can name another image's
  // digest with a size of its own; the stored bytes are right, the claim is not). Returns false if the
  // chunk is absent; a range past `chunk_size` is kInvalidArgument.
  virtual Result<bool> ReadChunk(const Sha256Digest& digest, uint64_t chunk_size, uint64_t offset, uint64_t length,
                                 char* dst) = 0;
  // The whole chunk, or nullopt if absent.
  virtual Result<std::optional<std::string>> GetChunk(const Sha256Digest& digest) = 0;
  // Presence only: cheap, does not verify the checksum (a damaged chunk is dropped by the next read of it).
  virtual Result<bool> HasChunk(const Sha256Digest& digest) = 0;
  // Stores a verified chunk. Storing a present chunk is a no-op. A full map is kNoSpace (until eviction).
  virtual Status PutChunk(const Sha256Digest& digest, std::string_view data) = 0;
  // Removes a chunk (absent is fine).
  virtual Status DeleteChunk(const Sha256Digest& digest) = 0;
  // Removes many chunks in a few short transactions; returns how many were present.
  virtual Result<EvictionReport> DeleteChunks(const std::vector<Sha256Digest>& digests) = 0;

  // Meta keys may be any length (keys past LMDB's 511-byte limit are stored by their sha256). PutMeta
  // replaces an existing value.
  virtual Result<std::optional<std::string>> GetMeta(std::string_view key) = 0;
  virtual Status PutMeta(std::string_view key, std::string_view value) = 0;
  virtual Status DeleteMeta(std::string_view key) = 0;

  // Evicts least-recently-used chunks until the tracked chunk bytes are at most `target_bytes`.
  // Chunks read since the scan began are skipped. Errors: LMDB errors only.
  virtual Result<EvictionReport> Evict(uint64_t target_bytes) = 0;
  // Writes this process's pending access stamps now (the background thread does it periodically).
  virtual Status FlushAccess() = 0;
  // Re-hashes every chunk with sha256 (and checks every value's XXH3 frame), drops the bad ones and
  // reports each through `report`. Works in batches: no transaction stays open across the hashing.
  virtual Result<VerifyReport> Verify(const BadValueReporter& report) = 0;

  // Counters are cheap: tracked values plus database stats, no walk over the chunks.
  virtual Result<CacheCounters> Counters() = 0;
  virtual const std::string& dir() const = 0;
};

}  // namespace lazyfs::cache
