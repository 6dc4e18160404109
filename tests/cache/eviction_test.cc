// Size cap, LRU eviction, access batching, reads during eviction, and verify.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cache/background_evictor.h"
#include "cache/chunk_store.h"
#include "cache/lmdb_env.h"

#include "common/fd.h"
#include "tests/test_support.h"

namespace lazyfs::cache {
namespace {

using testing::TempDir;

std::string Bytes(size_t size, uint64_t seed) { return testing::PseudoRandomBytes(size, seed); }

constexpr size_t kChunk = 64 << 10;

// A store on a fake clock (1-second ticks) with no background flusher and, unless asked, no background
// evictor: the tests decide when stamps are written, and puts past the cap evict inline.
struct ClockedStore {
  std::shared_ptr<std::atomic<int64_t>> now = std::make_shared<std::atomic<int64_t>>(1000);
  std::unique_ptr<ChunkStore> store;

  ClockedStore(const std::string& dir, uint64_t max_bytes, bool background_eviction = false) {
    auto clock = now;
    auto opened = ChunkStore::Open(CacheOptions{.dir = dir,
                                                .map_size = uint64_t{256} << 20,
                                                .max_bytes = max_bytes,
                                                .access_granularity = std::chrono::seconds(1),
                                                .access_flush_interval = std::chrono::milliseconds(0),
                                                .clock = [clock] { return clock->load(); },
                                                .background_eviction = background_eviction});
    REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().ToString()));
    store = std::move(*opened);
  }
  ChunkStore* operator->() { return store.get(); }
};

bool Has(ChunkStore& store, const std::string& data) {
  auto has = store.HasChunk(Sha256Of(data));
  REQUIRE(has);
  return *has;
}

bool Read(ChunkStore& store, const std::string& data) {
  char buf[16];
  auto read = store.ReadChunk(Sha256Of(data), data.size(), 0, sizeof buf, buf);
  REQUIRE(read);
  return *read;
}

TEST_CASE("Eviction: a put past the cap evicts the least recently used chunks first") {
  TempDir dir;
  ClockedStore s(dir.path, 10 * kChunk);
  std::vector<std::string> chunks;
  for (uint64_t i = 0; i < 10; ++i) {
    s.now->store(100 + static_cast<int64_t>(i));
    chunks.push_back(Bytes(kChunk, i));
    REQUIRE(s->PutChunk(Sha256Of(chunks.back()), chunks.back()));
  }
  // Chunks 0 and 1 are read late, so 2 and 3 are now the oldest.
  s.now->store(200);
  CHECK(Read(*s.store, chunks[0]));
  CHECK(Read(*s.store, chunks[1]));
  s.now->store(201);
  std::string extra = Bytes(kChunk, 99);
  REQUIRE(s->PutChunk(Sha256Of(extra), extra));
  // The low-water mark is cap - chunk - cap/10 = 8 chunks: two go to make room for the new one.
  CHECK(Has(*s.store, chunks[0]));
  CHECK(Has(*s.store, chunks[1]));
  CHECK_FALSE(Has(*s.store, chunks[2]));
  CHECK_FALSE(Has(*s.store, chunks[3]));
  for (size_t i = 4; i < 10; ++i) CHECK(Has(*s.store, chunks[i]));
  CHECK(Has(*s.store, extra));
  auto c = s->Counters();
  REQUIRE(c);
  CHECK(c->chunks == 9);
  CHECK(c->chunk_bytes == 9 * kChunk);
  CHECK(c->chunk_bytes <= c->max_bytes);
  CHECK(c->evicted_chunks == 2);
  CHECK(c->evicted_bytes == 2 * kChunk);
}

TEST_CASE("Eviction: the cap holds over many puts, and the counters match the contents") {
  TempDir dir;
  ClockedStore s(dir.path, 16 * kChunk);
  std::vector<std::string> chunks;
  for (uint64_t i = 0; i < 100; ++i) {
    s.now->store(static_cast<int64_t>(1000 + i));
    chunks.push_back(Bytes(kChunk, 1000 + i));
    REQUIRE(s->PutChunk(Sha256Of(chunks.back()), chunks.back()));
    auto c = s->Counters();
    REQUIRE(c);
    CHECK(c->chunk_bytes <= 16 * kChunk);
  }
  size_t present = 0;
  for (const std::string& data : chunks) present += Has(*s.store, data) ? 1 : 0;
  auto c = s->Counters();
  REQUIRE(c);
  CHECK(c->chunks == present);
  CHECK(c->chunk_bytes == present * kChunk);
  CHECK(Has(*s.store, chunks.back()));  // the newest are kept
  CHECK_FALSE(Has(*s.store, chunks.front()));
  auto verify = s->Verify([](const std::optional<Sha256Digest>&, const std::string&) {});
  REQUIRE(verify);
  CHECK_FALSE(verify->counters_fixed);
}

TEST_CASE("Eviction: Evict shrinks to the target oldest first, and is a no-op below it") {
  TempDir dir;
  ClockedStore s(dir.path, 100 * kChunk);
  std::vector<std::string> chunks;
  for (uint64_t i = 0; i < 8; ++i) {
    s.now->store(static_cast<int64_t>(500 + i));
    chunks.push_back(Bytes(kChunk, 2000 + i));
    REQUIRE(s->PutChunk(Sha256Of(chunks.back()), chunks.back()));
  }
  auto report = s->Evict(3 * kChunk);
  REQUIRE(report);
  CHECK(report->chunks == 5);
  CHECK(report->bytes == 5 * kChunk);
  CHECK(report->remaining_bytes == 3 * kChunk);
  for (size_t i = 0; i < 5; ++i) CHECK_FALSE(Has(*s.store, chunks[i]));
  for (size_t i = 5; i < 8; ++i) CHECK(Has(*s.store, chunks[i]));
  auto again = s->Evict(3 * kChunk);
  REQUIRE(again);
  CHECK(again->chunks == 0);
  auto all = s->Evict(0);
  REQUIRE(all);
  CHECK(all->remaining_bytes == 0);
  auto c = s->Counters();
  REQUIRE(c);
  CHECK(c->chunks == 0);
  CHECK(c->access_entries == 0);  // stamps go with their chunks
}

TEST_CASE("Eviction: reads are stamped from an in-memory batch, written by one flush") {
  TempDir dir;
  ClockedStore s(dir.path, 100 * kChunk);
  std::string a = Bytes(kChunk, 1);
  std::string b = Bytes(kChunk, 2);
  s.now->store(10);
  REQUIRE(s->PutChunk(Sha256Of(a), a));
  s.now->store(20);
  REQUIRE(s->PutChunk(Sha256Of(b), b));
  s.now->store(30);
  for (int i = 0; i < 1000; ++i) REQUIRE(Read(*s.store, a));  // a is now the most recent, in memory only

  // Another process evicting one chunk cannot see this process's unflushed reads: it evicts a.
  auto evict_one_in_child = [&] {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto child = ChunkStore::Open(CacheOptions{.dir = dir.path, .map_size = uint64_t{256} << 20,
                                                 .access_flush_interval = std::chrono::milliseconds(0), .background_eviction = false});
      if (!child) ::_exit(10);
      auto report = (*child)->Evict(kChunk);
      ::_exit(report && report->chunks == 1 ? 0 : 11);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
  };
  SUBCASE("not flushed: the stale stamp decides") {
    evict_one_in_child();
    CHECK_FALSE(Has(*s.store, a));
    CHECK(Has(*s.store, b));
  }
  SUBCASE("flushed: one write transaction makes the reads count") {
    REQUIRE(s->FlushAccess());
    evict_one_in_child();
    CHECK(Has(*s.store, a));
    CHECK_FALSE(Has(*s.store, b));
  }
}

TEST_CASE("Eviction: bytes read inside a read transaction survive deletion and reuse of their pages") {
  // ReadChunk copies inside its read transaction; this checks the MVCC property that makes that safe: a
  // chunk deleted (evicted) by a writer keeps its bytes for an open reader, even while new chunks are
  // written into freed pages.
  TempDir dir;
  auto opened = ChunkStore::Open(CacheOptions{.dir = dir.path, .map_size = uint64_t{256} << 20, .access_flush_interval = std::chrono::milliseconds(0), .background_eviction = false});
  REQUIRE(opened);
  auto& store = *opened;
  std::string data = Bytes(1 << 20, 77);
  Sha256Digest digest = Sha256Of(data);
  REQUIRE(store->PutChunk(digest, data));

  auto env = LmdbEnv::Acquire(dir.path, uint64_t{256} << 20);
  REQUIRE(env);
  {
    auto txn = (*env)->BeginRead();
    REQUIRE(txn);
    MDB_val key{digest.Raw().size(), const_cast<char*>(digest.Raw().data())};
    MDB_val value{};
    REQUIRE(mdb_get(txn->get(), (*env)->chunks_dbi(), &key, &value) == 0);
    // Evict it and churn the map from another thread (one transaction per thread).
    std::thread writer([&] {
      REQUIRE(store->Evict(0));
      for (uint64_t i = 0; i < 16; ++i) {
        std::string other = Bytes(1 << 20, 1000 + i);
        REQUIRE(store->PutChunk(Sha256Of(other), other));
        REQUIRE(store->DeleteChunk(Sha256Of(other)));
      }
    });
    writer.join();
    REQUIRE(value.mv_size == data.size() + 8);
    CHECK(std::memcmp(static_cast<const char*>(value.mv_data) + 8, data.data(), data.size()) == 0);
  }
  auto has = store->HasChunk(digest);
  REQUIRE(has);
  CHECK_FALSE(*has);
}

TEST_CASE("Eviction: concurrent readers never see wrong bytes while a tiny cap forces eviction") {
  TempDir dir;
  ClockedStore s(dir.path, 8 * kChunk);
  std::vector<std::string> chunks;
  for (uint64_t i = 0; i < 40; ++i) chunks.push_back(Bytes(kChunk, 3000 + i));
  std::atomic<bool> bad{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::string buf(kChunk, '\0');
      for (int round = 0; round < 200; ++round) {
        const std::string& data = chunks[(round * 7 + t * 13) % chunks.size()];
        Sha256Digest d = Sha256Of(data);
        auto hit = s->ReadChunk(d, data.size(), 0, kChunk, buf.data());
        if (!hit) bad = true;
        if (hit && *hit && buf != data) bad = true;
        if (hit && !*hit && !s->PutChunk(d, data)) bad = true;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK_FALSE(bad.load());
  auto c = s->Counters();
  REQUIRE(c);
  CHECK(c->chunk_bytes <= 8 * kChunk);
  CHECK(c->evicted_chunks > 0);
}

// Holds the host's eviction lock, as another process's evictor would.
struct HeldEvictLock {
  UniqueFd fd;
  explicit HeldEvictLock(const std::string& dir)
      : fd(::open(BackgroundEvictor::LockPath(dir).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    REQUIRE(fd.valid());
    REQUIRE(::flock(fd.get(), LOCK_EX | LOCK_NB) == 0);
  }
};

CacheCounters CountersOf(ChunkStore& store) {
  auto c = store.Counters();
  REQUIRE(c);
  return *c;
}

TEST_CASE("Eviction: a put past the high-water mark does not evict; the background evictor then does") {
  TempDir dir;
  ClockedStore s(dir.path, 20 * kChunk, /*background_eviction=*/true);
  std::vector<std::string> chunks;
  auto put = [&](uint64_t i) {
    s.now->store(static_cast<int64_t>(100 + i));
    chunks.push_back(Bytes(kChunk, 500 + i));
    REQUIRE(s->PutChunk(Sha256Of(chunks.back()), chunks.back()));
  };
  {
    HeldEvictLock other_evictor(dir.path);  // the evictor of this store cannot run
    for (uint64_t i = 0; i < 19; ++i) put(i);  // 19 chunks: past the high-water mark of 18, under the cap
    CacheCounters c = CountersOf(*s.store);
    CHECK(c.chunks == 19);
    CHECK(c.evicted_chunks == 0);  // no put evicted inline
  }
  // At the cap, not past it: wakes the evictor if the wake of the 19th put has not already evicted
  // (19 -> 16 chunks, and this one makes 17, below the high-water mark).
  put(19);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (CountersOf(*s.store).evicted_chunks < 3) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the background evictor never ran");
    std::this_thread::yield();
  }
  CacheCounters c = CountersOf(*s.store);
  CHECK(c.chunk_bytes <= 17 * kChunk);  // down to four fifths of the cap, plus at most the last put
  CHECK(Has(*s.store, chunks.back()));   // the newest stays
  CHECK_FALSE(Has(*s.store, chunks[0]));  // the oldest went
}

TEST_CASE("Eviction: with the evictor held off, a put past the cap evicts inline and the cap holds") {
  TempDir dir;
  ClockedStore s(dir.path, 20 * kChunk, /*background_eviction=*/true);
  HeldEvictLock other_evictor(dir.path);
  for (uint64_t i = 0; i < 30; ++i) {
    s.now->store(static_cast<int64_t>(100 + i));
    std::string data = Bytes(kChunk, 700 + i);
    REQUIRE(s->PutChunk(Sha256Of(data), data));
    CHECK(CountersOf(*s.store).chunk_bytes <= 20 * kChunk);
    CHECK(Has(*s.store, data));
  }
  CHECK(CountersOf(*s.store).evicted_chunks > 0);
}

TEST_CASE("Verify: every chunk is re-hashed; bad ones are reported and dropped") {
  TempDir dir;
  ClockedStore s(dir.path, 100 * kChunk);
  std::string good = Bytes(kChunk, 1);
  std::string claimed = Bytes(kChunk, 2);
  std::string actual = Bytes(kChunk, 3);
  REQUIRE(s->PutChunk(Sha256Of(good), good));
  // The store trusts its callers to Put verified bytes; this one lies, as a bug or bit rot before the
  // frame was computed would. XXH3 cannot catch it; sha256 does.
  REQUIRE(s->PutChunk(Sha256Of(claimed), actual));
  REQUIRE(s->PutMeta("tree", "value"));
  std::vector<std::pair<std::optional<Sha256Digest>, std::string>> reported;
  auto report = s->Verify([&](const std::optional<Sha256Digest>& d, const std::string& why) { reported.emplace_back(d, why); });
  REQUIRE(report);
  CHECK(report->chunks == 2);
  CHECK(report->bytes == 2 * kChunk);
  CHECK(report->bad_chunks == 1);
  CHECK(report->meta_entries == 1);
  CHECK(report->bad_meta == 0);
  REQUIRE(reported.size() == 1);
  REQUIRE(reported[0].first.has_value());
  CHECK(*reported[0].first == Sha256Of(claimed));
  CHECK(Has(*s.store, good));
  CHECK_FALSE(Has(*s.store, claimed));
  auto c = s->Counters();
  REQUIRE(c);
  CHECK(c->chunks == 1);
  CHECK(c->chunk_bytes == kChunk);
}

TEST_CASE("Eviction: the cap given at open is recorded and used by later opens without one") {
  TempDir dir;
  { ClockedStore s(dir.path, 5 * kChunk); }
  auto opened = ChunkStore::Open(CacheOptions{.dir = dir.path, .map_size = uint64_t{256} << 20, .access_flush_interval = std::chrono::milliseconds(0), .background_eviction = false});
  REQUIRE(opened);
  auto c = (*opened)->Counters();
  REQUIRE(c);
  CHECK(c->max_bytes == 5 * kChunk);
}

}  // namespace
}  // namespace lazyfs::cache
