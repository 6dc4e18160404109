#include "cache/chunk_store.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "common/log.h"

#include "tests/test_support.h"

namespace lazyfs::cache {
namespace {

using testing::TempDir;

std::string Bytes(size_t size, uint64_t seed) { return testing::PseudoRandomBytes(size, seed); }

// Tests map 256 MiB, not the 64 GiB default: enough for every test, and kind to sanitizer builds.
// Without the background access-stamp flusher and evictor: several tests fork, and a fork while another
// thread runs (the flusher or the evictor, possibly inside malloc) can leave the child deadlocked on a lock
// that thread held. Both are tested in eviction_test.cc.
std::unique_ptr<ChunkStore> OpenStore(const std::string& dir, uint64_t map_size = uint64_t{256} << 20) {
  auto store = ChunkStore::Open(
      CacheOptions{.dir = dir, .map_size = map_size, .access_flush_interval = std::chrono::milliseconds(0), .background_eviction = false});
  REQUIRE_MESSAGE(store.has_value(), (store ? "" : store.error().ToString()));
  return std::move(*store);
}

// Runs `body` in a forked child and returns its exit status (the child never returns into doctest).
template <class Body>
int RunInChild(Body&& body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(body());
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

TEST_CASE("ChunkStore: Get after Put returns the same bytes") {
  TempDir dir;
  auto store = OpenStore(dir.path);
  size_t size = 0;
  SUBCASE("empty") { size = 0; }
  SUBCASE("one byte") { size = 1; }
  SUBCASE("a page") { size = 4096; }
  SUBCASE("a 4 MiB chunk") { size = 4 << 20; }
  std::string data = Bytes(size, 7);
  Sha256Digest digest = Sha256Of(data);
  REQUIRE(store->PutChunk(digest, data));
  auto got = store->GetChunk(digest);
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK(**got == data);
  auto has = store->HasChunk(digest);
  REQUIRE(has);
  CHECK(*has);
}

TEST_CASE("ChunkStore: ReadChunk copies the requested range") {
  TempDir dir;
  auto store = OpenStore(dir.path);
  std::string data = Bytes(100000, 11);
  Sha256Digest digest = Sha256Of(data);
  REQUIRE(store->PutChunk(digest, data));

  uint64_t offset = 0;
  uint64_t length = 0;
  SUBCASE("start") { offset = 0, length = 4096; }
  SUBCASE("middle") { offset = 12345, length = 50000; }
  SUBCASE("end") { offset = 99000, length = 1000; }
  SUBCASE("whole") { offset = 0, length = data.size(); }
  SUBCASE("empty at the end") { offset = data.size(), length = 0; }
  std::string dst(length, '\0');
  auto found = store->ReadChunk(digest, data.size(), offset, length, dst.data());
  REQUIRE(found);
  CHECK(*found);
  CHECK(dst == data.substr(offset, length));
}

TEST_CASE("ChunkStore: ReadChunk past the end of a chunk is kInvalidArgument") {
  TempDir dir;
  auto store = OpenStore(dir.path);
  std::string data = Bytes(1000, 12);
  Sha256Digest digest = Sha256Of(data);
  REQUIRE(store->PutChunk(digest, data));
  std::string dst(4096, '\0');
  uint64_t offset = 0;
  uint64_t length = 0;
  SUBCASE("runs over the end") { offset = 900, length = 101; }
  SUBCASE("starts past the end") { offset = 1001, length = 0; }
  SUBCASE("offset + length overflows") { offset = UINT64_MAX, length = 2; }
  auto found = store->ReadChunk(digest, data.size(), offset, length, dst.data());
  REQUIRE_FALSE(found);
  CHECK(found.error().code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("ChunkStore: ReadChunk of a stored chunk under another size is kCorrupt and copies nothing") {
  // A hostile image may name another image's digest with a size of its own: the cache must not serve
  // the stored bytes as if they had the claimed length.
  TempDir dir;
  auto store = OpenStore(dir.path);
  std::string data = "hello";
  Sha256Digest digest = Sha256Of(data);
  REQUIRE(store->PutChunk(digest, data));
  std::string dst(3000, 'x');
  uint64_t claimed = 0;
  SUBCASE("longer") { claimed = 3000; }
  SUBCASE("shorter") { claimed = 3; }
  auto found = store->ReadChunk(digest, claimed, 0, std::min<uint64_t>(claimed, 3), dst.data());
  REQUIRE_FALSE(found);
  CHECK(found.error().code() == ErrorCode::kCorrupt);
  CHECK(dst == std::string(3000, 'x'));
  // The chunk itself is fine and stays for the images that name it rightly.
  std::string right(data.size(), '\0');
  auto again = store->ReadChunk(digest, data.size(), 0, data.size(), right.data());
  REQUIRE(again);
  CHECK(*again);
  CHECK(right == data);
}

TEST_CASE("ChunkStore: an absent chunk is false or nullopt, not an error") {
  TempDir dir;
  auto store = OpenStore(dir.path);
  Sha256Digest digest = Sha256Of("never stored");
  char byte = 0;
  auto read = store->ReadChunk(digest, 1, 0, 1, &byte);
  REQUIRE(read);
  CHECK_FALSE(*read);
  auto got = store->GetChunk(digest);
  REQUIRE(got);
  CHECK_FALSE(got->has_value());
  auto has = store->HasChunk(digest);
  REQUIRE(has);
  CHECK_FALSE(*has);
  auto meta = store->GetMeta("no such key");
  REQUIRE(meta);
  CHECK_FALSE(meta->has_value());
}

TEST_CASE("ChunkStore: Put of a present chunk is a no-op") {
  TempDir dir;
  auto store = OpenStore(dir.path);
  std::string first = Bytes(5000, 21);
  Sha256Digest digest = Sha256Of(first);
  REQUIRE(store->PutChunk(digest, first));
  // Callers only store verified bytes, so different bytes under one digest never happen; here they show
  // that the second Put did not replace anything.
  REQUIRE(store->PutChunk(digest, "other bytes"));
  auto got = store->GetChunk(digest);
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK(**got == first);
  auto counters = store->Counters();
  REQUIRE(counters);
  CHECK(counters->chunks == 1);
}

TEST_CASE("ChunkStore: Delete removes a chunk and deleting an absent one is fine") {
  TempDir dir;
  auto store = OpenStore(dir.path);
  std::string data = Bytes(3000, 31);
  Sha256Digest digest = Sha256Of(data);
  REQUIRE(store->PutChunk(digest, data));
  REQUIRE(store->DeleteChunk(digest));
  auto has = store->HasChunk(digest);
  REQUIRE(has);
  CHECK_FALSE(*has);
  CHECK(store->DeleteChunk(digest));
  // And it can be stored again.
  REQUIRE(store->PutChunk(digest, data));
  auto got = store->GetChunk(digest);
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK(**got == data);
}

TEST_CASE("ChunkStore: meta values round-trip and are replaced, whatever the key length") {
  TempDir dir;
  auto store = OpenStore(dir.path);
  std::string key;
  SUBCASE("short") { key = "toc/sha256:abc"; }
  SUBCASE("empty") { key = ""; }
  SUBCASE("exactly LMDB's 511-byte limit") { key = std::string(511, 'k'); }
  SUBCASE("longer than LMDB's key limit") { key = std::string(600, 'k'); }
  SUBCASE("very long") { key = Bytes(100000, 41); }
  std::string value = Bytes(20000, 42);
  REQUIRE(store->PutMeta(key, value));
  auto got = store->GetMeta(key);
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK(**got == value);

  REQUIRE(store->PutMeta(key, "newer"));
  got = store->GetMeta(key);
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK(**got == "newer");
}

TEST_CASE("ChunkStore: long meta keys that share a long prefix stay distinct") {
  TempDir dir;
  auto store = OpenStore(dir.path);
  std::string prefix(1000, 'p');
  REQUIRE(store->PutMeta(prefix + "a", "value a"));
  REQUIRE(store->PutMeta(prefix + "b", "value b"));
  auto a = store->GetMeta(prefix + "a");
  auto b = store->GetMeta(prefix + "b");
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(a->has_value());
  REQUIRE(b->has_value());
  CHECK(**a == "value a");
  CHECK(**b == "value b");
  auto counters = store->Counters();
  REQUIRE(counters);
  CHECK(counters->meta_entries == 2);
}

// Flips one byte of every copy of `needle` in the LMDB data file. LMDB (without MDB_WRITEMAP) writes with
// pwrite and reads through a shared read-only map of the same file, so the store sees the damage at once.
// Returns the number of copies damaged.
int CorruptOnDisk(const std::string& dir, std::string_view needle) {
  std::string file = dir + "/data.mdb";
  auto bytes = ReadWholeFile(file);
  REQUIRE(bytes);
  auto fd = OpenFile(file, O_RDWR);
  REQUIRE(fd);
  int copies = 0;
  for (size_t at = bytes->find(needle); at != std::string::npos; at = bytes->find(needle, at + 1)) {
    char flipped = static_cast<char>((*bytes)[at + needle.size() / 2] ^ 0x5a);
    REQUIRE(::pwrite(fd->get(), &flipped, 1, static_cast<off_t>(at + needle.size() / 2)) == 1);
    ++copies;
  }
  return copies;
}

TEST_CASE("ChunkStore: a corrupted stored value is dropped and reported absent") {
  TempDir dir;
  auto store = OpenStore(dir.path);
  const std::string marker = "lazyfs-corruption-marker-0123456789";
  std::string data = Bytes(20000, 51);
  data.replace(10000, marker.size(), marker);
  Sha256Digest digest = Sha256Of(data);

  SUBCASE("found by GetChunk") {
    REQUIRE(store->PutChunk(digest, data));
    REQUIRE(CorruptOnDisk(dir.path, marker) == 1);
    auto got = store->GetChunk(digest);
    REQUIRE(got);
    CHECK_FALSE(got->has_value());
  }
  SUBCASE("found by ReadChunk, even outside the damaged range") {
    REQUIRE(store->PutChunk(digest, data));
    REQUIRE(CorruptOnDisk(dir.path, marker) == 1);
    char byte = 0;
    auto read = store->ReadChunk(digest, data.size(), 0, 1, &byte);
    REQUIRE(read);
    CHECK_FALSE(*read);
  }
  SUBCASE("found by GetMeta") {
    REQUIRE(store->PutMeta("index", data));
    REQUIRE(CorruptOnDisk(dir.path, marker) == 1);
    auto got = store->GetMeta("index");
    REQUIRE(got);
    CHECK_FALSE(got->has_value());
    auto counters = store->Counters();
    REQUIRE(counters);
    CHECK(counters->meta_entries == 0);
    return;
  }

  // The damaged entry is gone, and the good bytes can be stored again.
  auto has = store->HasChunk(digest);
  REQUIRE(has);
  CHECK_FALSE(*has);
  REQUIRE(store->PutChunk(digest, data));
  auto got = store->GetChunk(digest);
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK(**got == data);
}

TEST_CASE("ChunkStore: two stores on one directory see each other's chunks") {
  TempDir dir;
  auto a = OpenStore(dir.path);
  auto b = OpenStore(dir.path);
  std::string from_a = Bytes(7000, 61);
  std::string from_b = Bytes(9000, 62);
  REQUIRE(a->PutChunk(Sha256Of(from_a), from_a));
  REQUIRE(b->PutChunk(Sha256Of(from_b), from_b));
  auto got_b = a->GetChunk(Sha256Of(from_b));
  auto got_a = b->GetChunk(Sha256Of(from_a));
  REQUIRE(got_a);
  REQUIRE(got_b);
  REQUIRE(got_a->has_value());
  REQUIRE(got_b->has_value());
  CHECK(**got_a == from_a);
  CHECK(**got_b == from_b);

  // Closing one leaves the other working (they share this process's one LMDB environment).
  a.reset();
  auto again = b->GetChunk(Sha256Of(from_a));
  REQUIRE(again);
  CHECK(again->has_value());
}

TEST_CASE("ChunkStore: a forked process and this one see each other's chunks") {
  TempDir dir;
  auto store = OpenStore(dir.path);
  std::string from_parent = Bytes(30000, 71);
  REQUIRE(store->PutChunk(Sha256Of(from_parent), from_parent));

  int status = RunInChild([&] {
    // The child opens its own environment (LMDB handles must not cross fork()).
    auto child = ChunkStore::Open(CacheOptions{.dir = dir.path, .map_size = uint64_t{256} << 20, .access_flush_interval = std::chrono::milliseconds(0), .background_eviction = false});
    if (!child) return 10;
    auto got = (*child)->GetChunk(Sha256Of(from_parent));
    if (!got || !got->has_value() || **got != from_parent) return 11;
    for (uint64_t i = 0; i < 20; ++i) {
      std::string data = Bytes(10000 + i, 100 + i);
      if (!(*child)->PutChunk(Sha256Of(data), data)) return 12;
    }
    return 0;
  });
  REQUIRE(status == 0);

  for (uint64_t i = 0; i < 20; ++i) {
    std::string data = Bytes(10000 + i, 100 + i);
    auto got = store->GetChunk(Sha256Of(data));
    REQUIRE(got);
    REQUIRE(got->has_value());
    CHECK(**got == data);
  }
}

std::string KillTestChunk(uint64_t round, uint64_t i) { return Bytes(2000 + (i % 13) * 3000, round * 1000000 + i); }

TEST_CASE("ChunkStore: a writer killed with SIGKILL leaves every stored chunk intact") {
  TempDir dir;
  constexpr uint64_t kAckedBeforeKill = 200;
  for (uint64_t round = 0; round < 3; ++round) {
    int acks[2];
    REQUIRE(::pipe(acks) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(acks[0]);
      auto child = ChunkStore::Open(CacheOptions{.dir = dir.path, .map_size = uint64_t{256} << 20, .access_flush_interval = std::chrono::milliseconds(0), .background_eviction = false});
      if (!child) ::_exit(10);
      for (uint64_t i = 0;; ++i) {
        std::string data = KillTestChunk(round, i);
        if (!(*child)->PutChunk(Sha256Of(data), data)) ::_exit(11);
        // A read transaction too, so the kill may also land while a reader slot is taken.
        if (!(*child)->GetChunk(Sha256Of(data))) ::_exit(12);
        char ack = 1;
        if (::write(acks[1], &ack, 1) != 1) ::_exit(13);
      }
    }
    ::close(acks[1]);
    // Wait (on the pipe, not a timer) until the child has committed enough, then kill it mid-stream.
    uint64_t acked = 0;
    char buf[256];
    while (acked < kAckedBeforeKill) {
      ssize_t n = ::read(acks[0], buf, sizeof buf);
      REQUIRE(n > 0);
      acked += static_cast<uint64_t>(n);
    }
    REQUIRE(::kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));
    for (ssize_t n; (n = ::read(acks[0], buf, sizeof buf)) > 0;) acked += static_cast<uint64_t>(n);
    ::close(acks[0]);

    // Reopen (this process holds no environment on the directory, so this is a real open that clears
    // the dead child's reader slot).
    auto store = OpenStore(dir.path);
    for (uint64_t i = 0; i < acked + 20; ++i) {
      std::string data = KillTestChunk(round, i);
      auto got = store->GetChunk(Sha256Of(data));
      REQUIRE(got);
      if (i < acked) REQUIRE(got->has_value());  // every acknowledged chunk survived
      if (got->has_value()) CHECK(**got == data);  // and nothing present is damaged
    }
    // The writer lock the child may have died holding is recovered: this process can still write.
    std::string after = Bytes(1234, 9000 + round);
    REQUIRE(store->PutChunk(Sha256Of(after), after));
  }
}

TEST_CASE("ChunkStore: Open clears the reader slot of a process killed while it held one") {
  TempDir dir;
  // This process keeps the environment open throughout, so the lock file is never re-initialised and
  // only mdb_reader_check can free the dead child's slot.
  auto store = OpenStore(dir.path);
  std::string data = Bytes(5000, 81);
  REQUIRE(store->PutChunk(Sha256Of(data), data));

  int acks[2];
  REQUIRE(::pipe(acks) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(acks[0]);
    auto child = ChunkStore::Open(CacheOptions{.dir = dir.path, .map_size = uint64_t{256} << 20, .access_flush_interval = std::chrono::milliseconds(0), .background_eviction = false});
    // After a read the child keeps its (parked) read transaction, and so its reader slot.
    if (!child || !(*child)->GetChunk(Sha256Of(data))) ::_exit(10);
    char ack = 1;
    if (::write(acks[1], &ack, 1) != 1) ::_exit(11);
    for (;;) ::pause();
  }
  ::close(acks[1]);
  char ack = 0;
  REQUIRE(::read(acks[0], &ack, 1) == 1);
  ::close(acks[0]);
  REQUIRE(::kill(pid, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);

  std::string log_file = dir.path + "/test.log";
  REQUIRE(SetLogFile(log_file));
  auto second = ChunkStore::Open(CacheOptions{.dir = dir.path, .map_size = uint64_t{256} << 20, .access_flush_interval = std::chrono::milliseconds(0), .background_eviction = false});
  SetLogFile("/dev/stderr");
  REQUIRE(second);
  auto log = ReadWholeFile(log_file);
  REQUIRE(log);
  CHECK(log->find("cleared 1 stale reader slot") != std::string::npos);
}

TEST_CASE("ChunkStore: a full map evicts, the put succeeds, and what remains stays readable") {
  TempDir dir;
  // A 1 MiB map holds about a dozen 64 KiB chunks; the cap (default 10 GiB) never triggers, the map does.
  auto store = OpenStore(dir.path, uint64_t{1} << 20);
  std::vector<std::string> stored;
  for (uint64_t i = 0; i < 64; ++i) {
    std::string data = Bytes(64 << 10, 300 + i);
    Status put = store->PutChunk(Sha256Of(data), data);
    REQUIRE_MESSAGE(put, "put " << i << ": " << (put ? "" : put.error().ToString()));
    auto has = store->HasChunk(Sha256Of(data));
    REQUIRE(has);
    CHECK(*has);  // the chunk just stored survives the eviction it caused
    stored.push_back(std::move(data));
  }
  size_t present = 0;
  for (const std::string& data : stored) {
    auto got = store->GetChunk(Sha256Of(data));
    REQUIRE(got);
    if (!got->has_value()) continue;  // evicted
    CHECK(**got == data);
    ++present;
  }
  CHECK(present > 0);
  CHECK(present < stored.size());
  auto counters = store->Counters();
  REQUIRE(counters);
  CHECK(counters->chunks == present);
  CHECK(counters->chunk_bytes == present * (64 << 10));
  CHECK(counters->evicted_chunks == stored.size() - present);
}

TEST_CASE("ChunkStore: a map grown by another process is adopted") {
  TempDir dir;
  // This process maps 1 MiB; the child maps 256 MiB and stores 8 MiB, past the end of our map.
  auto store = OpenStore(dir.path, uint64_t{1} << 20);
  int status = RunInChild([&] {
    auto child = ChunkStore::Open(CacheOptions{.dir = dir.path, .map_size = uint64_t{256} << 20, .access_flush_interval = std::chrono::milliseconds(0), .background_eviction = false});
    if (!child) return 10;
    for (uint64_t i = 0; i < 8; ++i) {
      std::string data = Bytes(1 << 20, 500 + i);
      if (!(*child)->PutChunk(Sha256Of(data), data)) return 11;
    }
    return 0;
  });
  REQUIRE(status == 0);
  for (uint64_t i = 0; i < 8; ++i) {
    std::string data = Bytes(1 << 20, 500 + i);
    auto got = store->GetChunk(Sha256Of(data));
    REQUIRE_MESSAGE(got, (got ? "" : got.error().ToString()));
    REQUIRE(got->has_value());
    CHECK(**got == data);
  }
  std::string more = Bytes(1 << 20, 600);
  CHECK(store->PutChunk(Sha256Of(more), more));
}

TEST_CASE("ChunkStore: Counters count chunks, data bytes, meta entries and the file size") {
  TempDir dir;
  auto store = OpenStore(dir.path);
  for (size_t size : {10, 20, 30000}) {
    std::string data = Bytes(size, size);
    REQUIRE(store->PutChunk(Sha256Of(data), data));
  }
  REQUIRE(store->PutMeta("a", "1"));
  REQUIRE(store->PutMeta(std::string(2000, 'b'), "2"));
  auto counters = store->Counters();
  REQUIRE(counters);
  CHECK(counters->chunks == 3);
  CHECK(counters->chunk_bytes == 30030);
  CHECK(counters->meta_entries == 2);
  CHECK(counters->file_bytes >= 30030);
}

TEST_CASE("ChunkStore: Open creates a missing directory and rejects a file") {
  TempDir dir;
  std::string nested = dir.path + "/a/b/cache";
  auto store = ChunkStore::Open(CacheOptions{.dir = nested, .map_size = uint64_t{16} << 20});
  REQUIRE(store);
  CHECK((*store)->dir() == nested);
  CHECK(std::filesystem::exists(nested + "/data.mdb"));

  REQUIRE(WriteFileAtomic(dir.path + "/file", "x"));
  auto on_file = ChunkStore::Open(CacheOptions{.dir = dir.path + "/file", .map_size = uint64_t{16} << 20});
  REQUIRE_FALSE(on_file);
}

TEST_CASE("ChunkStore: many threads put and read at once") {
  TempDir dir;
  auto store = OpenStore(dir.path);
  constexpr int kThreads = 8;
  constexpr uint64_t kPerThread = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < kPerThread; ++i) {
        std::string data = Bytes(8192 + i, 1000 * static_cast<uint64_t>(t) + i);
        Sha256Digest digest = Sha256Of(data);
        if (!store->PutChunk(digest, data)) ++failures;
        std::string back(data.size(), '\0');
        auto read = store->ReadChunk(digest, data.size(), 0, back.size(), back.data());
        if (!read || !*read || back != data) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(failures == 0);
  auto counters = store->Counters();
  REQUIRE(counters);
  CHECK(counters->chunks == kThreads * kPerThread);
}

}  // namespace
}  // namespace lazyfs::cache
