#include "fs/image_loader.h"

#include <atomic>
#include <cstdint>
#include <chrono>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/byte_codec.h"
#include "common/log.h"
#include "fs/entry_name.h"
#include "fs/estargz.h"
#include "fs/package_layer.h"
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

// A composed mount's tree: the image encoding plus the conflicts found when it was built.
std::string ComposedTreeKey(const Sha256Digest& composition) { return "composed-tree/v1/" + composition.ToString(); }

std::string EncodeComposed(const LoadedImage& image) {
  ByteWriter w;
  w.Bytes(EncodeLoaded(image));
  w.U64(image.conflicts.size());
  for (const std::string& c : image.conflicts) w.Bytes(c);
  return w.Take();
}

Status DecodeComposed(std::string_view data, LoadedImage& image) {
  ByteReader r(data);
  LAZYFS_TRY(DecodeLoaded(LAZYFS_TRY(r.Bytes()), image));
  uint64_t count = LAZYFS_TRY(r.U64());
  if (count > data.size()) return Corrupt("bad conflict count");
  for (uint64_t i = 0; i < count; ++i) image.conflicts.emplace_back(LAZYFS_TRY(r.Bytes()));
  return Ok();
}

// Indexes every layer (each through its own blob reader) in parallel: each costs a round trip or two to
// the registry plus a TOC transfer and parse, and on a high-latency link doing them one after another
// added up to half a cold mount. Fills each layer's lazy flag and size, appends landmark prefetch lists
// of the first `prefetch_layers` layers to `prefetch`.
Result<std::vector<LayerIndex>> IndexLayers(const std::string& name, std::vector<LayerInfo>& layers,
                                            cache::ChunkStore& store, size_t prefetch_layers,
                                            std::vector<std::string>& prefetch) {
  std::vector<std::optional<Result<LayerIndex>>> results(layers.size());
  {
    std::atomic<size_t> next{0};
    auto index_layers = [&] {
      for (size_t i; (i = next.fetch_add(1)) < results.size();) {
        auto started = std::chrono::steady_clock::now();
        results[i] = IndexLayer(name, static_cast<uint32_t>(i), *layers[i].blobs, layers[i].descriptor, store);
        LogDebug("image {}: layer {} indexed in {} ms", name, i,
                 std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
      }
    };
    std::vector<std::jthread> helpers;
    for (size_t t = 1; t < std::min(results.size(), kParallelLayerIndexes); ++t) helpers.emplace_back(index_layers);
    index_layers();
  }
  std::vector<LayerIndex> indexes;
  for (uint32_t i = 0; i < layers.size(); ++i) {
    LayerInfo& layer = layers[i];
    Result<LayerIndex>& index = *results[i];
    if (!index) {
      return std::move(index).error().Context(fmt::format("image {} layer {} ({})", name, i, layer.descriptor.digest.ToString()));
    }
    layer.lazy = index->lazy;
    layer.uncompressed_size = index->uncompressed_size;
    if (i < prefetch_layers) {
      for (const std::string& p : index->prefetch) prefetch.push_back(p);
    }
    indexes.push_back(std::move(*index));
  }
  return indexes;
}

SkipReporter LogSkips(const LoadedImage& image) {
  return [&image](uint32_t layer, const std::string& entry, const std::string& why) {
    LogWarn("image {} layer {} ({}) entry '{}': {}", image.name, layer, image.layers[layer].descriptor.digest.ToString(),
            entry, why);
  };
}

// A layer of the base image in FindConflicts' `part_of`.
constexpr size_t kBaseLayer = SIZE_MAX;

// Regular files that two parts place at one path with different bytes (`part_of[i]`: the part of
// placed[i], or kBaseLayer for the base image's layers, which are not looked at).
std::vector<std::string> FindConflicts(const std::vector<LayerIndex>& placed, const std::vector<size_t>& part_of,
                                       const std::vector<MountPart>& parts) {
  struct Seen {
    size_t part;
    const LayerEntry* entry;
  };
  std::unordered_map<std::string, Seen> seen;
  std::vector<std::string> conflicts;
  for (size_t i = 0; i < placed.size(); ++i) {
    if (part_of[i] == kBaseLayer) continue;
    for (const LayerEntry& e : placed[i].entries) {
      if (e.type != EntryType::kRegular) continue;
      std::optional<std::string> path = NormalizeEntryName(e.name);
      if (!path) continue;
      auto [it, fresh] = seen.try_emplace(*path, Seen{part_of[i], &e});
      if (fresh || it->second.part == part_of[i]) continue;
      const LayerEntry& other = *it->second.entry;
      bool same = other.size == e.size && other.chunks.size() == e.chunks.size() &&
                  std::equal(other.chunks.begin(), other.chunks.end(), e.chunks.begin(),
                             [](const ChunkRef& a, const ChunkRef& b) { return a.digest == b.digest; });
      if (!same) {
        conflicts.push_back(fmt::format("{} ({} and {})", *path, parts[it->second.part].name, parts[part_of[i]].name));
      }
      it->second = Seen{part_of[i], &e};
    }
  }
  return conflicts;
}

// Decodes a cached merged tree into an image whose layers are set (DecodeLoaded, DecodeComposed).
using TreeDecoder = Status (*)(std::string_view data, LoadedImage& image);

// Fills `image` from the merged tree cached under `key`: true when there is one and it decodes. An
// unreadable one is logged and left to be built again.
Result<bool> LoadCachedTree(cache::ChunkStore& store, const std::string& key, TreeDecoder decode, LoadedImage& image) {
  std::optional<std::string> cached = LAZYFS_TRY(store.GetMeta(key));
  if (!cached) return false;
  if (Status decoded = decode(*cached, image); !decoded) {
    LogWarn("{}: cached merged tree is unreadable ({}); building it again", image.name, decoded.error().ToString());
    image.prefetch.clear();
    image.conflicts.clear();
    return false;
  }
  image.tree_from_cache = true;
  return true;
}

void StoreTree(cache::ChunkStore& store, const std::string& key, const std::string& encoded, const std::string& name) {
  if (Status stored = store.PutMeta(key, encoded); !stored) {
    LogWarn("{}: could not cache the merged tree: {}", name, stored.error().ToString());
  }
}

}  // namespace

Result<LoadedImage> LoadImage(const std::string& name, fetch::ImageSource& source, cache::ChunkStore& store,
                              const LoadOptions& options) {
  fetch::ResolvedImage resolved = LAZYFS_TRY(source.Resolve());
  LoadedImage image;
  image.name = name;
  image.manifest_digest = resolved.manifest_digest;
  for (const fetch::Descriptor& d : resolved.manifest.layers) image.layers.push_back({d, true, 0, &source.blobs()});

  std::string tree_key = TreeKey(image.manifest_digest);
  if (options.use_tree_cache && LAZYFS_TRY(LoadCachedTree(store, tree_key, DecodeLoaded, image))) return image;
  std::vector<LayerIndex> indexes =
      LAZYFS_TRY(IndexLayers(name, image.layers, store, image.layers.size(), image.prefetch));
  image.tree = UnionTree::Build(indexes, LogSkips(image));
  StoreTree(store, tree_key, EncodeLoaded(image), name);
  return image;
}

Result<LoadedImage> LoadComposed(const std::string& name, fetch::ImageSource* base, const std::vector<MountPart>& parts,
                                 cache::ChunkStore& store, const LoadOptions& options) {
  LoadedImage image;
  image.name = name;
  std::string composition = "composed/v1";
  if (base != nullptr) {
    fetch::ResolvedImage resolved = LAZYFS_TRY(base->Resolve());
    composition += "\nbase " + resolved.manifest_digest.ToString();
    for (const fetch::Descriptor& d : resolved.manifest.layers) image.layers.push_back({d, true, 0, &base->blobs()});
  }
  const size_t base_layers = image.layers.size();
  // Parts are resolved in parallel: each is a manifest and a config, a round trip or two apiece.
  std::vector<std::optional<Result<fetch::ResolvedImage>>> resolved_parts(parts.size());
  {
    std::atomic<size_t> next{0};
    auto resolve = [&] {
      for (size_t i; (i = next.fetch_add(1)) < parts.size();) resolved_parts[i] = parts[i].source->Resolve();
    };
    std::vector<std::jthread> helpers;
    for (size_t t = 1; t < std::min(parts.size(), kParallelLayerIndexes); ++t) helpers.emplace_back(resolve);
    resolve();
  }
  std::vector<size_t> part_of_layer;
  for (size_t p = 0; p < parts.size(); ++p) {
    Result<fetch::ResolvedImage>& part = *resolved_parts[p];
    if (!part) return std::move(part).error().Context(fmt::format("package layer {}", parts[p].name));
    const fetch::ResolvedImage& resolved = *part;
    composition += "\npart " + parts[p].name + " " + resolved.manifest_digest.ToString();
    for (const std::string& path : parts[p].paths) composition += " " + path;
    for (const fetch::Descriptor& d : resolved.manifest.layers) {
      image.layers.push_back({d, true, 0, &parts[p].source->blobs()});
      part_of_layer.push_back(p);
    }
  }
  image.manifest_digest = Sha256Of(composition);

  std::string tree_key = ComposedTreeKey(image.manifest_digest);
  if (options.use_tree_cache && LAZYFS_TRY(LoadCachedTree(store, tree_key, DecodeComposed, image))) return image;
  std::vector<LayerIndex> indexes = LAZYFS_TRY(IndexLayers(name, image.layers, store, base_layers, image.prefetch));
  SkipReporter report = LogSkips(image);
  std::vector<LayerIndex> placed;
  std::vector<uint32_t> slots;
  std::vector<size_t> part_of_placed;
  for (uint32_t i = 0; i < base_layers; ++i) {
    placed.push_back(std::move(indexes[i]));
    slots.push_back(i);
    part_of_placed.push_back(kBaseLayer);
  }
  for (uint32_t i = static_cast<uint32_t>(base_layers); i < image.layers.size(); ++i) {
    const MountPart& part = parts[part_of_layer[i - base_layers]];
    if (!part.paths.empty()) {
      for (const std::string& p : indexes[i].prefetch) image.prefetch.push_back(part.paths.front() + "/" + p);
    }
    for (const std::string& path : part.paths) {
      placed.push_back(PlaceUnder(indexes[i], path, i, report));
      slots.push_back(i);
      part_of_placed.push_back(part_of_layer[i - base_layers]);
    }
  }
  image.conflicts = FindConflicts(placed, part_of_placed, parts);
  for (const std::string& c : image.conflicts) LogWarn("{}: two dists ship {} with different bytes", name, c);
  image.tree = UnionTree::Build(placed, report, slots);
  StoreTree(store, tree_key, EncodeComposed(image), name);
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
  fetch::BlobReader& blobs = layers_[layer].blobs != nullptr ? *layers_[layer].blobs : blobs_;
  Result<LayerIndex> index =
      IndexTarLayer(blobs, layers_[layer].descriptor, store_, fetch::BlobReader::StreamBound::kReadDeadline);
  if (!index) return std::move(index).error();
  return Ok();
}

}  // namespace lazyfs::fs
