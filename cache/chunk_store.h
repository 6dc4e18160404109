// ChunkStore: the host-wide, content-addressed cache in one LMDB environment, shared by every lazyfs
// process (every mount, every sandbox). Databases:
//   chunks: raw sha256 (32 bytes) -> [8-byte little-endian XXH3 of the data][data]
//   meta:   string key -> opaque value (parsed TOCs, merged trees), same checksum framing
// Only bytes already verified against their sha256 may be Put: the store trusts its callers on that, and
// the XXH3 framing catches on-disk corruption on Get (a bad value is dropped and reported as absent).
//
// Thread safety: all methods are thread-safe and multi-process safe (LMDB). Reads never block on writers.
// No LMDB transaction outlives a call: values are copied out before the read transaction ends. A store
// must not be used in a child after fork(); the child opens its own.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/digest.h"
#include "common/result.h"

namespace lazyfs::cache {

inline constexpr const char* kDefaultCacheDir = "/var/lib/lazyfs/cache";

struct CacheOptions {
  std::string dir = kDefaultCacheDir;
  // LMDB map size: the most the cache file can grow to (sparse; costs nothing until used).
  uint64_t map_size = uint64_t{64} << 30;
};

struct CacheCounters {
  uint64_t chunks = 0;        // entries in the chunks database
  uint64_t chunk_bytes = 0;   // data bytes in them
  uint64_t meta_entries = 0;
  uint64_t file_bytes = 0;    // size of the LMDB data file
};

class ChunkStore {
 public:
  // Opens (creating the directory and environment if needed) and clears stale reader slots. Opening the same
  // dir again in one process is fine: the stores share the process's one LMDB environment (LMDB forbids two),
  // and options.map_size then only applies to the first. Every process on the host may open the same dir.
  static Result<std::unique_ptr<ChunkStore>> Open(const CacheOptions& options);
  virtual ~ChunkStore() = default;

  // Copies bytes [offset, offset + length) of chunk `digest` into `dst` (which has room for `length`).
  // Returns false if the chunk is absent; a range past the chunk's end is kInvalidArgument.
  virtual Result<bool> ReadChunk(const Sha256Digest& digest, uint64_t offset, uint64_t length, char* dst) = 0;
  // The whole chunk, or nullopt if absent.
  virtual Result<std::optional<std::string>> GetChunk(const Sha256Digest& digest) = 0;
  // Presence only: cheap, does not verify the checksum (a damaged chunk is dropped by the next read of it).
  virtual Result<bool> HasChunk(const Sha256Digest& digest) = 0;
  // Stores a verified chunk. Storing a present chunk is a no-op. A full map is kNoSpace (until eviction).
  virtual Status PutChunk(const Sha256Digest& digest, std::string_view data) = 0;
  // Removes a chunk (absent is fine).
  virtual Status DeleteChunk(const Sha256Digest& digest) = 0;

  // Meta keys may be any length (keys past LMDB's 511-byte limit are stored by their sha256). PutMeta
  // replaces an existing value.
  virtual Result<std::optional<std::string>> GetMeta(std::string_view key) = 0;
  virtual Status PutMeta(std::string_view key, std::string_view value) = 0;

  virtual Result<CacheCounters> Counters() = 0;
  virtual const std::string& dir() const = 0;
};

}  // namespace lazyfs::cache
