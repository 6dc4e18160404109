#include "fs/chunk_reader.h"

#include <algorithm>
#include <cstring>

#include "cache/fetch_lock.h"
#include "common/log.h"
#include "fs/estargz.h"

namespace lazyfs::fs {
namespace {

// How long a miss waits for another process fetching the same chunk before fetching it too (that process
// may be stuck). Far above a fetch's normal latency, below the FUSE read timeouts that matter to users.
constexpr std::chrono::milliseconds kHostWideWait(60'000);

using HostLocks = std::vector<std::pair<Sha256Digest, cache::InflightLock>>;

// The batch path's half of the host-wide single flight: takes, without waiting, the fetch lock of each
// candidate. A candidate another process is fetching right now, or that is in the cache by the time we hold
// its lock, leaves the batch; the Read loop comes back to it and finds it cached (or waits in FetchOnce).
HostLocks TakeHostLocks(cache::ChunkStore& store, std::vector<const ChunkRef*>& candidates) {
  HostLocks locks;
  std::erase_if(candidates, [&](const ChunkRef* c) {
    Result<cache::InflightLock> lock = cache::InflightLock::Acquire(store.dir(), c->digest, std::chrono::milliseconds(0));
    if (!lock) return false;  // no lock directory (read-only cache?): fetch without the host-wide lock
    if (!lock->held()) return true;
    Result<bool> cached = store.HasChunk(c->digest);
    if (cached && *cached) return true;
    locks.emplace_back(c->digest, std::move(*lock));
    return false;
  });
  return locks;
}

// Every path that hands out a chunk's bytes (a fetch, a flight another reader led, the cache, a batch)
// goes through this before they are copied: the bytes of a digest are fixed, but the size a TOC claims for
// it is not, and a chunk shared by digest across images must never be served as longer or shorter than
// it is (copying the claimed length would serve heap memory).
Result<std::shared_ptr<const std::string>> SizedAs(Result<std::shared_ptr<const std::string>> bytes,
                                                   const ChunkRef& chunk) {
  if (bytes && (*bytes)->size() != chunk.size) {
    return Corrupt(fmt::format("chunk {} is {} bytes, but the image says {}", chunk.digest.ToString(),
                               (*bytes)->size(), chunk.size));
  }
  return bytes;
}

}  // namespace

ChunkReader::ChunkReader(cache::ChunkStore& store, std::vector<LayerSource> layers, LayerRestreamer restream)
    : store_(store), layers_(std::move(layers)), restream_(std::move(restream)) {}

std::string ChunkReader::Where(uint32_t layer, const ChunkRef& chunk) const {
  std::string layer_name = layer < layers_.size() ? layers_[layer].descriptor.digest.ToString() : "?";
  return fmt::format("layer {} chunk {} (file offset {}, {} bytes)", layer_name, chunk.digest.ToString(),
                     chunk.file_offset, chunk.size);
}

Status ChunkReader::Read(uint32_t layer, const std::vector<ChunkRef>& chunks, uint64_t offset, uint64_t length,
                         char* dst, ReadOutcome* outcome) {
  counters_.reads.fetch_add(1, std::memory_order_relaxed);
  counters_.bytes_read.fetch_add(length, std::memory_order_relaxed);
  // First chunk whose end lies past `offset`.
  auto it = std::upper_bound(chunks.begin(), chunks.end(), offset,
                             [](uint64_t off, const ChunkRef& c) { return off < c.file_offset + c.size; });
  uint64_t end = offset + length;
  Batch batch;  // chunks fetched together by an earlier miss of this read
  while (offset < end) {
    if (it == chunks.end() || it->file_offset > offset) {
      return Internal(fmt::format("no chunk covers file offset {} in layer {}", offset, layer));
    }
    const ChunkRef& chunk = *it;
    uint64_t in_chunk = offset - chunk.file_offset;
    uint64_t n = std::min(end, chunk.file_offset + chunk.size) - offset;
    // A chunk this read already fetched is a miss served from memory, not a cache hit.
    Result<bool> hit = batch.contains(chunk.digest) ? Result<bool>(false)
                                                    : store_.ReadChunk(chunk.digest, chunk.size, in_chunk, n, dst);
    if (hit && *hit) {
      counters_.chunk_hits.fetch_add(1, std::memory_order_relaxed);
      if (outcome) ++outcome->chunk_hits;
    } else {
      // kCorrupt: the cache holds this digest under another size, so this image's claim is false; fetching
      // again cannot make it true.
      if (!hit && hit.error().code() == ErrorCode::kCorrupt) {
        counters_.errors.fetch_add(1, std::memory_order_relaxed);
        return std::move(hit).error().Context(Where(layer, chunk));
      }
      if (!hit) LogWarn("cache read of {} failed, fetching again: {}", chunk.digest.Short(), hit.error().ToString());
      counters_.chunk_misses.fetch_add(1, std::memory_order_relaxed);
      if (outcome) ++outcome->chunk_misses;
      counters_.misses_in_flight.fetch_add(1, std::memory_order_relaxed);
      Result<ChunkBytes> bytes = SizedAs(FetchForRead(layer, it, chunks.end(), end, batch), chunk);
      counters_.misses_in_flight.fetch_sub(1, std::memory_order_relaxed);
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
  Result<ChunkBytes> result = FetchHostWide(layer, chunk);
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

Result<ChunkReader::ChunkBytes> ChunkReader::FetchHostWide(uint32_t layer, const ChunkRef& chunk) {
  // The lock is held across the fetch, verify and store on purpose: it is the single flight. No LMDB
  // transaction or mutex of ours is held while waiting for it.
  Result<cache::InflightLock> lock = cache::InflightLock::Acquire(store_.dir(), chunk.digest, kHostWideWait);
  if (!lock) {
    LogDebug("no host-wide fetch lock for chunk {}: {}", chunk.digest.Short(), lock.error().ToString());
  } else if (!lock->held()) {
    LogWarn("another process has been fetching chunk {} for {} s; fetching it here too", chunk.digest.Short(),
            kHostWideWait.count() / 1000);
  }
  // Another process may have stored it while we waited, or just before we asked.
  if (std::optional<std::string> cached = LAZYFS_TRY(store_.GetChunk(chunk.digest))) {
    return SizedAs(std::make_shared<const std::string>(std::move(*cached)), chunk);
  }
  return FetchAndVerify(layer, chunk);
}

Result<ChunkReader::ChunkBytes> ChunkReader::FetchAndVerify(uint32_t layer, const ChunkRef& chunk) {
  if (layer >= layers_.size()) return Internal("chunk refers to a layer the image does not have");
  const LayerSource& source = layers_[layer];
  if (chunk.blob_length == 0) {
    // A plain layer's chunk: it only exists in the cache, so make the layer's chunks again.
    LAZYFS_TRY(restream_(layer, chunk.digest));
    std::optional<std::string> data = LAZYFS_TRY(store_.GetChunk(chunk.digest));
    if (!data) return NotFound("chunk missing from the cache even after streaming its layer again");
    return SizedAs(std::make_shared<const std::string>(std::move(*data)), chunk);
  }
  auto fetch_started = std::chrono::steady_clock::now();
  std::string member = LAZYFS_TRY(source.blobs->ReadRange(source.descriptor.digest, chunk.blob_offset, chunk.blob_length));
  counters_.fetches.fetch_add(1, std::memory_order_relaxed);
  counters_.fetched_bytes.fetch_add(member.size(), std::memory_order_relaxed);
  if (fetch_listener_) fetch_listener_(layer, member.size(), std::chrono::steady_clock::now() - fetch_started);
  return VerifyAndStore(chunk, member);
}

Result<ChunkReader::ChunkBytes> ChunkReader::VerifyAndStore(const ChunkRef& chunk, std::string_view member) {
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

Result<ChunkReader::ChunkBytes> ChunkReader::FetchForRead(uint32_t layer, std::vector<ChunkRef>::const_iterator first,
                                                          std::vector<ChunkRef>::const_iterator last, uint64_t end,
                                                          Batch& batch) {
  const ChunkRef& chunk = *first;
  if (auto found = batch.find(chunk.digest); found != batch.end()) return found->second;
  // Plain layers' chunks come from a restream, not from ranges: the one-chunk path handles them.
  if (chunk.blob_length == 0 || layer >= layers_.size()) return FetchOnce(layer, chunk);
  // Chunks that still have to come from the blob (the cache lookup happens before mu_): the read's later
  // ones first, then fetch-ahead's.
  auto wanted = [&](const ChunkRef& c) {
    if (c.blob_length == 0 || batch.contains(c.digest)) return false;
    Result<bool> cached = store_.HasChunk(c.digest);
    return !(cached && *cached);
  };
  std::vector<const ChunkRef*> candidates = {&chunk};
  for (auto it = std::next(first); it != last && it->file_offset < end && candidates.size() < kMaxBatchChunks; ++it) {
    if (it->blob_length == 0) break;
    if (wanted(*it)) candidates.push_back(&*it);
  }
  if (fetch_ahead_bytes_ > 0) {
    for (const ChunkRef* next : blob_order_->Neighbours(layer, chunk, fetch_ahead_bytes_, kMaxBatchChunks)) {
      if (candidates.size() >= kMaxBatchChunks) break;
      if (wanted(*next)) candidates.push_back(next);
    }
  }
  std::optional<Result<ChunkBytes>> first_result;
  for (auto& [c, result] : FetchGroup(layer, std::move(candidates))) {
    if (result) batch[c->digest] = *result;
    if (c == &chunk) first_result = std::move(result);
  }
  if (first_result) return *std::move(first_result);
  // Another thread or process leads the first chunk's flight: wait for it (or fetch it alone if it just
  // finished).
  return FetchOnce(layer, chunk);
}

ChunkReader::GroupResults ChunkReader::FetchGroup(uint32_t layer, std::vector<const ChunkRef*> candidates) {
  HostLocks host_locks = TakeHostLocks(store_, candidates);
  std::vector<std::pair<const ChunkRef*, std::shared_ptr<Inflight>>> led;
  GroupResults results;
  {
    std::lock_guard lock(mu_);
    for (const ChunkRef* c : candidates) {
      auto [slot, fresh] = inflight_.try_emplace(c->digest);
      if (!fresh) continue;  // another thread (or an equal chunk earlier in this group) fetches it
      slot->second = std::make_shared<Inflight>();
      led.emplace_back(c, slot->second);
    }
  }
  // Host-wide locks of chunks another thread here leads are dropped now: that thread waits for them.
  std::erase_if(host_locks, [&](const auto& held) {
    return std::none_of(led.begin(), led.end(), [&](const auto& l) { return l.first->digest == held.first; });
  });
  if (led.empty()) return results;
  const LayerSource& source = layers_[layer];
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [c, flight] : led) ranges.emplace_back(c->blob_offset, c->blob_length);
  auto fetch_started = std::chrono::steady_clock::now();
  Result<std::vector<std::string>> members = source.blobs->ReadRanges(source.descriptor.digest, ranges);
  if (members) {
    uint64_t bytes = 0;
    for (const std::string& m : *members) bytes += m.size();
    counters_.fetches.fetch_add(led.size(), std::memory_order_relaxed);
    counters_.fetched_bytes.fetch_add(bytes, std::memory_order_relaxed);
    if (fetch_listener_) fetch_listener_(layer, bytes, std::chrono::steady_clock::now() - fetch_started);
  }
  results.reserve(results.size() + led.size());
  for (size_t i = 0; i < led.size(); ++i) {
    const auto& [c, flight] = led[i];
    Result<ChunkBytes> result = members ? VerifyAndStore(*c, (*members)[i]) : Result<ChunkBytes>(members.error());
    {
      std::lock_guard lock(flight->mu);
      flight->result = result;
    }
    flight->done_cv.notify_all();
    {
      std::lock_guard lock(mu_);
      inflight_.erase(c->digest);
    }
    results.emplace_back(c, std::move(result));
  }
  return results;
}

ChunkReader::WarmOutcome ChunkReader::WarmGroup(uint32_t layer, std::span<const ChunkRef* const> chunks) {
  WarmOutcome outcome;
  auto failed = [&](Error error) {
    ++outcome.failed;
    if (!outcome.first_error) outcome.first_error = std::move(error);
  };
  std::vector<const ChunkRef*> candidates;
  for (const ChunkRef* c : chunks) {
    Result<bool> cached = store_.HasChunk(c->digest);
    if (cached && *cached) {
      ++outcome.cached;
    } else if (c->blob_length == 0 || layer >= layers_.size()) {
      // Plain layers' chunks come back by streaming the layer: one at a time, through the single flight.
      Result<bool> fetched = Warm(layer, *c);
      if (!fetched) {
        failed(std::move(fetched).error());
      } else {
        ++(*fetched ? outcome.fetched : outcome.cached);
      }
    } else {
      candidates.push_back(c);
    }
  }
  size_t asked = candidates.size();
  GroupResults results = FetchGroup(layer, std::move(candidates));
  outcome.cached += asked - results.size();  // another thread or process is fetching those
  for (auto& [c, result] : results) {
    if (result) {
      ++outcome.fetched;
    } else {
      failed(std::move(result).error().Context(Where(layer, *c)));
    }
  }
  return outcome;
}

}  // namespace lazyfs::fs
