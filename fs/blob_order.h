// BlobOrder: the chunks of each lazy layer that a mounted tree can serve, sorted by where they sit in the
// layer blob, so a miss can fetch the chunks that follow it in the same request (ChunkReader's
// fetch-ahead): those of files in the same directory as the missed one.
//
// Why: on a link with tens of milliseconds of latency a start-up that reads thousands of small files pays
// one round trip per miss (HelloBench `wan`: django read ~5,000 files and took 4x longer lazily than a full
// pull). Files read one after another at start-up — a Python package's modules, a library and its
// neighbours — mostly lie next to each other in the layer, because image builders write a directory's
// entries together; fetching the next few hundred KiB of the blob with a miss turns many round trips into
// one at the cost of some bytes nobody reads. Only small chunks (kSmallChunk compressed bytes or less) of
// files in the missed file's own directory come along, and only when the miss itself is small: a package's
// modules are read together, while the next directory in the blob is as often not read at all, and a
// big file's transfer time dwarfs the round trip anyway (/usr/lib holds hundreds of libraries a start-up
// mostly does not read: fetching every neighbour raised redis's fetched bytes by half, for no time saved).
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

  // Compressed size up to which a chunk counts as small.
  static constexpr uint64_t kSmallChunk = 32 << 10;

  // When `chunk` is small: the small chunks of `layer` that start after `chunk` and before `chunk`'s end +
  // `window` bytes in the blob, nearest first, whose files sit in the same directory as `chunk`'s file;
  // at most `max` of them. `chunk` must be one of the tree's own ChunkRefs (it is found by address);
  // others have no neighbours.
  std::vector<const ChunkRef*> Neighbours(uint32_t layer, const ChunkRef& chunk, uint64_t window, size_t max) const;

  size_t chunk_count() const;

 private:
  struct Entry {
    const ChunkRef* chunk;
    uint64_t dir;  // inode of the directory holding the chunk's file
  };
  std::vector<std::vector<Entry>> by_layer_;  // each sorted by blob_offset
};

}  // namespace lazyfs::fs
