// LoadImage over an in-memory image (an eStargz layer under a plain tar.gz layer) and a real LMDB cache:
// the merged tree, which layer is lazy, what each load reads from the blobs (the layer indexes and the
// merged tree are cached by digest, so a second load reads nothing), the fallback of a TOC that fails its
// digest, a missing blob named in the error, and the keys and chunks `lazyfs cache rm` removes.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "cache/chunk_store.h"
#include "fs/image_loader.h"
#include "tests/fs/estargz_test_util.h"
#include "tests/test_support.h"

namespace lazyfs::fs {
namespace {

// An eStargz layer (etc/os-release, etc/big in 64 KiB chunks, etc/gone) under a plain tar.gz layer that
// replaces etc/os-release, whites out etc/gone and adds app.
struct ImageFixture {
  testing::TempDir dir;
  std::unique_ptr<cache::ChunkStore> store;
  test::FakeImageSource source;
  std::string lower_big = testing::PseudoRandomBytes(300 << 10, 7);

  // `toc_digest_ok` false: the eStargz layer's annotation names another TOC (the layer is still a valid
  // tar.gz, so it must load through the whole-layer path). `lose_plain_blob`: the registry lacks layer 1.
  explicit ImageFixture(bool toc_digest_ok = true, bool lose_plain_blob = false) {
    store = test::OpenTestStore(dir.path + "/cache");

    test::TarBuilder lower;
    lower.Dir("etc").File("etc/os-release", "lower\n").File("etc/big", lower_big).File("etc/gone", "x");
    EstargzWriterOptions writer;
    writer.chunk_size = 64 << 10;
    auto [estargz, info] = test::Convert(lower.Finish(), writer).value();
    test::TarBuilder upper;
    upper.Dir("etc").File("etc/os-release", "upper\n").File("etc/.wh.gone", "").File("app", "hello");
    std::string plain = test::Gzip(upper.Finish());

    source.image.manifest_digest = Sha256Of(estargz + plain + (toc_digest_ok ? "" : "bad toc"));
    Sha256Digest lower_digest = source.blob_reader.Add(estargz);
    Sha256Digest upper_digest = lose_plain_blob ? Sha256Of(plain) : source.blob_reader.Add(plain);
    std::optional<Sha256Digest> toc = toc_digest_ok ? info.toc_digest : Sha256Of(std::string("another toc"));
    source.image.manifest.layers = {test::LayerDescriptor(lower_digest, estargz, toc),
                                    test::LayerDescriptor(upper_digest, plain, std::nullopt)};
  }

  static std::optional<uint64_t> InoAt(const UnionTree& tree, const std::string& path) {
    uint64_t ino = kRootIno;
    for (size_t from = 0; from <= path.size();) {
      size_t slash = std::min(path.find('/', from), path.size());
      std::optional<uint64_t> child = tree.Lookup(ino, std::string_view(path).substr(from, slash - from));
      if (!child) return std::nullopt;
      ino = *child;
      from = slash + 1;
    }
    return ino;
  }
  static const Node& At(const UnionTree& tree, const std::string& path) {
    std::optional<uint64_t> ino = InoAt(tree, path);
    REQUIRE_MESSAGE(ino.has_value(), "no " << path);
    return *tree.Find(*ino);
  }
};

}  // namespace

TEST_CASE("LoadImage: the merged tree, a lazy eStargz layer, a plain layer streamed once") {
  ImageFixture f;
  LoadedImage image = LoadImage("test", f.source, *f.store).value();
  REQUIRE(image.layers.size() == 2);
  CHECK(image.layers[0].lazy);
  CHECK_FALSE(image.layers[1].lazy);
  CHECK_FALSE(image.tree_from_cache);
  CHECK(f.At(image.tree, "etc/os-release").layer == 1);  // the upper layer's file wins
  CHECK(f.At(image.tree, "etc/os-release").size == 6);
  CHECK(f.At(image.tree, "etc/big").layer == 0);
  CHECK(f.At(image.tree, "etc/big").size == f.lower_big.size());
  CHECK_FALSE(f.InoAt(image.tree, "etc/gone").has_value());  // whited out
  CHECK(f.At(image.tree, "app").size == 5);
  CHECK(f.source.blob_reader.streams == 1);           // the plain layer, once
  CHECK(f.source.blob_reader.range_reads >= 1);       // the eStargz footer and TOC
  CHECK(f.source.blob_reader.range_reads <= 2);
}

TEST_CASE("LoadImage: a second load takes the merged tree from the cache and reads no blob") {
  ImageFixture f;
  LoadedImage first = LoadImage("test", f.source, *f.store).value();
  int streams = f.source.blob_reader.streams, ranges = f.source.blob_reader.range_reads;
  LoadedImage second = LoadImage("test", f.source, *f.store).value();
  CHECK(second.tree_from_cache);
  CHECK(f.source.blob_reader.streams == streams);
  CHECK(f.source.blob_reader.range_reads == ranges);
  CHECK(second.tree.node_count() == first.tree.node_count());
  CHECK(second.tree.Encode() == first.tree.Encode());
  CHECK(second.layers[0].lazy);
  CHECK_FALSE(second.layers[1].lazy);

  SUBCASE("without the tree cache, the layer indexes still come from the cache") {
    LoadOptions options;
    options.use_tree_cache = false;
    LoadedImage third = LoadImage("test", f.source, *f.store, options).value();
    CHECK_FALSE(third.tree_from_cache);
    CHECK(f.source.blob_reader.streams == streams);
    CHECK(f.source.blob_reader.range_reads == ranges);
    CHECK(third.tree.Encode() == first.tree.Encode());
  }
}

TEST_CASE("LoadImage: an eStargz TOC that fails its digest is served through the whole-layer path") {
  ImageFixture f(/*toc_digest_ok=*/false);
  LoadedImage image = LoadImage("test", f.source, *f.store).value();
  CHECK_FALSE(image.layers[0].lazy);
  CHECK(f.source.blob_reader.streams == 2);  // both layers streamed whole
  CHECK(f.At(image.tree, "etc/big").size == f.lower_big.size());
}

TEST_CASE("LoadImage: a layer whose blob is missing fails the load, naming the layer") {
  ImageFixture f(true, /*lose_plain_blob=*/true);
  Result<LoadedImage> image = LoadImage("test", f.source, *f.store);
  REQUIRE_FALSE(image.has_value());
  std::string message = image.error().ToString();
  CHECK(message.find("layer 1") != std::string::npos);
  CHECK(message.find(f.source.image.manifest.layers[1].digest.ToString()) != std::string::npos);
}

TEST_CASE("ImageMetaKeys and ImageChunks: what `lazyfs cache rm` removes") {
  ImageFixture f;
  LoadedImage image = LoadImage("test", f.source, *f.store).value();
  std::vector<std::string> keys = ImageMetaKeys(image);
  REQUIRE(keys.size() == 3);  // the tree and one index per layer
  for (const std::string& key : keys) CHECK(f.store->GetMeta(key).value().has_value());
  std::vector<Sha256Digest> chunks = ImageChunks(image, *f.store).value();
  const Node& big = f.At(image.tree, "etc/big");
  CHECK(big.chunks.size() == 5);  // 300 KiB in 64 KiB chunks
  for (const ChunkRef& c : big.chunks) CHECK(std::find(chunks.begin(), chunks.end(), c.digest) != chunks.end());
  std::set<Sha256Digest> tree_chunks;
  for (uint64_t ino = kRootIno; ino <= image.tree.node_count(); ++ino) {
    if (const Node* n = image.tree.Find(ino)) {
      for (const ChunkRef& c : n->chunks) tree_chunks.insert(c.digest);
    }
  }
  // Plus the chunks of the two files upper layer hides: the lower etc/os-release and etc/gone.
  CHECK(chunks.size() == tree_chunks.size() + 2);
}

}  // namespace lazyfs::fs
