// LoadImage: from a resolved image to what a mount serves: the merged UnionTree and, per layer, where its
// chunks come from. Layer indexes are cached in the meta database by layer digest (a plain layer is
// streamed once per host, not once per image), and the merged tree by manifest digest (the next mount of
// the same image parses no TOC at all). Layers are indexed in parallel (up to 8 at once).
//
// Thread safety: LoadImage is reentrant. A LoadedImage's restreamer may be called from any thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cache/chunk_store.h"
#include "common/result.h"
#include "fetch/image_source.h"
#include "fs/chunk_reader.h"
#include "fs/union_tree.h"

namespace lazyfs::fs {

struct LayerInfo {
  fetch::Descriptor descriptor;
  bool lazy = true;                 // eStargz: read chunk by chunk; false: streamed whole once
  uint64_t uncompressed_size = 0;
  // Where the layer's blob is read from: its image's source (a composed mount reads each package layer
  // from its own artifact). Not owned; outlives the loaded image's readers.
  fetch::BlobReader* blobs = nullptr;
};

struct LoadedImage {
  std::string name;                 // the reference as the user gave it, for log lines
  Sha256Digest manifest_digest;
  std::vector<LayerInfo> layers;    // bottom to top
  UnionTree tree;
  bool tree_from_cache = false;
  // eStargz landmark prefetch lists, top layer last (a composed mount's parts: under their first path)
  std::vector<std::string> prefetch;
  // Composed mounts: paths two package layers both ship with different bytes in the merged view, each
  // as "PATH (A==1 and B==2)"; the upper dist wins.
  std::vector<std::string> conflicts;
};

struct LoadOptions {
  bool use_tree_cache = true;
};

// Resolves `source`, indexes every layer (from the meta cache when possible) and merges them.
// A layer that cannot be indexed at all (missing blob, corrupt plain layer) fails the load with an error
// that names it; an eStargz layer with an unusable TOC falls back to the whole-layer path, with a warning.
Result<LoadedImage> LoadImage(const std::string& name, fetch::ImageSource& source, cache::ChunkStore& store,
                              const LoadOptions& options = {});

// One part of a composed mount: an image whose layers' trees appear under `paths` (relative to the mount
// root, e.g. "packages/six==1.16.0/files" and "packages/site"), above the base image.
struct MountPart {
  std::string name;                // "six==1.16.0", for log lines and conflict reports
  fetch::ImageSource* source = nullptr;  // not owned; outlives the loaded image
  std::vector<std::string> paths;
};

// A base image (or none: `base` null) with parts placed above it, merged into one tree (LoadImage's rules;
// whiteouts of parts are dropped, fs/package_layer.h). Layers are the base's, then each part's; the
// merged tree is cached under a digest of the composition (the base manifest, each part's manifest and
// paths), which is also the result's manifest_digest. Errors name the image or part that failed.
Result<LoadedImage> LoadComposed(const std::string& name, fetch::ImageSource* base, const std::vector<MountPart>& parts,
                                 cache::ChunkStore& store, const LoadOptions& options = {});

// The meta-cache keys LoadImage reads and writes for `image` (its merged tree and its layers' indexes), and
// every chunk the image's layers reference (from the cached layer indexes, plus the tree's): what
// `lazyfs cache rm` removes. Layers whose index is not cached contribute only the tree's chunks.
std::vector<std::string> ImageMetaKeys(const LoadedImage& image);
Result<std::vector<Sha256Digest>> ImageChunks(const LoadedImage& image, cache::ChunkStore& store);

// Streams plain layers again when their chunks were evicted; one restream per layer at a time, bounded by
// the blob reader's read deadline (a FUSE read waits on it).
class LayerRestreamers {
 public:
  // A layer is streamed from its LayerInfo::blobs, else from `blobs`.
  LayerRestreamers(fetch::BlobReader& blobs, cache::ChunkStore& store, std::vector<LayerInfo> layers);
  // Makes `wanted` (a chunk of `layer`) be in the cache again: returns at once if it is there by the time
  // this layer's lock is held (another reader's stream brought it), else streams the layer.
  Status Restream(uint32_t layer, const Sha256Digest& wanted);

 private:
  fetch::BlobReader& blobs_;
  cache::ChunkStore& store_;
  const std::vector<LayerInfo> layers_;
  // One mutex per layer, held while that layer streams (across HTTP, on purpose: it is the single flight
  // of the layer): a second reader that misses a chunk of the same layer waits, then finds it in the cache.
  std::vector<std::unique_ptr<std::mutex>> layer_mu_;
};

}  // namespace lazyfs::fs
