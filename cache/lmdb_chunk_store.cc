// LmdbChunkStore: the ChunkStore on one shared LMDB environment (see chunk_store.h for the contract and
// lmdb_env.h for how the environment is shared). Every method is one short transaction: a lookup copies
// the bytes out of the map before its read transaction ends; a store or delete is one write transaction
// that touches one key. No transaction is held across a log line, a lock wait or anything slow.
//
// Thread safety: thread-safe and multi-process safe; the object holds only constant state.
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>
#include <memory>
#include <string>

#include "cache/chunk_store.h"
#include "cache/lmdb_env.h"
#include "cache/lmdb_handles.h"
#include "cache/value_frame.h"
#include "common/log.h"

namespace lazyfs::cache {
namespace {

enum class Found { kAbsent, kPresent, kCorrupt };

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

// Chunks whose checksum this process has already verified. Hashing a whole 1 MiB chunk to serve a 4 KiB
// read would make every read cost a chunk's worth of XXH3, so each chunk is verified on its first read in
// a process and trusted afterwards. The table is lossy (direct-mapped, a slot per digest prefix): a slot
// taken by another digest only means verifying again. What it gives up: damage to a chunk that happens
// while a process keeps reading it is caught by the next process, not this one.
class VerifiedChunks {
 public:
  bool Contains(const Sha256Digest& d) const { return slots_[Slot(d)].load(std::memory_order_relaxed) == Tag(d); }
  void Insert(const Sha256Digest& d) { slots_[Slot(d)].store(Tag(d), std::memory_order_relaxed); }

 private:
  static constexpr size_t kSlots = 1 << 16;
  static size_t Slot(const Sha256Digest& d) { return Sha256DigestHash{}(d) & (kSlots - 1); }
  static uint64_t Tag(const Sha256Digest& d) {
    uint64_t tag;
    std::memcpy(&tag, d.bytes.data() + 8, sizeof tag);
    return tag | 1;  // never 0, the empty slot
  }
  std::array<std::atomic<uint64_t>, kSlots> slots_{};
};

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

class LmdbChunkStore final : public ChunkStore {
 public:
  LmdbChunkStore(std::shared_ptr<LmdbEnv> env, std::string dir) : env_(std::move(env)), dir_(std::move(dir)) {}

  Result<bool> ReadChunk(const Sha256Digest& digest, uint64_t offset, uint64_t length, char* dst) override {
    // The hot path of every FUSE read: one copy, straight from the map into the caller's buffer.
    bool trusted = verified_.Contains(digest);
    Found found = LAZYFS_TRY(Lookup(env_->chunks_dbi(), digest.Raw(), trusted, [&](std::string_view data) -> Status {
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
    if (found == Found::kPresent && !trusted) verified_.Insert(digest);
    return Resolve(found, env_->chunks_dbi(), digest.Raw(), [&] { return "chunk " + digest.ToString(); });
  }

  Result<std::optional<std::string>> GetChunk(const Sha256Digest& digest) override {
    return Get(env_->chunks_dbi(), digest.Raw(), [&] { return "chunk " + digest.ToString(); });
  }

  // Presence only: the checksum is not verified here (that would hash the whole chunk). A damaged chunk
  // reports present until a read finds the damage and drops it; readers handle absence anyway.
  Result<bool> HasChunk(const Sha256Digest& digest) override {
    ReadTxn txn = LAZYFS_TRY(env_->BeginRead());
    MDB_val key = AsVal(digest.Raw());
    MDB_val value{};
    int rc = mdb_get(txn.get(), env_->chunks_dbi(), &key, &value);
    if (rc == MDB_NOTFOUND) return false;
    if (rc != 0) return LmdbError(rc, "look up chunk " + digest.ToString() + " in " + dir_);
    return true;
  }

  Status PutChunk(const Sha256Digest& digest, std::string_view data) override {
    return Put(env_->chunks_dbi(), digest.Raw(), data, /*overwrite=*/false,
               [&] { return "chunk " + digest.ToString(); });
  }

  Status DeleteChunk(const Sha256Digest& digest) override {
    WriteTxn txn = LAZYFS_TRY(env_->BeginWrite());
    MDB_val key = AsVal(digest.Raw());
    int rc = mdb_del(txn.get(), env_->chunks_dbi(), &key, nullptr);
    if (rc == MDB_NOTFOUND) return Ok();  // nothing to commit; the destructor aborts
    if (rc != 0) return LmdbError(rc, "delete chunk " + digest.ToString() + " in " + dir_);
    return txn.Commit("delete of chunk " + digest.ToString() + " in " + dir_);
  }

  Result<std::optional<std::string>> GetMeta(std::string_view key) override {
    return Get(env_->meta_dbi(), MetaKey(key, env_->max_key_size()), [&] { return MetaName(key); });
  }

  // Meta values are replaced: a newer parse of the same image supersedes the old one.
  Status PutMeta(std::string_view key, std::string_view value) override {
    return Put(env_->meta_dbi(), MetaKey(key, env_->max_key_size()), value, /*overwrite=*/true,
               [&] { return MetaName(key); });
  }

  Result<CacheCounters> Counters() override {
    CacheCounters counters;
    {
      ReadTxn txn = LAZYFS_TRY(env_->BeginRead());
      MDB_stat stat{};
      int rc = mdb_stat(txn.get(), env_->meta_dbi(), &stat);
      if (rc != 0) return LmdbError(rc, "stat meta database in " + dir_);
      counters.meta_entries = stat.ms_entries;

      // A cursor walk reads only leaf pages: a big value's size sits in its leaf node, and LMDB hands back
      // a pointer to its overflow pages without touching them, so this does not read the chunk data.
      MDB_cursor* raw_cursor = nullptr;
      rc = mdb_cursor_open(txn.get(), env_->chunks_dbi(), &raw_cursor);
      if (rc != 0) return LmdbError(rc, "open cursor on chunks in " + dir_);
      Cursor cursor(raw_cursor);
      MDB_val key{};
      MDB_val value{};
      for (rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_FIRST); rc == 0;
           rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT)) {
        ++counters.chunks;
        if (value.mv_size > kFrameHeaderBytes) counters.chunk_bytes += value.mv_size - kFrameHeaderBytes;
      }
      if (rc != MDB_NOTFOUND) return LmdbError(rc, "walk chunks in " + dir_);
    }
    counters.file_bytes = LAZYFS_TRY(env_->DataFileSize());
    return counters;
  }

  const std::string& dir() const override { return dir_; }

 private:
  // Looks `key` up in a read transaction; if the stored value verifies, calls on_payload(payload) before
  // the transaction ends (the payload points into the map). An error from on_payload is returned as is.
  // With `trusted` (verified earlier by this process) the checksum is not computed again.
  template <class OnPayload>
  Result<Found> Lookup(MDB_dbi dbi, std::string_view key, bool trusted, OnPayload&& on_payload) {
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

  // Turns a lookup outcome into present/absent; a corrupt value is dropped (after the read transaction
  // ended) and reported absent. `name` builds the log name only on that rare path.
  template <class Name>
  bool Resolve(Found found, MDB_dbi dbi, std::string_view key, Name&& name) {
    if (found == Found::kCorrupt) {
      DropCorrupt(dbi, key, name());
      return false;
    }
    return found == Found::kPresent;
  }

  template <class Name>
  Result<std::optional<std::string>> Get(MDB_dbi dbi, std::string_view key, Name&& name) {
    std::string out;
    Found found = LAZYFS_TRY(Lookup(dbi, key, /*trusted=*/false, [&](std::string_view data) -> Status {
      out.assign(data);
      return Ok();
    }));
    if (!Resolve(found, dbi, key, name)) return std::nullopt;
    return std::optional<std::string>(std::move(out));
  }

  // One write transaction storing framed `data` under `key`. The frame is written straight into the space
  // LMDB reserves in the map (MDB_RESERVE), so no framed copy is built. Without `overwrite`, a present key
  // is left alone (MDB_NOOVERWRITE): chunks are immutable, so the stored copy is as good as ours.
  template <class Name>
  Status Put(MDB_dbi dbi, std::string_view key, std::string_view data, bool overwrite, Name&& name) {
    WriteTxn txn = LAZYFS_TRY(env_->BeginWrite());
    MDB_val k = AsVal(key);
    MDB_val v{FramedSize(data.size()), nullptr};
    unsigned flags = MDB_RESERVE | (overwrite ? 0u : static_cast<unsigned>(MDB_NOOVERWRITE));
    int rc = mdb_put(txn.get(), dbi, &k, &v, flags);
    if (rc == MDB_KEYEXIST) return Ok();  // already stored; the destructor aborts the empty transaction
    if (rc == MDB_MAP_FULL) {
      // Eviction seam: the eviction work (access-stamp database, size cap) frees space here, then retries
      // once, so a full map never fails a read. Until it lands a full cache refuses new values with
      // kNoSpace, and existing values stay readable.
      return LmdbError(rc, "store " + name() + " in " + dir_);
    }
    if (rc != 0) return LmdbError(rc, "store " + name() + " in " + dir_);
    WriteFrame(data, static_cast<char*>(v.mv_data));
    // The commit can also hit MDB_MAP_FULL (free-list pages); LmdbError maps that to kNoSpace too.
    return txn.Commit("store of " + name() + " in " + dir_);
  }

  // Removes a value that failed its checksum, in its own short write transaction. It re-checks under the
  // write lock, so a good value stored meanwhile by another process (after someone else's drop) survives.
  // Failure only costs a log line: the caller already treats the value as absent.
  void DropCorrupt(MDB_dbi dbi, std::string_view key, const std::string& name) {
    LogWarn("cache {}: {} failed its XXH3 checksum (on-disk corruption); dropping it", dir_, name);
    Status dropped = [&]() -> Status {
      WriteTxn txn = LAZYFS_TRY(env_->BeginWrite());
      MDB_val k = AsVal(key);
      MDB_val v{};
      int rc = mdb_get(txn.get(), dbi, &k, &v);
      if (rc == MDB_NOTFOUND) return Ok();
      if (rc != 0) return LmdbError(rc, "look up " + name);
      if (VerifiedPayload(AsView(v))) return Ok();
      rc = mdb_del(txn.get(), dbi, &k, nullptr);
      if (rc != 0) return LmdbError(rc, "delete " + name);
      return txn.Commit("drop of " + name);
    }();
    if (!dropped) LogWarn("cache {}: could not drop {}: {}", dir_, name, dropped.error().ToString());
  }

  // Constant after construction.
  const std::shared_ptr<LmdbEnv> env_;
  const std::string dir_;

  VerifiedChunks verified_;  // lock-free; see VerifiedChunks
};

}  // namespace

Result<std::unique_ptr<ChunkStore>> ChunkStore::Open(const CacheOptions& options) {
  std::shared_ptr<LmdbEnv> env = LAZYFS_TRY(LmdbEnv::Acquire(options.dir, options.map_size));
  return std::unique_ptr<ChunkStore>(new LmdbChunkStore(std::move(env), options.dir));
}

}  // namespace lazyfs::cache
