// The maintenance half of LmdbChunkStore (see lmdb_chunk_store.h): eviction, bulk deletes, verify and
// counters. Each works as a scan in a read transaction (or in bounded batches of them) followed by short
// write transactions, so mounts keep reading and writing while it runs.
#include <algorithm>
#include <cstring>

#include "cache/lmdb_chunk_store.h"
#include "cache/lmdb_handles.h"
#include "cache/value_frame.h"
#include "common/log.h"

namespace lazyfs::cache {
namespace {

// Write transactions of an eviction delete this many chunks each. The first is small: when the map is
// completely full, even a delete needs a few fresh pages (copy-on-write), and freed pages become reusable
// only by later transactions. The rest stay small too: LMDB has one writer at a time, and a put of a
// reader's missed chunk waits for the batch in progress (commits do not fsync, so more of them is cheap).
constexpr size_t kFirstDeleteBatch = 8;
constexpr size_t kDeleteBatch = 32;

// A verify batch copies at most this many values (or bytes) out of one read transaction.
constexpr size_t kVerifyBatchValues = 256;
constexpr uint64_t kVerifyBatchBytes = uint64_t{64} << 20;

struct Candidate {
  uint32_t tick;
  Sha256Digest digest;
};

struct Copied {
  std::string key;
  std::string stored;  // the framed value as stored
};

}  // namespace

Result<EvictionReport> LmdbChunkStore::Evict(uint64_t target_bytes) {
  auto started = std::chrono::steady_clock::now();
  EvictionReport report;
  // This process's recent reads must count: write them before the scan. A failure (say, a full map) only
  // makes those chunks look older than they are.
  if (Status flushed = FlushAccess(); !flushed) {
    LogDebug("cache {}: access stamps not written before eviction: {}", dir_, flushed.error().ToString());
  }

  // Scan: every chunk with its last-access tick (a chunk without a stamp counts as oldest). The walk reads
  // leaf pages only, never the chunk data.
  std::vector<Candidate> candidates;
  {
    ReadTxn txn = LAZYFS_TRY(env_->BeginRead());
    uint64_t bytes = InfoGet(txn.get(), env_->info_dbi(), kInfoChunkBytes);
    if (bytes <= target_bytes) {
      report.remaining_bytes = bytes;
      return report;
    }
    MDB_cursor* raw_cursor = nullptr;
    int rc = mdb_cursor_open(txn.get(), env_->chunks_dbi(), &raw_cursor);
    if (rc != 0) return LmdbError(rc, "open cursor on chunks in " + dir_);
    Cursor cursor(raw_cursor);
    MDB_val key{};
    MDB_val value{};
    for (rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT)) {
      std::optional<Sha256Digest> digest = Sha256Digest::FromRaw(AsView(key));
      if (!digest) continue;
      candidates.push_back({AccessGet(txn.get(), env_->access_dbi(), AsView(key)), *digest});
    }
    if (rc != MDB_NOTFOUND) return LmdbError(rc, "walk chunks in " + dir_);
  }
  // Oldest first; equal ticks in digest order (the walk's), which is as good as random.
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.tick < b.tick; });

  size_t next = 0;
  size_t batch = kFirstDeleteBatch;
  bool done = false;
  while (!done && next < candidates.size()) {
    WriteTxn txn = LAZYFS_TRY(env_->BeginWrite());
    MDB_txn* t = txn.get();
    uint64_t evicted_chunks = 0;
    uint64_t evicted_bytes = 0;
    size_t end = std::min(candidates.size(), next + batch);
    for (; next < end; ++next) {
      // Another process (or this one, concurrently) may have evicted enough already.
      if (InfoGet(t, env_->info_dbi(), kInfoChunkBytes) <= target_bytes) {
        done = true;
        break;
      }
      const Candidate& c = candidates[next];
      if (AccessGet(t, env_->access_dbi(), c.digest.Raw()) > c.tick) continue;  // read since the scan
      std::optional<uint64_t> size = LAZYFS_TRY(DeleteChunkInTxn(t, c.digest.Raw()));
      if (!size) continue;
      ++evicted_chunks;
      evicted_bytes += *size;
    }
    if (evicted_chunks > 0) {
      MDB_dbi info = env_->info_dbi();
      LAZYFS_TRY(InfoPut(t, info, kInfoEvictedChunks, InfoGet(t, info, kInfoEvictedChunks) + evicted_chunks));
      LAZYFS_TRY(InfoPut(t, info, kInfoEvictedBytes, InfoGet(t, info, kInfoEvictedBytes) + evicted_bytes));
      LAZYFS_TRY(txn.Commit("eviction in " + dir_));
      report.chunks += evicted_chunks;
      report.bytes += evicted_bytes;
    }
    batch = kDeleteBatch;
  }
  if (report.chunks > 0) {
    // LMDB keeps the last two snapshots intact (two meta pages), so pages freed by transaction T are reused
    // only from T+2 on. One more small commit makes the room just freed usable by the put that asked for
    // it, which matters when the map is full. Its failure only delays the reuse.
    Status settled = [&]() -> Status {
      WriteTxn txn = LAZYFS_TRY(env_->BeginWrite());
      MDB_dbi info = env_->info_dbi();
      LAZYFS_TRY(InfoPut(txn.get(), info, kInfoEvictedChunks, InfoGet(txn.get(), info, kInfoEvictedChunks)));
      return txn.Commit("settle after eviction in " + dir_);
    }();
    if (!settled) LogDebug("cache {}: {}", dir_, settled.error().ToString());
  }
  {
    ReadTxn txn = LAZYFS_TRY(env_->BeginRead());
    report.remaining_bytes = InfoGet(txn.get(), env_->info_dbi(), kInfoChunkBytes);
  }
  if (report.chunks > 0) {
    auto took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
    LogInfo("cache {}: evicted {} chunk(s), {} bytes in {} us; {} bytes stored (target {})", dir_, report.chunks,
            report.bytes, took.count(), report.remaining_bytes, target_bytes);
  }
  return report;
}

Result<EvictionReport> LmdbChunkStore::DeleteChunks(const std::vector<Sha256Digest>& digests) {
  EvictionReport report;
  for (size_t next = 0; next < digests.size();) {
    WriteTxn txn = LAZYFS_TRY(env_->BeginWrite());
    size_t end = std::min(digests.size(), next + kDeleteBatch);
    uint64_t deleted_chunks = 0;
    for (; next < end; ++next) {
      std::optional<uint64_t> size = LAZYFS_TRY(DeleteChunkInTxn(txn.get(), digests[next].Raw()));
      if (!size) continue;
      ++deleted_chunks;
      report.bytes += *size;
    }
    if (deleted_chunks > 0) LAZYFS_TRY(txn.Commit("delete of chunks in " + dir_));
    report.chunks += deleted_chunks;
  }
  ReadTxn txn = LAZYFS_TRY(env_->BeginRead());
  report.remaining_bytes = InfoGet(txn.get(), env_->info_dbi(), kInfoChunkBytes);
  return report;
}

Result<VerifyReport> LmdbChunkStore::Verify(const BadValueReporter& report_bad) {
  VerifyReport report;
  for (MDB_dbi dbi : {env_->chunks_dbi(), env_->meta_dbi()}) {
    bool chunks = dbi == env_->chunks_dbi();
    std::string last_key;
    bool started = false;
    for (;;) {
      // Copy a batch out, then hash it with no transaction open: a long read transaction would pin every
      // page it sees and make the file grow while writers keep going.
      std::vector<Copied> batch;
      {
        ReadTxn txn = LAZYFS_TRY(env_->BeginRead());
        MDB_cursor* raw_cursor = nullptr;
        int rc = mdb_cursor_open(txn.get(), dbi, &raw_cursor);
        if (rc != 0) return LmdbError(rc, "open cursor in " + dir_);
        Cursor cursor(raw_cursor);
        MDB_val key{};
        MDB_val value{};
        if (!started) {
          rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_FIRST);
        } else {
          key = AsVal(last_key);
          rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_SET_RANGE);
          if (rc == 0 && AsView(key) == last_key) rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT);
        }
        uint64_t batch_bytes = 0;
        for (; rc == 0; rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT)) {
          batch.push_back({std::string(AsView(key)), std::string(AsView(value))});
          batch_bytes += value.mv_size;
          if (batch.size() >= kVerifyBatchValues || batch_bytes >= kVerifyBatchBytes) break;
        }
        if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError(rc, "walk values in " + dir_);
      }
      if (batch.empty()) break;
      started = true;
      last_key = batch.back().key;
      for (const Copied& c : batch) {
        std::optional<std::string_view> payload = VerifiedPayload(c.stored);
        std::optional<Sha256Digest> digest = chunks ? Sha256Digest::FromRaw(c.key) : std::nullopt;
        std::string why;
        if (!payload) {
          why = "stored value fails its XXH3 checksum";
        } else if (chunks && (!digest || Sha256Of(*payload) != *digest)) {
          why = digest ? "chunk bytes do not match their sha256" : "malformed chunk key";
        }
        if (chunks) {
          ++report.chunks;
          report.bytes += payload ? payload->size() : 0;
        } else {
          ++report.meta_entries;
        }
        if (why.empty()) continue;
        chunks ? ++report.bad_chunks : ++report.bad_meta;
        report_bad(digest, why);
        // Drop it unless it changed meanwhile (a good copy stored again by a mount).
        WriteTxn txn = LAZYFS_TRY(env_->BeginWrite());
        MDB_val k = AsVal(c.key);
        MDB_val v{};
        if (mdb_get(txn.get(), dbi, &k, &v) != 0 || AsView(v) != c.stored) continue;
        if (chunks) {
          LAZYFS_TRY(DeleteChunkInTxn(txn.get(), c.key));
        } else if (int rc = mdb_del(txn.get(), dbi, &k, nullptr); rc != 0) {
          return LmdbError(rc, "drop a bad meta value in " + dir_);
        }
        LAZYFS_TRY(txn.Commit("drop of a bad value in " + dir_));
      }
    }
  }

  // The tracked counters must equal a walk; they always should (same transactions), but verify is where
  // a surprise gets fixed rather than trusted. One write transaction so no put slips between walk and fix.
  WriteTxn txn = LAZYFS_TRY(env_->BeginWrite());
  auto [count, bytes] = LAZYFS_TRY(WalkChunkTotals(txn.get(), env_->chunks_dbi(), dir_));
  if (count != InfoGet(txn.get(), env_->info_dbi(), kInfoChunkCount) ||
      bytes != InfoGet(txn.get(), env_->info_dbi(), kInfoChunkBytes)) {
    LAZYFS_TRY(InfoPut(txn.get(), env_->info_dbi(), kInfoChunkCount, count));
    LAZYFS_TRY(InfoPut(txn.get(), env_->info_dbi(), kInfoChunkBytes, bytes));
    LAZYFS_TRY(txn.Commit("counter fix in " + dir_));
    report.counters_fixed = true;
  }
  return report;
}

Result<CacheCounters> LmdbChunkStore::Counters() {
  CacheCounters counters;
  {
    ReadTxn txn = LAZYFS_TRY(env_->BeginRead());
    MDB_dbi info = env_->info_dbi();
    counters.chunks = InfoGet(txn.get(), info, kInfoChunkCount);
    counters.chunk_bytes = InfoGet(txn.get(), info, kInfoChunkBytes);
    counters.evicted_chunks = InfoGet(txn.get(), info, kInfoEvictedChunks);
    counters.evicted_bytes = InfoGet(txn.get(), info, kInfoEvictedBytes);
    MDB_stat stat{};
    int rc = mdb_stat(txn.get(), env_->meta_dbi(), &stat);
    if (rc != 0) return LmdbError(rc, "stat meta database in " + dir_);
    counters.meta_entries = stat.ms_entries;
    rc = mdb_stat(txn.get(), env_->access_dbi(), &stat);
    if (rc != 0) return LmdbError(rc, "stat access database in " + dir_);
    counters.access_entries = stat.ms_entries;
  }
  counters.max_bytes = max_bytes_;
  counters.file_bytes = LAZYFS_TRY(env_->DataFileSize());
  counters.map_bytes = env_->MapSize();
  return counters;
}

Result<ChunkTotals> WalkChunkTotals(MDB_txn* txn, MDB_dbi chunks, const std::string& dir) {
  MDB_cursor* raw_cursor = nullptr;
  int rc = mdb_cursor_open(txn, chunks, &raw_cursor);
  if (rc != 0) return LmdbError(rc, "open cursor on chunks in " + dir);
  Cursor cursor(raw_cursor);
  ChunkTotals totals;
  MDB_val key{};
  MDB_val value{};
  for (rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT)) {
    ++totals.count;
    if (value.mv_size > kFrameHeaderBytes) totals.bytes += value.mv_size - kFrameHeaderBytes;
  }
  if (rc != MDB_NOTFOUND) return LmdbError(rc, "walk chunks in " + dir);
  return totals;
}

}  // namespace lazyfs::cache
