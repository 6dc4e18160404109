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
      if (c.blob_length > 0) order.by_layer_[n->layer].push_back({&c, n->parent});
    }
  }
  for (auto& entries : order.by_layer_) {
    // Hardlinked names share one node, so no chunk appears twice; equal offsets cannot happen in a sane
    // layer, and a hostile one only makes fetch-ahead less useful.
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.chunk->blob_offset < b.chunk->blob_offset; });
  }
  return order;
}

std::vector<const ChunkRef*> BlobOrder::Neighbours(uint32_t layer, const ChunkRef& chunk, uint64_t window,
                                                   size_t max) const {
  std::vector<const ChunkRef*> out;
  if (layer >= by_layer_.size() || max == 0 || chunk.blob_length > kSmallChunk) return out;
  const std::vector<Entry>& entries = by_layer_[layer];
  auto it = std::lower_bound(entries.begin(), entries.end(), chunk.blob_offset,
                             [](const Entry& e, uint64_t offset) { return e.chunk->blob_offset < offset; });
  while (it != entries.end() && it->chunk != &chunk && it->chunk->blob_offset == chunk.blob_offset) ++it;
  if (it == entries.end() || it->chunk != &chunk) return out;
  uint64_t dir = it->dir;
  uint64_t limit = chunk.blob_offset + chunk.blob_length + window;
  for (++it; it != entries.end() && it->chunk->blob_offset < limit && out.size() < max; ++it) {
    if (it->dir == dir && it->chunk->blob_length <= kSmallChunk) out.push_back(it->chunk);
  }
  return out;
}

size_t BlobOrder::chunk_count() const {
  size_t n = 0;
  for (const auto& entries : by_layer_) n += entries.size();
  return n;
}

}  // namespace lazyfs::fs
