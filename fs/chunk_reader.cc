#include "fs/chunk_reader.h"

#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "fs/estargz.h"

namespace lazyfs::fs {

ChunkReader::ChunkReader(cache::ChunkStore& store, std::vector<LayerSource> layers, LayerRestreamer restream)
    : store_(store), layers_(std::move(layers)), restream_(std::move(restream)) {}

std::string ChunkReader::Where(uint32_t layer, const ChunkRef& chunk) const {
  std::string layer_name = layer < layers_.size() ? layers_[layer].descriptor.digest.ToString() : "?";
  return fmt::format("layer {} chunk {} (file offset {}, {} bytes)", layer_name, chunk.digest.ToString(),
                     chunk.file_offset, chunk.size);
}

Status ChunkReader::Read(uint32_t layer, const std::vector<ChunkRef>& chunks, uint64_t offset, uint64_t length,
                         char* dst) {
  counters_.reads.fetch_add(1, std::memory_order_relaxed);
  counters_.bytes_read.fetch_add(length, std::memory_order_relaxed);
  // First chunk whose end lies past `offset`.
  auto it = std::upper_bound(chunks.begin(), chunks.end(), offset,
                             [](uint64_t off, const ChunkRef& c) { return off < c.file_offset + c.size; });
  uint64_t end = offset + length;
  while (offset < end) {
    if (it == chunks.end() || it->file_offset > offset) {
      return Internal(fmt::format("no chunk covers file offset {} in layer {}", offset, layer));
    }
    const ChunkRef& chunk = *it;
    uint64_t in_chunk = offset - chunk.file_offset;
    uint64_t n = std::min(end, chunk.file_offset + chunk.size) - offset;
    Result<bool> hit = store_.ReadChunk(chunk.digest, in_chunk, n, dst);
    if (hit && *hit) {
      counters_.chunk_hits.fetch_add(1, std::memory_order_relaxed);
    } else {
      if (!hit) LogWarn("cache read of {} failed, fetching again: {}", chunk.digest.Short(), hit.error().ToString());
      counters_.chunk_misses.fetch_add(1, std::memory_order_relaxed);
      Result<ChunkBytes> bytes = FetchOnce(layer, chunk);
      if (!bytes) {
        counters_.errors.fetch_add(1, std::memory_order_relaxed);
        return std::move(bytes).error().Context(Where(layer, chunk));
      }
      std::memcpy(dst, (*bytes)->data() + in_chunk, n);
    }
    dst += n;
    offset += n;
    ++it;
  }
  return Ok();
}

Result<bool> ChunkReader::Warm(uint32_t layer, const ChunkRef& chunk) {
  if (LAZYFS_TRY(store_.HasChunk(chunk.digest))) return false;
  Result<ChunkBytes> bytes = FetchOnce(layer, chunk);
  if (!bytes) return std::move(bytes).error().Context(Where(layer, chunk));
  return true;
}

Result<ChunkReader::ChunkBytes> ChunkReader::FetchOnce(uint32_t layer, const ChunkRef& chunk) {
  std::shared_ptr<Inflight> flight;
  bool leader = false;
  {
    std::lock_guard lock(mu_);
    auto [it, fresh] = inflight_.try_emplace(chunk.digest);
    if (fresh) it->second = std::make_shared<Inflight>();
    flight = it->second;
    leader = fresh;
  }
  if (!leader) {
    std::unique_lock lock(flight->mu);
    flight->done_cv.wait(lock, [&] { return flight->result.has_value(); });
    return *flight->result;
  }
  Result<ChunkBytes> result = FetchAndVerify(layer, chunk);
  {
    std::lock_guard lock(flight->mu);
    flight->result = result;
  }
  flight->done_cv.notify_all();
  {
    std::lock_guard lock(mu_);
    inflight_.erase(chunk.digest);
  }
  return result;
}

Result<ChunkReader::ChunkBytes> ChunkReader::FetchAndVerify(uint32_t layer, const ChunkRef& chunk) {
  if (layer >= layers_.size()) return Internal("chunk refers to a layer the image does not have");
  const LayerSource& source = layers_[layer];
  if (chunk.blob_length == 0) {
    // A plain layer's chunk: it only exists in the cache, so make the layer's chunks again.
    LAZYFS_TRY(restream_(layer));
    std::optional<std::string> data = LAZYFS_TRY(store_.GetChunk(chunk.digest));
    if (!data) return NotFound("chunk missing from the cache even after streaming its layer again");
    return std::make_shared<const std::string>(std::move(*data));
  }
  std::string member = LAZYFS_TRY(source.blobs->ReadRange(source.descriptor.digest, chunk.blob_offset, chunk.blob_length));
  counters_.fetches.fetch_add(1, std::memory_order_relaxed);
  counters_.fetched_bytes.fetch_add(member.size(), std::memory_order_relaxed);
  std::string data = LAZYFS_TRY(InflateChunk(member, chunk.size));
  Sha256Digest actual = Sha256Of(data);
  if (actual != chunk.digest) {
    return Corrupt(fmt::format("chunk bytes do not match chunkDigest (got {})", actual.ToString()));
  }
  // Only verified bytes reach the cache. A failed store still serves the verified bytes.
  if (Status stored = store_.PutChunk(chunk.digest, data); !stored) {
    LogWarn("could not cache chunk {}: {}", chunk.digest.Short(), stored.error().ToString());
  }
  return std::make_shared<const std::string>(std::move(data));
}

}  // namespace lazyfs::fs
