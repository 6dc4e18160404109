// The read and write paths of LmdbChunkStore (see lmdb_chunk_store.h); eviction, verify and counters are in
// lmdb_maintenance.cc.
#include "cache/lmdb_chunk_store.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "cache/lmdb_handles.h"
#include "cache/value_frame.h"
#include "common/log.h"

namespace lazyfs::cache {
namespace {

// Meta keys are caller strings of any length, but an LMDB key is 1..max_key_size() (511) bytes. A stored
// meta key is a one-byte tag followed by either the key itself, when it fits, or the raw sha256 of the key.
// The tag keeps the two forms apart (a short key can never equal a hashed one) and makes the empty key
// storable. sha256 rather than XXH3 because meta keys may be chosen by whoever publishes an image, and a
// 64-bit hash can be made to collide.
constexpr char kPlainKeyTag = 'k';
constexpr char kHashedKeyTag = 'h';

std::string MetaKey(std::string_view key, size_t max_key_size) {
  std::string stored;
  if (key.size() + 1 <= max_key_size) {
    stored.reserve(key.size() + 1);
    stored.push_back(kPlainKeyTag);
    stored.append(key);
  } else {
    stored.push_back(kHashedKeyTag);
    stored.append(Sha256Of(key).Raw());
  }
  return stored;
}

std::string MetaName(std::string_view key) {
  constexpr size_t kShown = 64;
  std::string name = "meta key \"" + std::string(key.substr(0, kShown));
  name += key.size() > kShown ? "...\"" : "\"";
  return name;
}

// Asks the kernel to read [data, data+size) of the map ahead in one go. Without it, a cold read copies
// through the map one page fault (and one small readahead window) at a time, far below disk speed.
void ReadAhead(const char* data, size_t size) {
  constexpr size_t kWorthIt = 64 << 10;
  if (size < kWorthIt) return;
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  auto start = reinterpret_cast<uintptr_t>(data) & ~(page - 1);
  auto end = reinterpret_cast<uintptr_t>(data) + size;
  ::madvise(reinterpret_cast<void*>(start), end - start, MADV_WILLNEED);
}

std::string EncodeLe(uint64_t value, size_t bytes) {
  std::string out(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return out;
}

uint64_t DecodeLe(std::string_view data) {
  uint64_t value = 0;
  for (size_t i = 0; i < data.size() && i < 8; ++i) value |= uint64_t{static_cast<unsigned char>(data[i])} << (8 * i);
  return value;
}

uint64_t DefaultMapSize(uint64_t max_bytes) { return std::max(kMinMapBytes, max_bytes * 2); }

}  // namespace

uint64_t InfoGet(MDB_txn* txn, MDB_dbi info, std::string_view key) {
  MDB_val k = AsVal(key);
  MDB_val v{};
  if (mdb_get(txn, info, &k, &v) != 0 || v.mv_size != 8) return 0;
  return DecodeLe(AsView(v));
}

Status InfoPut(MDB_txn* txn, MDB_dbi info, std::string_view key, uint64_t value) {
  std::string encoded = EncodeLe(value, 8);
  MDB_val k = AsVal(key);
  MDB_val v = AsVal(encoded);
  int rc = mdb_put(txn, info, &k, &v, 0);
  if (rc != 0) return LmdbError(rc, "update cache counter " + std::string(key));
  return Ok();
}

uint32_t AccessGet(MDB_txn* txn, MDB_dbi access, std::string_view digest_key) {
  MDB_val k = AsVal(digest_key);
  MDB_val v{};
  if (mdb_get(txn, access, &k, &v) != 0 || v.mv_size != 4) return 0;
  return static_cast<uint32_t>(DecodeLe(AsView(v)));
}

Result<std::unique_ptr<ChunkStore>> ChunkStore::Open(const CacheOptions& options) {
  return LmdbChunkStore::Create(options);
}

Result<std::unique_ptr<ChunkStore>> LmdbChunkStore::Create(const CacheOptions& options) {
  uint64_t wanted_cap = options.max_bytes;
  uint64_t map_size = options.map_size != 0 ? options.map_size
                                            : DefaultMapSize(wanted_cap != 0 ? wanted_cap : kDefaultMaxBytes);
  std::shared_ptr<LmdbEnv> env = LAZYFS_TRY(LmdbEnv::Acquire(options.dir, map_size));

  // One short write transaction settles the cap and, for a cache written before the counters existed,
  // counts the chunks once (a walk of leaf pages only: LMDB keeps a big value's size in its leaf node).
  uint64_t max_bytes = 0;
  {
    WriteTxn txn = LAZYFS_TRY(env->BeginWrite());
    bool changed = false;
    MDB_val k = AsVal(kInfoChunkBytes);
    MDB_val v{};
    int rc = mdb_get(txn.get(), env->info_dbi(), &k, &v);
    if (rc == MDB_NOTFOUND) {
      auto [count, bytes] = LAZYFS_TRY(WalkChunkTotals(txn.get(), env->chunks_dbi(), options.dir));
      LAZYFS_TRY(InfoPut(txn.get(), env->info_dbi(), kInfoChunkCount, count));
      LAZYFS_TRY(InfoPut(txn.get(), env->info_dbi(), kInfoChunkBytes, bytes));
      changed = true;
    } else if (rc != 0) {
      return LmdbError(rc, "read the counters of " + options.dir);
    }
    uint64_t recorded = InfoGet(txn.get(), env->info_dbi(), kInfoMaxBytes);
    if (wanted_cap != 0 && wanted_cap != recorded) {
      LAZYFS_TRY(InfoPut(txn.get(), env->info_dbi(), kInfoMaxBytes, wanted_cap));
      changed = true;
    }
    max_bytes = wanted_cap != 0 ? wanted_cap : (recorded != 0 ? recorded : kDefaultMaxBytes);
    if (changed) LAZYFS_TRY(txn.Commit("initialise the counters of " + options.dir));
  }
  return std::unique_ptr<ChunkStore>(new LmdbChunkStore(std::move(env), options, max_bytes));
}

LmdbChunkStore::LmdbChunkStore(std::shared_ptr<LmdbEnv> env, const CacheOptions& options, uint64_t max_bytes)
    : env_(std::move(env)),
      dir_(options.dir),
      max_bytes_(max_bytes),
      granularity_s_(static_cast<uint32_t>(std::max<int64_t>(1, options.access_granularity.count()))),
      flush_interval_(options.access_flush_interval),
      clock_(options.clock) {
  if (flush_interval_.count() > 0) flusher_ = std::thread([this] { FlusherLoop(); });
  if (options.background_eviction) {
    evictor_ = std::make_unique<BackgroundEvictor>(dir_, [this]() -> Status {
      LAZYFS_TRY(Evict(BackgroundTarget()));
      return Ok();
    });
  }
}

LmdbChunkStore::~LmdbChunkStore() {
  if (flusher_.joinable()) {
    {
      std::lock_guard lock(flush_mu_);
      stop_ = true;
    }
    flush_cv_.notify_all();
    flusher_.join();
  }
  if (Status flushed = FlushAccess(); !flushed) {
    LogDebug("cache {}: last access stamps not written: {}", dir_, flushed.error().ToString());
  }
}

void LmdbChunkStore::FlusherLoop() {
  std::unique_lock lock(flush_mu_);
  while (!stop_) {
    flush_cv_.wait_for(lock, flush_interval_, [this] { return stop_; });
    if (stop_) break;
    lock.unlock();  // no lock across the write transaction
    if (Status flushed = FlushAccess(); !flushed) {
      LogDebug("cache {}: access stamps not written: {}", dir_, flushed.error().ToString());
    }
    lock.lock();
  }
}

uint32_t LmdbChunkStore::Tick() const {
  int64_t now = clock_ ? clock_() : static_cast<int64_t>(::time(nullptr));
  return static_cast<uint32_t>(std::max<int64_t>(0, now) / granularity_s_);
}

uint64_t LmdbChunkStore::LowWater(uint64_t incoming) const {
  // Room for the new chunk plus a tenth of the cap, so the puts that follow do not each scan and evict.
  uint64_t margin = incoming + max_bytes_ / 10;
  return max_bytes_ > margin ? max_bytes_ - margin : 0;
}

Result<bool> LmdbChunkStore::ReadChunk(const Sha256Digest& digest, uint64_t chunk_size, uint64_t offset,
                                       uint64_t length, char* dst) {
  // The hot path of every FUSE read: one copy, straight from the map into the caller's buffer. The copy
  // happens inside the read transaction, and LMDB's MVCC keeps every page of this snapshot alive until the
  // transaction ends: a concurrent eviction or delete (any process) frees the pages only for writers that
  // start after we are done, so a reply in flight never sees its chunk freed under it.
  bool trusted = verified_.Contains(digest);
  Found found = LAZYFS_TRY(Lookup(env_->chunks_dbi(), digest.Raw(), trusted, [&](std::string_view data) -> Status {
    if (data.size() != chunk_size) {
      return Corrupt(fmt::format("chunk {} is {} bytes, but the image says {}", digest.ToString(), data.size(),
                                 chunk_size));
    }
    if (offset > data.size() || length > data.size() - offset) {
      return InvalidArgument(fmt::format("read [{}, +{}) past the end of chunk {} ({} bytes)", offset, length,
                                         digest.ToString(), data.size()));
    }
    if (length > 0) {
      ReadAhead(data.data() + offset, length);
      std::memcpy(dst, data.data() + offset, length);
    }
    return Ok();
  }));
  if (found == Found::kPresent) {
    if (!trusted) verified_.Insert(digest);
    access_.Note(digest, Tick());
    return true;
  }
  if (found == Found::kCorrupt) DropCorrupt(env_->chunks_dbi(), digest.Raw(), "chunk " + digest.ToString());
  return false;
}

Result<std::optional<std::string>> LmdbChunkStore::GetChunk(const Sha256Digest& digest) {
  Result<std::optional<std::string>> got = Get(env_->chunks_dbi(), digest.Raw(), [&] { return "chunk " + digest.ToString(); });
  if (got && got->has_value()) access_.Note(digest, Tick());
  return got;
}

// Presence only: the checksum is not verified here (that would hash the whole chunk). A damaged chunk
// reports present until a read finds the damage and drops it; readers handle absence anyway.
Result<bool> LmdbChunkStore::HasChunk(const Sha256Digest& digest) {
  ReadTxn txn = LAZYFS_TRY(env_->BeginRead());
  MDB_val key = AsVal(digest.Raw());
  MDB_val value{};
  int rc = mdb_get(txn.get(), env_->chunks_dbi(), &key, &value);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) return LmdbError(rc, "look up chunk " + digest.ToString() + " in " + dir_);
  return true;
}

Status LmdbChunkStore::PutChunk(const Sha256Digest& digest, std::string_view data) {
  // At most one eviction per put: the second attempt stores whatever the cap says (another process may have
  // filled the room we made), so a put never loops; a map still full afterwards is kNoSpace.
  for (int attempt = 0;; ++attempt) {
    Result<PutResult> put = TryPutChunk(digest, data, /*enforce_cap=*/attempt == 0);
    if (put && put->outcome != PutOutcome::kOverCap) {
      // The common case costs this one write transaction: eviction, when due, happens on another thread.
      if (evictor_ && put->chunk_bytes > HighWater()) evictor_->Wake();
      return Ok();
    }
    if (!put && (attempt > 0 || put.error().code() != ErrorCode::kNoSpace)) return std::move(put).error();
    uint64_t target = LowWater(data.size());
    if (put && evictor_) LogDebug("cache {}: at the cap before the evictor caught up; evicting inline", dir_);
    if (!put) {
      // The map or the disk is full below the cap: free a quarter of what is stored, so the retry and the
      // next puts find pages (LMDB reuses freed pages once no reader needs them).
      CacheCounters c = LAZYFS_TRY(Counters());
      target = std::min(target, c.chunk_bytes - c.chunk_bytes / 4);
      LogInfo("cache {}: {}; evicting down to {} bytes", dir_, put.error().ToString(), target);
    }
    LAZYFS_TRY(Evict(target));
  }
}

Result<LmdbChunkStore::PutResult> LmdbChunkStore::TryPutChunk(const Sha256Digest& digest, std::string_view data,
                                                              bool enforce_cap) {
  uint32_t tick = Tick();
  WriteTxn txn = LAZYFS_TRY(env_->BeginWrite());
  MDB_txn* t = txn.get();
  MDB_val k = AsVal(digest.Raw());
  MDB_val existing{};
  int rc = mdb_get(t, env_->chunks_dbi(), &k, &existing);
  if (rc == 0) {
    // Chunks are immutable: the stored copy (another process's) is as good as ours. Count it as a use.
    access_.Note(digest, tick);
    return PutResult{PutOutcome::kPresent, InfoGet(t, env_->info_dbi(), kInfoChunkBytes)};
  }
  if (rc != MDB_NOTFOUND) return LmdbError(rc, "look up chunk " + digest.ToString() + " in " + dir_);
  uint64_t bytes = InfoGet(t, env_->info_dbi(), kInfoChunkBytes);
  if (enforce_cap && bytes + data.size() > max_bytes_) return PutResult{PutOutcome::kOverCap, bytes};
  // The pending access stamps ride along in this transaction (lost with it if the commit fails: stamps are
  // advisory). Taken only now, so the early returns above lose none.
  std::vector<std::pair<Sha256Digest, uint32_t>> stamps = access_.Take();
  // The frame is written straight into the space LMDB reserves in the map: no framed copy is built.
  MDB_val v{FramedSize(data.size()), nullptr};
  rc = mdb_put(t, env_->chunks_dbi(), &k, &v, MDB_RESERVE | MDB_NOOVERWRITE);
  if (rc != 0) return LmdbError(rc, "store chunk " + digest.ToString() + " in " + dir_);
  WriteFrame(data, static_cast<char*>(v.mv_data));
  LAZYFS_TRY(InfoPut(t, env_->info_dbi(), kInfoChunkBytes, bytes + data.size()));
  LAZYFS_TRY(InfoPut(t, env_->info_dbi(), kInfoChunkCount, InfoGet(t, env_->info_dbi(), kInfoChunkCount) + 1));
  stamps.emplace_back(digest, tick);
  LAZYFS_TRY(WriteStamps(t, stamps));
  // The commit can also hit MDB_MAP_FULL (free-list pages) or ENOSPC; both are kNoSpace.
  LAZYFS_TRY(txn.Commit("store of chunk " + digest.ToString() + " in " + dir_));
  return PutResult{PutOutcome::kStored, bytes + data.size()};
}

Status LmdbChunkStore::WriteStamps(MDB_txn* txn, const std::vector<std::pair<Sha256Digest, uint32_t>>& stamps) {
  for (const auto& [digest, tick] : stamps) {
    MDB_val k = AsVal(digest.Raw());
    MDB_val present{};
    if (mdb_get(txn, env_->chunks_dbi(), &k, &present) != 0) continue;  // evicted meanwhile: no orphan stamp
    if (AccessGet(txn, env_->access_dbi(), digest.Raw()) >= tick) continue;
    std::string encoded = EncodeLe(tick, 4);
    MDB_val v = AsVal(encoded);
    int rc = mdb_put(txn, env_->access_dbi(), &k, &v, 0);
    if (rc != 0) return LmdbError(rc, "stamp chunk " + digest.ToString() + " in " + dir_);
  }
  return Ok();
}

Status LmdbChunkStore::FlushAccess() {
  std::vector<std::pair<Sha256Digest, uint32_t>> stamps = access_.Take();
  if (stamps.empty()) return Ok();
  WriteTxn txn = LAZYFS_TRY(env_->BeginWrite());
  LAZYFS_TRY(WriteStamps(txn.get(), stamps));
  return txn.Commit("access stamps in " + dir_);
}

Result<std::optional<uint64_t>> LmdbChunkStore::DeleteChunkInTxn(MDB_txn* txn, std::string_view key) {
  MDB_val k = AsVal(key);
  MDB_val v{};
  int rc = mdb_get(txn, env_->chunks_dbi(), &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<uint64_t>();
  if (rc != 0) return LmdbError(rc, "look up a chunk in " + dir_);
  uint64_t size = v.mv_size > kFrameHeaderBytes ? v.mv_size - kFrameHeaderBytes : 0;
  rc = mdb_del(txn, env_->chunks_dbi(), &k, nullptr);
  if (rc != 0) return LmdbError(rc, "delete a chunk in " + dir_);
  rc = mdb_del(txn, env_->access_dbi(), &k, nullptr);
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError(rc, "delete an access stamp in " + dir_);
  uint64_t bytes = InfoGet(txn, env_->info_dbi(), kInfoChunkBytes);
  uint64_t count = InfoGet(txn, env_->info_dbi(), kInfoChunkCount);
  LAZYFS_TRY(InfoPut(txn, env_->info_dbi(), kInfoChunkBytes, bytes > size ? bytes - size : 0));
  LAZYFS_TRY(InfoPut(txn, env_->info_dbi(), kInfoChunkCount, count > 0 ? count - 1 : 0));
  return std::optional<uint64_t>(size);
}

Status LmdbChunkStore::DeleteChunk(const Sha256Digest& digest) {
  WriteTxn txn = LAZYFS_TRY(env_->BeginWrite());
  std::optional<uint64_t> deleted = LAZYFS_TRY(DeleteChunkInTxn(txn.get(), digest.Raw()));
  if (!deleted) return Ok();  // nothing to commit; the destructor aborts
  return txn.Commit("delete of chunk " + digest.ToString() + " in " + dir_);
}

Result<std::optional<std::string>> LmdbChunkStore::GetMeta(std::string_view key) {
  return Get(env_->meta_dbi(), MetaKey(key, env_->max_key_size()), [&] { return MetaName(key); });
}

// Meta values are replaced: a newer parse of the same image supersedes the old one.
Status LmdbChunkStore::PutMeta(std::string_view key, std::string_view value) {
  Status put = TryPutMeta(key, value);
  if (put || put.error().code() != ErrorCode::kNoSpace) return put;
  // A full map or disk: make room among the chunks (meta values are never evicted) and retry once.
  CacheCounters c = LAZYFS_TRY(Counters());
  LAZYFS_TRY(Evict(std::min(LowWater(value.size()), c.chunk_bytes - c.chunk_bytes / 4)));
  return TryPutMeta(key, value);
}

Status LmdbChunkStore::TryPutMeta(std::string_view key, std::string_view value) {
  WriteTxn txn = LAZYFS_TRY(env_->BeginWrite());
  std::string stored_key = MetaKey(key, env_->max_key_size());
  MDB_val k = AsVal(stored_key);
  MDB_val v{FramedSize(value.size()), nullptr};
  int rc = mdb_put(txn.get(), env_->meta_dbi(), &k, &v, MDB_RESERVE);
  if (rc != 0) return LmdbError(rc, "store " + MetaName(key) + " in " + dir_);
  WriteFrame(value, static_cast<char*>(v.mv_data));
  return txn.Commit("store of " + MetaName(key) + " in " + dir_);
}

Status LmdbChunkStore::DeleteMeta(std::string_view key) {
  WriteTxn txn = LAZYFS_TRY(env_->BeginWrite());
  std::string stored_key = MetaKey(key, env_->max_key_size());
  MDB_val k = AsVal(stored_key);
  int rc = mdb_del(txn.get(), env_->meta_dbi(), &k, nullptr);
  if (rc == MDB_NOTFOUND) return Ok();
  if (rc != 0) return LmdbError(rc, "delete " + MetaName(key) + " in " + dir_);
  return txn.Commit("delete of " + MetaName(key) + " in " + dir_);
}

// Looks `key` up in a read transaction; if the stored value verifies, calls on_payload(payload) before the
// transaction ends (the payload points into the map). An error from on_payload is returned as is. With
// `trusted` (verified earlier by this process) the checksum is not computed again.
template <class OnPayload>
Result<LmdbChunkStore::Found> LmdbChunkStore::Lookup(MDB_dbi dbi, std::string_view key, bool trusted,
                                                     OnPayload&& on_payload) {
  ReadTxn txn = LAZYFS_TRY(env_->BeginRead());
  MDB_val k = AsVal(key);
  MDB_val v{};
  int rc = mdb_get(txn.get(), dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return Found::kAbsent;
  if (rc != 0) return LmdbError(rc, "look up a key in " + dir_);
  std::string_view stored = AsView(v);
  std::optional<std::string_view> payload;
  if (trusted && stored.size() >= kFrameHeaderBytes) {
    payload = stored.substr(kFrameHeaderBytes);
  } else {
    ReadAhead(stored.data(), stored.size());  // the checksum reads all of it
    payload = VerifiedPayload(stored);
  }
  if (!payload) return Found::kCorrupt;
  LAZYFS_TRY(on_payload(*payload));
  return Found::kPresent;
}

// A corrupt value is dropped (after the read transaction ended) and reported absent.
template <class Name>
Result<std::optional<std::string>> LmdbChunkStore::Get(MDB_dbi dbi, std::string_view key, Name&& name) {
  std::string out;
  Found found = LAZYFS_TRY(Lookup(dbi, key, /*trusted=*/false, [&](std::string_view data) -> Status {
    out.assign(data);
    return Ok();
  }));
  if (found == Found::kCorrupt) DropCorrupt(dbi, key, name());
  if (found != Found::kPresent) return std::nullopt;
  return std::optional<std::string>(std::move(out));
}

// Removes a value that failed its checksum, in its own short write transaction. It re-checks under the
// write lock, so a good value stored meanwhile by another process (after someone else's drop) survives.
// Failure only costs a log line: the caller already treats the value as absent.
void LmdbChunkStore::DropCorrupt(MDB_dbi dbi, std::string_view key, const std::string& name) {
  LogWarn("cache {}: {} failed its XXH3 checksum (on-disk corruption); dropping it", dir_, name);
  Status dropped = [&]() -> Status {
    WriteTxn txn = LAZYFS_TRY(env_->BeginWrite());
    MDB_val k = AsVal(key);
    MDB_val v{};
    int rc = mdb_get(txn.get(), dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return Ok();
    if (rc != 0) return LmdbError(rc, "look up " + name);
    if (VerifiedPayload(AsView(v))) return Ok();
    if (dbi == env_->chunks_dbi()) {
      LAZYFS_TRY(DeleteChunkInTxn(txn.get(), key));
    } else if ((rc = mdb_del(txn.get(), dbi, &k, nullptr)) != 0) {
      return LmdbError(rc, "delete " + name);
    }
    return txn.Commit("drop of " + name);
  }();
  if (!dropped) LogWarn("cache {}: could not drop {}: {}", dir_, name, dropped.error().ToString());
}

}  // namespace lazyfs::cache
