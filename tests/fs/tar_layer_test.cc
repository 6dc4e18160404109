// IndexTarLayer (the whole-layer path for plain tar+gzip layers) and LayerRestreamers over an in-memory
// blob reader and a real LMDB cache: one stream per index, files cut into chunks that land in the cache,
// nothing usable from a blob that fails its digest or size, and one stream for many readers that miss
// chunks of an evicted layer at once.
#include <doctest/doctest.h>

#include <thread>

#include "cache/chunk_store.h"
#include "fs/image_loader.h"
#include "fs/tar_layer.h"
#include "tests/fs/estargz_test_util.h"
#include "tests/test_support.h"

namespace lazyfs::fs {
namespace {

constexpr uint64_t kChunk = 64 << 10;
using Bound = fetch::BlobReader::StreamBound;

struct TarFixture {
  testing::TempDir dir;
  std::unique_ptr<cache::ChunkStore> store;
  test::FakeBlobReader blobs;
  std::string big = testing::PseudoRandomBytes(5 * kChunk / 2, 1);  // two and a half chunks
  std::string blob;
  fetch::Descriptor layer;

  TarFixture() {
    store = test::OpenTestStore(dir.path + "/cache");
    test::TarBuilder tar;
    tar.Dir("usr").File("usr/small", "hello").File("usr/big", big).Symlink("usr/link", "small");
    blob = test::Gzip(tar.Finish());
    layer.digest = blobs.Add(blob);
    layer.size = blob.size();
    layer.media_type = std::string(fetch::kMediaTypeOciLayerGzip);
  }

  const LayerEntry& Entry(const LayerIndex& index, const std::string& name) {
    for (const LayerEntry& e : index.entries) {
      if (e.name == name) return e;
    }
    FAIL("no entry " << name);
    return index.entries.front();
  }
};

}  // namespace

TEST_CASE("IndexTarLayer: one stream, no range reads; files cut into chunks that are in the cache") {
  TarFixture f;
  LayerIndex index = IndexTarLayer(f.blobs, f.layer, *f.store, Bound::kUnbounded, kChunk).value();
  CHECK(f.blobs.streams == 1);
  CHECK(f.blobs.range_reads == 0);
  CHECK_FALSE(index.lazy);
  const LayerEntry& big = f.Entry(index, "usr/big");
  CHECK(big.size == f.big.size());
  REQUIRE(big.chunks.size() == 3);
  CHECK(big.chunks[2].file_offset == 2 * kChunk);
  CHECK(big.chunks[2].size == kChunk / 2);
  for (const ChunkRef& c : big.chunks) {
    CHECK(c.blob_length == 0);  // only in the cache: plain layers have no ranges to fetch
    CHECK(f.store->GetChunk(c.digest).value().value() == f.big.substr(c.file_offset, c.size));
  }
  CHECK(f.Entry(index, "usr/link").link_target == "small");
  CHECK(f.Entry(index, "usr/small").chunks.at(0).digest == Sha256Of(std::string("hello")));
}

TEST_CASE("IndexTarLayer: a blob that fails its digest or its size gives no index") {
  TarFixture f;
  SUBCASE("other bytes under the digest") {
    std::string wrong = f.blob;
    wrong[wrong.size() - 9] ^= 1;  // the gzip trailer's CRC: the tar still parses
    f.blobs.AddWrong(f.layer.digest, wrong);
    Result<LayerIndex> index = IndexTarLayer(f.blobs, f.layer, *f.store, Bound::kUnbounded, kChunk);
    REQUIRE_FALSE(index);
    CHECK(index.error().code() == ErrorCode::kCorrupt);
  }
  SUBCASE("a good tar with a byte more than the digest names: the stream's digest check refuses it") {
    f.blobs.AddWrong(f.layer.digest, f.blob + std::string(1, '\0'));
    f.layer.size += 1;
    Result<LayerIndex> index = IndexTarLayer(f.blobs, f.layer, *f.store, Bound::kUnbounded, kChunk);
    REQUIRE_FALSE(index);
    CHECK(index.error().code() == ErrorCode::kCorrupt);
    CHECK(index.error().message().find("layer not used") != std::string::npos);
  }
  SUBCASE("a descriptor shorter than the blob") {
    f.layer.size -= 100;
    Result<LayerIndex> index = IndexTarLayer(f.blobs, f.layer, *f.store, Bound::kUnbounded, kChunk);
    REQUIRE_FALSE(index);
    CHECK(index.error().code() == ErrorCode::kCorrupt);
  }
  SUBCASE("a descriptor longer than the blob") {
    f.layer.size += 100;
    Result<LayerIndex> index = IndexTarLayer(f.blobs, f.layer, *f.store, Bound::kUnbounded, kChunk);
    REQUIRE_FALSE(index);
    CHECK(index.error().code() == ErrorCode::kCorrupt);
  }
  SUBCASE("not a tar stream at all: refused early, the stream stopped") {
    std::string garbage = testing::PseudoRandomBytes(1 << 20, 9);
    f.layer.digest = f.blobs.Add(garbage);
    f.layer.size = garbage.size();
    Result<LayerIndex> index = IndexTarLayer(f.blobs, f.layer, *f.store, Bound::kUnbounded, kChunk);
    REQUIRE_FALSE(index);
    CHECK(index.error().code() == ErrorCode::kCorrupt);
  }
}

TEST_CASE("LayerRestreamers: readers missing different chunks of an evicted layer at once stream it once") {
  TarFixture f;
  // The chunk size restreams use (kTarChunkSize), so the restream stores the same chunks.
  LayerIndex index = IndexTarLayer(f.blobs, f.layer, *f.store, Bound::kUnbounded).value();
  std::vector<Sha256Digest> digests;
  for (const char* name : {"usr/small", "usr/big"}) {
    for (const ChunkRef& c : f.Entry(index, name).chunks) digests.push_back(c.digest);
  }
  REQUIRE(f.store->DeleteChunks(digests).value().chunks == digests.size());

  LayerInfo info;
  info.descriptor = f.layer;
  info.lazy = false;
  LayerRestreamers restreamers(f.blobs, *f.store, {info});
  std::vector<std::thread> readers;
  std::atomic<int> failed = 0;
  for (int i = 0; i < 8; ++i) {
    readers.emplace_back([&, i] {
      if (!restreamers.Restream(0, digests[i % digests.size()])) ++failed;
    });
  }
  for (std::thread& t : readers) t.join();
  CHECK(failed == 0);
  CHECK(f.blobs.streams == 2);  // the index, then one restream for all eight
  for (const Sha256Digest& d : digests) CHECK(f.store->HasChunk(d).value());
}

}  // namespace lazyfs::fs
