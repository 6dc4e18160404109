// AccessStats (histogram, page bitmaps, per-file/per-layer counters), the trace format (round trip,
// merge, hostile input) and the prefetch plan.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <thread>

#include "common/byte_codec.h"
#include "common/fd.h"
#include "fs/access_stats.h"
#include "fs/prefetcher.h"
#include "fs/trace.h"

namespace lazyfs::fs {
namespace {

using namespace std::chrono_literals;

LayerEntry File(std::string name, uint64_t size, uint64_t chunk = 1 << 20) {
  LayerEntry e;
  e.name = std::move(name);
  e.type = EntryType::kRegular;
  e.mode = 0644;
  e.size = size;
  for (uint64_t off = 0; off < size; off += chunk) {
    e.chunks.push_back({off, std::min(chunk, size - off), Sha256Of(e.name + std::to_string(off)), off, 10});
  }
  return e;
}

UnionTree Tree() {
  LayerIndex l0;
  l0.entries = {File("a", 10000), File("big", 5 << 20)};
  LayerIndex l1;
  l1.entries = {File("dir/b", 4096)};
  return UnionTree::Build({l0, l1}, [](uint32_t, const std::string&, const std::string&) {});
}

ReadEvent Event(const UnionTree& tree, const char* path, uint64_t off, uint64_t len, uint32_t hits = 1,
                uint32_t misses = 0) {
  uint64_t ino = *tree.Resolve(path);
  return {ino, tree.Find(ino), off, len, {hits, misses}, std::chrono::steady_clock::now()};
}

Trace SampleTrace() {
  Trace t;
  t.manifest_digest = Sha256Of("image");
  t.image = "oci:/x:tag";
  t.paths = {"a", "dir/b", "big"};
  t.records = {{0, 0, 0, 4096, true, 0}, {15, 1, 0, 4096, false, 1}, {12, 2, 1 << 20, 8192, true, 0},
               {400, 0, 4096, 5904, false, 0}};
  return t;
}

}  // namespace

TEST_CASE("LatencyHistogram: log2 buckets of microseconds and bucket-bound quantiles") {
  LatencyHistogram h;
  CHECK(LatencyHistogram::Quantile(h.Snapshot(), 0.5) == 0);
  h.Record(500ns);    // bucket 0 (< 1 µs)
  h.Record(1us);      // bucket 1 [1, 2)
  h.Record(3us);      // bucket 2 [2, 4)
  for (int i = 0; i < 97; ++i) h.Record(1000us);  // bucket 10 [512, 1024)
  h.Record(-5us);     // clock oddities land in bucket 0
  auto c = h.Snapshot();
  CHECK(c[0] == 2);
  CHECK(c[1] == 1);
  CHECK(c[2] == 1);
  CHECK(c[10] == 97);
  CHECK(LatencyHistogram::Quantile(c, 0.5) == 1024);
  CHECK(LatencyHistogram::Quantile(c, 0.01) == 1);
  CHECK(LatencyHistogram::Quantile(c, 0.02) == 2);   // rank 3: bucket 1, bounded by 2 µs
  CHECK(LatencyHistogram::Quantile(c, 0.03) == 4);
  h.Record(std::chrono::hours(1000000));  // past the last bucket: clamped into it
  CHECK(h.Snapshot()[LatencyHistogram::kBuckets - 1] == 1);
}

TEST_CASE("PageBitmap: unique bytes are 4 KiB pages touched, clamped to the file size") {
  PageBitmap b(10000);  // pages: 4096, 4096, 1808
  CHECK(b.Mark(0, 4096) == 4096);
  CHECK(b.Mark(0, 4096) == 0);
  CHECK(b.Mark(100, 10) == 0);
  CHECK(b.Mark(4096, 100000) == 4096 + 1808);
  CHECK(b.Mark(20000, 5) == 0);
  CHECK(b.Mark(0, 0) == 0);
  SUBCASE("spans several words, in parallel") {
    PageBitmap big(1000 * 4096 + 1);
    std::atomic<uint64_t> total{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (uint64_t p = static_cast<uint64_t>(t); p < 1001; p += 3) total += big.Mark(p * 4096, 4096);
      });
    }
    for (auto& th : threads) th.join();
    CHECK(total == 1000 * 4096 + 1);
    CHECK(big.Mark(0, 1000 * 4096 + 1) == 0);
  }
  SUBCASE("an unaligned read counts the whole pages it touches") {
    PageBitmap c(3 * 4096);
    CHECK(c.Mark(4000, 200) == 2 * 4096);
  }
}

TEST_CASE("AccessStats: totals, layers and files from read events; fetches feed latency and wire bytes") {
  UnionTree tree = Tree();
  AccessStats stats(tree, 2);
  stats.OnRead(Event(tree, "a", 0, 4096, 0, 1));
  stats.OnRead(Event(tree, "a", 0, 4096));
  stats.OnRead(Event(tree, "a", 8192, 1808));
  stats.OnRead(Event(tree, "dir/b", 0, 4096, 0, 1));
  stats.OnFetch(0, 1000, 3ms);
  stats.OnFetch(1, 500, 1ms);
  AccessSnapshot t = stats.Total();
  CHECK(t.reads == 4);
  CHECK(t.bytes_read == 4096 * 3 + 1808);
  CHECK(t.unique_bytes == 4096 * 2 + 1808);
  CHECK(t.chunk_hits == 2);
  CHECK(t.chunk_misses == 2);
  CHECK(t.fetches == 2);
  CHECK(t.fetched_bytes == 1500);
  auto layers = stats.Layers();
  REQUIRE(layers.size() == 2);
  CHECK(layers[0].unique_bytes == 4096 + 1808);
  CHECK(layers[0].fetched_bytes == 1000);
  CHECK(layers[1].reads == 1);
  auto top = stats.TopFiles(10);
  REQUIRE(top.size() == 2);
  CHECK(tree.PathOf(top[0].ino) == "/a");
  CHECK(top[0].counters.reads == 3);
  CHECK(tree.PathOf(top[1].ino) == "/dir/b");
  CHECK(stats.TopFiles(1).size() == 1);
  auto latency = stats.FetchLatency();
  CHECK(LatencyHistogram::Quantile(latency, 0.99) == 4096);
}

TEST_CASE("Trace: encode/decode round trip, in a compact form") {
  Trace t = SampleTrace();
  std::string data = EncodeTrace(t);
  CHECK(data.substr(0, 8) == "LZYTRACE");
  CHECK(data.size() < 8 + 2 + 33 + 11 + 20 + 4 * 14);
  auto back = DecodeTrace(data);
  REQUIRE(back);
  CHECK(back->manifest_digest == t.manifest_digest);
  CHECK(back->image == t.image);
  CHECK(back->paths == t.paths);
  REQUIRE(back->records.size() == 4);
  CHECK(back->records[2].time_us == 12);  // a negative delta survives
  CHECK(back->records[2].offset == 1 << 20);
  CHECK(back->records[2].miss);
  CHECK(back->records[1].layer == 1);
  CHECK(back->records[3].length == 5904);
}

TEST_CASE("Trace: hostile files are rejected with kCorrupt, never a crash") {
  std::string good = EncodeTrace(SampleTrace());
  SUBCASE("every truncation") {
    for (size_t n = 0; n < good.size(); ++n) {
      auto r = DecodeTrace(std::string_view(good).substr(0, n));
      // A cut exactly between records is a valid, shorter trace; anything else must fail cleanly.
      if (r) CHECK(r->records.size() < 4);
    }
  }
  SUBCASE("every single-byte corruption decodes or fails cleanly") {
    for (size_t i = 0; i < good.size(); ++i) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ 0xff);
      (void)DecodeTrace(bad);
    }
  }
  auto expect_corrupt = [](const std::string& data) {
    auto r = DecodeTrace(data);
    REQUIRE(!r);
    CHECK(r.error().code() == ErrorCode::kCorrupt);
  };
  auto header = [] {
    ByteWriter w;
    w.Fixed("LZYTRACE");
    w.U64(1);
    w.Bytes(Sha256Of("x").Raw());
    w.Bytes("img");
    return w;
  };
  SUBCASE("bad magic") { expect_corrupt("NOTATRACE-----"); }
  SUBCASE("access before its file") {
    ByteWriter w = header();
    for (uint64_t v : {1, 0, 0, 0, 1, 0, 0}) w.U64(v);
    expect_corrupt(w.Take());
  }
  SUBCASE("file ids out of order") {
    ByteWriter w = header();
    w.U64(0);
    w.U64(5);
    w.Bytes("a");
    expect_corrupt(w.Take());
  }
  SUBCASE("absolute or empty path") {
    ByteWriter w = header();
    w.U64(0);
    w.U64(0);
    w.Bytes("/etc/passwd");
    expect_corrupt(w.Take());
  }
  SUBCASE("unknown tag, flags, huge layer, absurd length, short digest") {
    ByteWriter w = header();
    w.U64(7);
    expect_corrupt(w.Take());
    for (auto [flags, layer, length] : {std::tuple<uint64_t, uint64_t, uint64_t>{2, 0, 1}, {0, 1u << 20, 1}, {0, 0, uint64_t{1} << 50}}) {
      ByteWriter a = header();
      a.U64(0);
      a.U64(0);
      a.Bytes("f");
      for (uint64_t v : {uint64_t{1}, uint64_t{0}, uint64_t{0}, uint64_t{0}, length, flags, layer}) a.U64(v);
      expect_corrupt(a.Take());
    }
    ByteWriter d;
    d.Fixed("LZYTRACE");
    d.U64(1);
    d.Bytes("short");
    expect_corrupt(d.Take());
  }
  SUBCASE("another version is kUnsupported") {
    ByteWriter w;
    w.Fixed("LZYTRACE");
    w.U64(2);
    auto r = DecodeTrace(w.Take());
    REQUIRE(!r);
    CHECK(r.error().code() == ErrorCode::kUnsupported);
  }
}

TEST_CASE("Trace: merge is the union in first-access order; different images are refused") {
  Trace a = SampleTrace();
  Trace b;
  b.manifest_digest = a.manifest_digest;
  b.paths = {"new", "a"};
  b.records = {{5, 0, 0, 100, true, 0}, {7, 1, 0, 4096, true, 0}, {1000, 1, 65536, 4096, true, 0}};
  auto merged = MergeTraces({a, b});
  REQUIRE(merged);
  // Times: a0@0, new@5, a@7 (duplicate of a0: dropped), big@12, b@15, a4096@400, a65536@1000.
  REQUIRE(merged->records.size() == 6);
  std::vector<std::string> order;
  for (const auto& r : merged->records) order.push_back(merged->paths[r.file] + "@" + std::to_string(r.offset));
  CHECK(order == std::vector<std::string>{"a@0", "new@0", "big@1048576", "dir/b@0", "a@4096", "a@65536"});
  auto again = DecodeTrace(EncodeTrace(*merged));
  REQUIRE(again);
  CHECK(again->records.size() == 6);
  b.manifest_digest = Sha256Of("other");
  CHECK(!MergeTraces({a, b}));
  CHECK(!MergeTraces({}));
}

TEST_CASE("TraceRecorder: records reads from many threads and flushes on Close") {
  UnionTree tree = Tree();
  std::string path = std::filesystem::temp_directory_path().string() + "/lazyfs-trace-test." + std::to_string(::getpid());
  auto recorder = TraceRecorder::Open(path, tree, Sha256Of("m"), "img");
  REQUIRE(recorder);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) (*recorder)->OnRead(Event(tree, i % 2 ? "a" : "dir/b", 0, 4096, 0, i % 3 == 0));
    });
  }
  for (auto& th : threads) th.join();
  REQUIRE((*recorder)->Close());
  (*recorder)->OnRead(Event(tree, "a", 0, 1));  // after Close: dropped
  auto trace = ReadTraceFile(path);
  std::filesystem::remove(path);
  REQUIRE(trace);
  CHECK(trace->records.size() == 2000);
  CHECK(trace->paths.size() == 2);
  CHECK(trace->image == "img");
  for (size_t i = 1; i < trace->records.size(); ++i) CHECK(trace->records[i - 1].time_us <= trace->records[i].time_us + 200000);
}

TEST_CASE("PlanPrefetch: chunks covering traced ranges, each once, in first-access order") {
  UnionTree tree = Tree();
  Trace t = SampleTrace();
  t.paths.push_back("gone");
  t.records.push_back({500, 3, 0, 10, true, 0});
  t.records.push_back({600, 2, 0, 5 << 20, true, 0});  // all of big
  PrefetchPlan plan = PlanPrefetch(t, tree);
  CHECK(plan.records == 6);
  CHECK(plan.missing_paths == 1);
  // a (1 chunk), dir/b (1), big@1MiB (1), then big's other 4 chunks.
  REQUIRE(plan.items.size() == 7);
  CHECK(plan.items[0].chunk.digest == Sha256Of("a0"));
  CHECK(plan.items[1].layer == 1);
  CHECK(plan.items[2].chunk.file_offset == 1 << 20);
  CHECK(plan.items[3].chunk.file_offset == 0);
  CHECK(plan.items[4].chunk.file_offset == 2 << 20);
}

}  // namespace lazyfs::fs
