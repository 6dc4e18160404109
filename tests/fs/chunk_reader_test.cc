// ChunkReader over a real LMDB cache and a recording fake blob reader: misses batch into one ReadRanges
// call, fetch-ahead brings the chunks that follow a miss in the blob (and skips cached ones), a corrupt
// neighbour is neither cached nor served, WarmGroup and the prefetcher's windows fetch many chunks per call.
#include <doctest/doctest.h>

#include <functional>
#include <mutex>

#include "cache/chunk_store.h"
#include "common/log.h"
#include "fs/blob_order.h"
#include "fs/chunk_reader.h"
#include "fs/prefetcher.h"
#include "tests/fs/estargz_test_util.h"
#include "tests/test_support.h"

namespace lazyfs::fs {
namespace {

// Counts the batch calls and the ranges asked for; serves the blob of the one layer it holds.
class RecordingBlobReader : public fetch::BlobReader {
 public:
  explicit RecordingBlobReader(std::string blob) : blob_(std::move(blob)), digest_(Sha256Of(blob_)) {}

  Result<std::string> ReadRange(const Sha256Digest& blob, uint64_t offset, uint64_t length) override {
    std::lock_guard lock(mu_);
    ++calls_;
    ranges_.emplace_back(offset, length);
    return Slice(blob, offset, length);
  }
  Result<std::vector<std::string>> ReadRanges(const Sha256Digest& blob,
                                              const std::vector<std::pair<uint64_t, uint64_t>>& ranges) override {
    std::lock_guard lock(mu_);
    ++calls_;
    std::vector<std::string> out;
    for (const auto& [offset, length] : ranges) {
      ranges_.emplace_back(offset, length);
      out.push_back(LAZYFS_TRY(Slice(blob, offset, length)));
    }
    return out;
  }
  Result<uint64_t> Size(const Sha256Digest&) override { return uint64_t{blob_.size()}; }
  Status Stream(const Sha256Digest&, const std::function<Status(std::string_view)>& sink) override {
    return sink(blob_);
  }
  std::string Describe() const override { return "recording"; }

  const Sha256Digest& digest() const { return digest_; }
  size_t calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::vector<std::pair<uint64_t, uint64_t>> TakeRanges() {
    std::lock_guard lock(mu_);
    calls_ = 0;
    return std::exchange(ranges_, {});
  }

 private:
  Result<std::string> Slice(const Sha256Digest& blob, uint64_t offset, uint64_t length) const {
    if (blob != digest_) return NotFound("no blob");
    if (offset > blob_.size() || length > blob_.size() - offset) return Corrupt("short blob");
    return blob_.substr(offset, length);
  }

  const std::string blob_;
  const Sha256Digest digest_;
  std::mutex mu_;
  size_t calls_ = 0;                                   // guarded by mu_
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;  // guarded by mu_
};

std::string Content(int i) { return fmt::format("file {} ", i) + std::string(900 + i, static_cast<char>('a' + i % 26)); }

// One layer of `count` one-chunk files f00, f01, ..., each its own gzip member, back to back in the blob.
// `corrupt`: that file's member holds other bytes than its chunkDigest promises.
struct Layer {
  LayerIndex index;
  std::string blob;

  explicit Layer(int count, int corrupt = -1) {
    for (int i = 0; i < count; ++i) {
      std::string data = Content(i);
      std::string stored = data;
      if (i == corrupt) stored[0] ^= 1;
      std::string member = test::Gzip(stored);
      LayerEntry e;
      e.name = fmt::format("f{:02}", i);
      e.type = EntryType::kRegular;
      e.mode = 0644;
      e.size = data.size();
      e.chunks.push_back({0, data.size(), Sha256Of(data), blob.size(), member.size()});
      index.entries.push_back(std::move(e));
      blob += member;
    }
  }
  uint64_t member_length(int i) const { return index.entries[i].chunks[0].blob_length; }
};

struct Fixture {
  testing::TempDir dir;
  std::unique_ptr<cache::ChunkStore> store;
  Layer layer;
  UnionTree tree;
  RecordingBlobReader blobs;
  BlobOrder order;
  std::unique_ptr<ChunkReader> reader;

  // `edit` changes the layer's index (not its blob) before the tree is built: a lying TOC.
  explicit Fixture(int files, int corrupt = -1, const std::function<void(Layer&)>& edit = nullptr)
      : layer(Edited(Layer(files, corrupt), edit)),
        tree(UnionTree::Build({layer.index}, [](uint32_t, const std::string&, const std::string&) {})),
        blobs(layer.blob) {
    cache::CacheOptions options;
    options.dir = dir.path + "/cache";
    options.access_flush_interval = std::chrono::milliseconds(0);
    store = std::move(cache::ChunkStore::Open(options).value());
    fetch::Descriptor d;
    d.digest = blobs.digest();
    d.size = layer.blob.size();
    reader = std::make_unique<ChunkReader>(*store, std::vector<LayerSource>{{&blobs, d, true}},
                                           [](uint32_t) { return Internal("no plain layers here"); });
    order = BlobOrder::Build(tree, 1);
  }

  static Layer Edited(Layer l, const std::function<void(Layer&)>& edit) {
    if (edit) edit(l);
    return l;
  }

  const Node& File(int i) const { return *tree.Find(*tree.Resolve(fmt::format("f{:02}", i))); }

  Result<std::string> ReadFile(int i) {
    const Node& n = File(i);
    std::string out(n.size, '\0');
    LAZYFS_TRY(reader->Read(n.layer, n.chunks, 0, n.size, out.data()));
    return out;
  }
  bool Cached(int i) { return store->HasChunk(File(i).chunks[0].digest).value(); }
};

}  // namespace

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

}  // namespace lazyfs::fs
