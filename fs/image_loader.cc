#include "fs/image_loader.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <unordered_set>

#include "common/byte_codec.h"
#include "common/log.h"
#include "fs/estargz.h"
#include "fs/tar_layer.h"

namespace lazyfs::fs {
namespace {

// Meta keys carry a format version so an upgraded lazyfs never misreads an older encoding.
std::string LayerKey(const fetch::Descriptor& layer) {
  std::string toc = layer.Annotation(fetch::kAnnotationTocDigest).value_or("-");
  return "layer/v1/" + layer.digest.ToString() + "/" + toc;
}

// Layers indexed at once by LoadImage.
constexpr size_t kParallelLayerIndexes = 8;

std::string TreeKey(const Sha256Digest& manifest) { return "tree/v1/" + manifest.ToString(); }

Result<LayerIndex> IndexLayer(const std::string& image, uint32_t number, fetch::BlobReader& blobs,
                              const fetch::Descriptor& layer, cache::ChunkStore& store) {
  fetch::LayerCompression compression = LAZYFS_TRY(fetch::LayerCompressionOf(layer.media_type));
  std::string key = LayerKey(layer);
  if (std::optional<std::string> cached = LAZYFS_TRY(store.GetMeta(key))) {
    if (Result<LayerIndex> index = DecodeLayerIndex(*cached)) return index;
    LogWarn("image {}: cached index of layer {} is unreadable; indexing it again", image, layer.digest.ToString());
  }
  // eStargz is gzip by definition; only gzip layers can carry a footer and TOC.
  Result<LayerIndex> index = Unsupported("not gzip");
  if (compression == fetch::LayerCompression::kGzip) index = ReadEstargzIndex(blobs, layer);
  if (!index) {
    if (index.error().code() == ErrorCode::kNotFound) return std::move(index).error();
    if (index.error().code() != ErrorCode::kUnsupported) {
      // The layer is still a valid tar.gz whose digest we can verify: serve it, just not lazily.
      LogWarn("image {}: layer {} ({}): unusable eStargz TOC: {}; reading the whole layer instead", image, number,
              layer.digest.ToString(), index.error().ToString());
    } else {
      LogInfo("image {}: layer {} ({}) is not eStargz; streaming it whole once", image, number, layer.digest.ToString());
    }
    index = IndexTarLayer(blobs, layer, store, fetch::BlobReader::StreamBound::kUnbounded);
  }
  if (!index) return std::move(index).error();
  if (Status stored = store.PutMeta(key, EncodeLayerIndex(*index)); !stored) {
    LogWarn("image {}: could not cache the index of layer {}: {}", image, layer.digest.ToString(),
            stored.error().ToString());
  }
  return index;
}

std::string EncodeLoaded(const LoadedImage& image) {
  ByteWriter w;
  w.U64(image.layers.size());
  for (const LayerInfo& l : image.layers) {
    w.U64(l.lazy ? 1 : 0);
    w.U64(l.uncompressed_size);
  }
  w.U64(image.prefetch.size());
  for (const std::string& p : image.prefetch) w.Bytes(p);
  w.Bytes(image.tree.Encode());
  return w.Take();
}

Status DecodeLoaded(std::string_view data, LoadedImage& image) {
  ByteReader r(data);
  if (LAZYFS_TRY(r.U64()) != image.layers.size()) return Corrupt("cached tree has a different layer count");
  for (LayerInfo& l : image.layers) {
    l.lazy = LAZYFS_TRY(r.U64()) != 0;
    l.uncompressed_size = LAZYFS_TRY(r.U64());
  }
  uint64_t prefetch = LAZYFS_TRY(r.U64());
  if (prefetch > data.size()) return Corrupt("bad prefetch count");
  for (uint64_t i = 0; i < prefetch; ++i) image.prefetch.emplace_back(LAZYFS_TRY(r.Bytes()));
  image.tree = LAZYFS_TRY(UnionTree::Decode(LAZYFS_TRY(r.Bytes())));
  return Ok();
}

}  // namespace

Result<LoadedImage> LoadImage(const std::string& name, fetch::ImageSource& source, cache::ChunkStore& store,
                              const LoadOptions& options) {
  fetch::ResolvedImage resolved = LAZYFS_TRY(source.Resolve());
  LoadedImage image;
  image.name = name;
  image.manifest_digest = resolved.manifest_digest;
  for (const fetch::Descriptor& d : resolved.manifest.layers) image.layers.push_back({d, true, 0});

  std::string tree_key = TreeKey(image.manifest_digest);
  if (options.use_tree_cache) {
    if (std::optional<std::string> cached = LAZYFS_TRY(store.GetMeta(tree_key))) {
      if (Status decoded = DecodeLoaded(*cached, image)) {
        image.tree_from_cache = true;
        return image;
      } else {
        LogWarn("image {}: cached merged tree is unreadable ({}); building it again", name, decoded.error().ToString());
        image.prefetch.clear();
      }
    }
  }

  // Layers are indexed in parallel: each costs a round trip or two to the registry plus a TOC transfer and
  // parse, and on a high-latency link doing them one after another added up to half a cold mount.
  std::vector<std::optional<Result<LayerIndex>>> results(image.layers.size());
  {
    std::atomic<size_t> next{0};
    auto index_layers = [&] {
      for (size_t i; (i = next.fetch_add(1)) < results.size();) {
        auto started = std::chrono::steady_clock::now();
        results[i] = IndexLayer(name, static_cast<uint32_t>(i), source.blobs(), image.layers[i].descriptor, store);
        LogDebug("image {}: layer {} indexed in {} ms", name, i,
                 std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
      }
    };
    std::vector<std::jthread> helpers;
    for (size_t t = 1; t < std::min(results.size(), kParallelLayerIndexes); ++t) helpers.emplace_back(index_layers);
    index_layers();
  }
  std::vector<LayerIndex> indexes;
  for (uint32_t i = 0; i < image.layers.size(); ++i) {
    LayerInfo& layer = image.layers[i];
    Result<LayerIndex>& index = *results[i];
    if (!index) {
      return std::move(index).error().Context(fmt::format("image {} layer {} ({})", name, i, layer.descriptor.digest.ToString()));
    }
    layer.lazy = index->lazy;
    layer.uncompressed_size = index->uncompressed_size;
    for (const std::string& p : index->prefetch) image.prefetch.push_back(p);
    indexes.push_back(std::move(*index));
  }
  image.tree = UnionTree::Build(indexes, [&](uint32_t layer, const std::string& entry, const std::string& why) {
    LogWarn("image {} layer {} ({}) entry '{}': {}", name, layer, image.layers[layer].descriptor.digest.ToString(),
            entry, why);
  });
  if (Status stored = store.PutMeta(tree_key, EncodeLoaded(image)); !stored) {
    LogWarn("image {}: could not cache the merged tree: {}", name, stored.error().ToString());
  }
  return image;
}

std::vector<std::string> ImageMetaKeys(const LoadedImage& image) {
  std::vector<std::string> keys = {TreeKey(image.manifest_digest)};
  for (const LayerInfo& l : image.layers) keys.push_back(LayerKey(l.descriptor));
  return keys;
}

Result<std::vector<Sha256Digest>> ImageChunks(const LoadedImage& image, cache::ChunkStore& store) {
  std::unordered_set<Sha256Digest, Sha256DigestHash> chunks;
  for (uint64_t ino = kRootIno; ino <= image.tree.node_count(); ++ino) {
    if (const Node* n = image.tree.Find(ino)) {
      for (const ChunkRef& c : n->chunks) chunks.insert(c.digest);
    }
  }
  // Files hidden by upper layers are not in the tree, but their chunks are in the cache all the same.
  for (const LayerInfo& l : image.layers) {
    std::optional<std::string> cached = LAZYFS_TRY(store.GetMeta(LayerKey(l.descriptor)));
    if (!cached) continue;
    Result<LayerIndex> index = DecodeLayerIndex(*cached);
    if (!index) continue;
    for (const LayerEntry& e : index->entries) {
      for (const ChunkRef& c : e.chunks) chunks.insert(c.digest);
    }
  }
  return std::vector<Sha256Digest>(chunks.begin(), chunks.end());
}

LayerRestreamers::LayerRestreamers(fetch::BlobReader& blobs, cache::ChunkStore& store, std::vector<LayerInfo> layers)
    : blobs_(blobs), store_(store), layers_(std::move(layers)) {
  for (size_t i = 0; i < layers_.size(); ++i) layer_mu_.push_back(std::make_unique<std::mutex>());
}

Status LayerRestreamers::Restream(uint32_t layer, const Sha256Digest& wanted) {
  if (layer >= layers_.size()) return Internal("restream of a layer the image does not have");
  std::lock_guard lock(*layer_mu_[layer]);
  // Readers that missed other chunks of this layer while it streamed waited here: the stream that just
  // ended stored their chunks too, so they find them instead of streaming the layer once each.
  if (Result<bool> cached = store_.HasChunk(wanted); cached && *cached) return Ok();
  LogInfo("layer {}: chunks missing from the cache; streaming the layer again", layers_[layer].descriptor.digest.ToString());
  Result<LayerIndex> index =
      IndexTarLayer(blobs_, layers_[layer].descriptor, store_, fetch::BlobReader::StreamBound::kReadDeadline);
  if (!index) return std::move(index).error();
  return Ok();
}

}  // namespace lazyfs::fs
