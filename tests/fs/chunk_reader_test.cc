// ChunkReader over a real LMDB cache and a recording fake blob reader: misses batch into one ReadRanges
// call, fetch-ahead brings the chunks that follow a miss in the blob (and skips cached ones), a corrupt
// neighbour is neither cached nor served, WarmGroup and the prefetcher's windows fetch many chunks per call.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/log.h"
#include "fs/prefetcher.h"
#include "tests/fs/chunk_reader_fixture.h"

namespace lazyfs::fs {
using namespace test_fixture;

TEST_CASE("BlobOrder: neighbours are visible blob-backed chunks of the same directory, in blob order") {
  Layer lower(6);
  lower.index.entries[4].name = "sub/f04";  // another directory
  lower.index.entries[3].chunks[0].blob_length = BlobOrder::kSmallChunk + 1;  // too big to fetch ahead
  LayerIndex upper;
  LayerEntry shadow = lower.index.entries[1];  // f01 again, in the upper layer: hides the lower one
  shadow.chunks[0].blob_offset = 0;
  upper.entries.push_back(shadow);
  LayerEntry plain = lower.index.entries[2];
  plain.name = "plain";
  plain.chunks[0].blob_length = 0;  // a plain layer's chunk: not range-fetchable
  upper.entries.push_back(plain);
  UnionTree tree = UnionTree::Build({lower.index, upper}, [](uint32_t, const std::string&, const std::string&) {});
  BlobOrder order = BlobOrder::Build(tree, 2);
  CHECK(order.chunk_count() == 6);  // f00, f02, sub/f04... below, f01 above
  auto chunk_of = [&](const char* path) -> const ChunkRef& { return tree.Find(*tree.Resolve(path))->chunks[0]; };
  const ChunkRef& f00 = chunk_of("f00");
  std::vector<const ChunkRef*> n = order.Neighbours(0, f00, 1 << 20, 100);
  REQUIRE(n.size() == 2);  // f02, f05: f01 is hidden, f03 big, sub/f04 in another directory
  CHECK(n[0] == &chunk_of("f02"));
  CHECK(n[1] == &chunk_of("f05"));
  CHECK(order.Neighbours(0, chunk_of("f03"), 1 << 20, 100).empty());  // a big miss fetches nothing ahead
  CHECK(order.Neighbours(0, f00, 1 << 20, 1).size() == 1);
  // The window ends where f03 starts: only f02 fits.
  CHECK(order.Neighbours(0, f00, chunk_of("f03").blob_offset - (f00.blob_offset + f00.blob_length), 100).size() == 1);
  CHECK(order.Neighbours(0, chunk_of("f05"), 1 << 20, 100).empty());
  CHECK(order.Neighbours(0, chunk_of("sub/f04"), 1 << 20, 100).empty());
  CHECK(order.Neighbours(1, chunk_of("f01"), 1 << 20, 100).empty());
  ChunkRef copy = f00;  // not the tree's own
  CHECK(order.Neighbours(0, copy, 1 << 20, 100).empty());
  CHECK(order.Neighbours(7, f00, 1 << 20, 100).empty());
}

TEST_CASE("ChunkReader: without fetch-ahead a miss fetches just its chunk, then it is a hit") {
  Fixture f(8);
  CHECK(f.ReadFile(3).value() == Content(3));
  auto ranges = f.blobs.TakeRanges();
  REQUIRE(ranges.size() == 1);
  CHECK(ranges[0].first == f.File(3).chunks[0].blob_offset);
  CHECK(f.ReadFile(3).value() == Content(3));
  CHECK(f.blobs.TakeRanges().empty());
  CHECK(f.reader->counters().chunk_hits == 1);
  CHECK(f.reader->counters().chunk_misses == 1);
  CHECK(!f.Cached(4));
}

TEST_CASE("ChunkReader: fetch-ahead brings the following chunks in one call, skipping cached ones") {
  Fixture f(10);
  for (int i = 2; i <= 4; ++i) CHECK(f.ReadFile(i).value() == Content(i));
  f.blobs.TakeRanges();
  // The window after f00 ends exactly where f05 starts, so f05 and later stay out.
  const ChunkRef& first = f.File(0).chunks[0];
  f.reader->SetFetchAhead(&f.order, f.File(5).chunks[0].blob_offset - (first.blob_offset + first.blob_length));
  CHECK(f.ReadFile(0).value() == Content(0));
  CHECK(f.blobs.calls() == 1);
  auto ranges = f.blobs.TakeRanges();
  // f00 itself, then f01 (f02..f04 are cached already).
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0].first == first.blob_offset);
  CHECK(ranges[1].first == f.File(1).chunks[0].blob_offset);
  for (int i = 0; i <= 4; ++i) CHECK(f.Cached(i));
  CHECK(!f.Cached(5));
  uint64_t misses = f.reader->counters().chunk_misses;
  for (int i = 0; i <= 4; ++i) CHECK(f.ReadFile(i).value() == Content(i));
  CHECK(f.blobs.TakeRanges().empty());
  CHECK(f.reader->counters().chunk_misses == misses);  // fetched ahead: hits now
}

TEST_CASE("ChunkReader: a corrupt neighbour fetched ahead is neither cached nor served") {
  Fixture f(6, /*corrupt=*/2);
  f.reader->SetFetchAhead(&f.order, 1 << 20);
  CHECK(f.ReadFile(0).value() == Content(0));  // the read that fetched the bad neighbour still succeeds
  CHECK(f.Cached(1));
  CHECK(!f.Cached(2));
  CHECK(f.Cached(3));
  Result<std::string> bad = f.ReadFile(2);
  REQUIRE(!bad);
  CHECK(bad.error().code() == ErrorCode::kCorrupt);
  CHECK(bad.error().ToString().find("chunkDigest") != std::string::npos);
  CHECK(!f.Cached(2));
}

TEST_CASE("ChunkReader::WarmGroup: the missing chunks of a group in one call; cached ones counted") {
  Fixture f(12);
  CHECK(f.ReadFile(5).value() == Content(5));
  f.blobs.TakeRanges();
  std::vector<const ChunkRef*> group;
  for (int i = 0; i < 12; ++i) group.push_back(&f.File(i).chunks[0]);
  ChunkReader::WarmOutcome outcome = f.reader->WarmGroup(0, group);
  CHECK(outcome.fetched == 11);
  CHECK(outcome.cached == 1);
  CHECK(outcome.failed == 0);
  CHECK(f.blobs.calls() == 1);
  CHECK(f.blobs.TakeRanges().size() == 11);
  outcome = f.reader->WarmGroup(0, group);
  CHECK(outcome.cached == 12);
  CHECK(f.blobs.calls() == 0);
}

TEST_CASE("Prefetcher: a plan of small chunks goes out in windows, not one request per chunk") {
  Fixture f(100);
  PrefetchPlan plan;
  for (int i = 99; i >= 0; --i) plan.items.push_back({0, f.File(i).chunks[0]});  // any order
  {
    Prefetcher prefetcher(*f.reader, plan, 1);
    prefetcher.Start();
    for (int spin = 0; spin < 10000 && !prefetcher.progress().finished; ++spin) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    PrefetchProgress p = prefetcher.progress();
    REQUIRE(p.finished);
    CHECK(p.done == 100);
    CHECK(p.fetched == 100);
    CHECK(p.errors == 0);
  }
  // 100 chunks, windows of Prefetcher's 64: two batch calls.
  CHECK(f.blobs.calls() == 2);
  for (int i = 0; i < 100; ++i) CHECK(f.Cached(i));
}

}  // namespace lazyfs::fs

namespace lazyfs::fs {

TEST_CASE("ChunkReader: a chunk named with another size than its digest's bytes is kCorrupt, never heap bytes") {
  // f01 names f00's chunk digest but claims 3000 bytes; f02 has f00's chunk and then the same digest
  // again claiming 3000 bytes (one Read: the second comes from the read's own batch).
  Fixture f(3, -1, [](Layer& l) {
    ChunkRef real = l.index.entries[0].chunks[0];
    LayerEntry& liar = l.index.entries[1];
    liar.size = 3000;
    liar.chunks = {ChunkRef{0, 3000, real.digest, real.blob_offset, real.blob_length}};
    LayerEntry& twice = l.index.entries[2];
    twice.size = real.size + 3000;
    twice.chunks = {real, ChunkRef{real.size, 3000, real.digest, real.blob_offset, real.blob_length}};
  });
  auto read_into_poisoned = [&](int i) {
    std::string out(f.File(i).size, 'z');
    Status read = f.reader->Read(f.File(i).layer, f.File(i).chunks, 0, out.size(), out.data());
    return std::make_pair(read, out);
  };
  SUBCASE("the chunk is in the cache") {
    CHECK(f.ReadFile(0).value() == Content(0));
    auto [read, out] = read_into_poisoned(1);
    REQUIRE_FALSE(read);
    CHECK(read.error().code() == ErrorCode::kCorrupt);
    CHECK(read.error().ToString().find("the image says 3000") != std::string::npos);
    CHECK(out == std::string(3000, 'z'));
  }
  SUBCASE("the chunk is fetched for the liar") {
    auto [read, out] = read_into_poisoned(1);
    REQUIRE_FALSE(read);
    CHECK(read.error().code() == ErrorCode::kCorrupt);
    CHECK(out == std::string(3000, 'z'));
    CHECK(f.ReadFile(0).value() == Content(0));  // the honest file still reads
  }
  SUBCASE("twice in one read") {
    auto [read, out] = read_into_poisoned(2);
    REQUIRE_FALSE(read);
    CHECK(read.error().code() == ErrorCode::kCorrupt);
    CHECK(out.substr(Content(0).size()) == std::string(3000, 'z'));
  }
}

TEST_CASE("ChunkReader: concurrent misses of one chunk in one process make one request (single flight)") {
  Fixture f(2);
  constexpr int kReaders = 8;
  // The one request answers only once every reader is waiting on a miss.
  f.blobs.HoldRequestsUntil([&] { return f.reader->counters().misses_in_flight.load() == kReaders; });
  std::vector<std::thread> readers;
  std::atomic<int> right = 0;
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back([&] {
      Result<std::string> got = f.ReadFile(0);
      if (got && *got == Content(0)) ++right;
    });
  }
  for (std::thread& t : readers) t.join();
  CHECK(right == kReaders);
  CHECK(f.blobs.calls() == 1);
  CHECK(f.reader->counters().chunk_misses.load() == kReaders);
  CHECK(f.reader->counters().fetches.load() == 1);
}

}  // namespace lazyfs::fs
