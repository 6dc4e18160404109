#include "fs/blob_order.h"

#include <algorithm>

namespace lazyfs::fs {

BlobOrder BlobOrder::Build(const UnionTree& tree, size_t layer_count) {
  BlobOrder order;
  order.by_layer_.resize(layer_count);
  for (uint64_t ino = 1; ino <= tree.node_count(); ++ino) {
    const Node* n = tree.Find(ino);
    if (!n || n->type != EntryType::kRegular || n->layer >= layer_count) continue;
    for (const ChunkRef& c : n->chunks) {
      if (c.blob_length > 0) order.by_layer_[n->layer].push_back(&c);
    }
  }
  for (auto& chunks : order.by_layer_) {
    // Hardlinked names share one node, so no chunk appears twice; equal offsets cannot happen in a sane
    // layer, and a hostile one only makes fetch-ahead less useful.
    std::sort(chunks.begin(), chunks.end(),
              [](const ChunkRef* a, const ChunkRef* b) { return a->blob_offset < b->blob_offset; });
  }
  return order;
}

std::span<const ChunkRef* const> BlobOrder::After(uint32_t layer, const ChunkRef& chunk) const {
  if (layer >= by_layer_.size()) return {};
  const std::vector<const ChunkRef*>& chunks = by_layer_[layer];
  auto it = std::upper_bound(chunks.begin(), chunks.end(), chunk.blob_offset,
                             [](uint64_t offset, const ChunkRef* c) { return offset < c->blob_offset; });
  return {it, chunks.end()};
}

size_t BlobOrder::chunk_count() const {
  size_t n = 0;
  for (const auto& chunks : by_layer_) n += chunks.size();
  return n;
}

}  // namespace lazyfs::fs
