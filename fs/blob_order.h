// BlobOrder: the chunks of each lazy layer that a mounted tree can serve, sorted by where they sit in the
// layer blob, so a miss can fetch the chunks that follow it in the same request (ChunkReader's
// fetch-ahead).
//
// Why: on a link with tens of milliseconds of latency a start-up that reads thousands of small files pays
// one round trip per miss (HelloBench `wan`: django read ~5,000 files and took 4x longer lazily than a full
// pull). Files read one after another at start-up — a Python package's modules, a library and its
// neighbours — mostly lie next to each other in the layer, because image builders write a directory's
// entries together; fetching the next few hundred KiB of the blob with a miss turns many round trips into
// one at the cost of some bytes nobody reads.
//
// Only chunks of visible regular files are listed (a file hidden by an upper layer is never read), and only
// blob-backed ones (plain layers' chunks are re-made by streaming, not by ranges).
//
// Thread safety: immutable after Build. Holds pointers into the tree, which must outlive it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "fs/layer_index.h"
#include "fs/union_tree.h"

namespace lazyfs::fs {

class BlobOrder {
 public:
  BlobOrder() = default;
  static BlobOrder Build(const UnionTree& tree, size_t layer_count);

  // The chunks of `layer` that start after `chunk` in the blob, nearest first.
  std::span<const ChunkRef* const> After(uint32_t layer, const ChunkRef& chunk) const;

  size_t chunk_count() const;

 private:
  std::vector<std::vector<const ChunkRef*>> by_layer_;  // each sorted by blob_offset
};

}  // namespace lazyfs::fs
