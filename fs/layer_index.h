// LayerIndex: what one layer contributes to the union, independent of its format. Every layer format
// (eStargz TOC, plain tar streamed whole, package layers later) produces one; the union builder is the
// only consumer and owns all path and whiteout rules.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/digest.h"
#include "common/result.h"

namespace lazyfs::fs {

enum class EntryType : uint8_t {
  kRegular,
  kDirectory,
  kSymlink,
  kHardlink,  // link_target names another entry of the same layer
  kCharDevice,
  kBlockDevice,
  kFifo,
};

const char* EntryTypeName(EntryType type);

// Where the bytes of one chunk of a file are.
struct ChunkRef {
  uint64_t file_offset = 0;  // offset of the chunk in the file
  uint64_t size = 0;         // uncompressed size
  Sha256Digest digest;       // sha256 of the uncompressed bytes: the cache key and the trust anchor
  // The gzip member holding the chunk inside the layer blob (eStargz). The member starts at blob_offset;
  // blob_length bounds it (up to the next member). blob_length == 0: the chunk lives only in the cache
  // (plain layers, cut while the whole layer was streamed) and is re-made by streaming the layer again.
  uint64_t blob_offset = 0;
  uint64_t blob_length = 0;
};

struct LayerEntry {
  // The entry's name as the layer spells it ("./usr/bin/", "etc/passwd", even "../x" in hostile input).
  // The union builder normalizes it and rejects unsafe names.
  std::string name;
  EntryType type = EntryType::kRegular;
  uint32_t mode = 0;  // permission bits plus setuid/setgid/sticky (07777), no type bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  uint64_t size = 0;        // regular files
  std::string link_target;  // symlink target, or the hardlink's target name in this layer
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;  // name -> raw value
  std::vector<ChunkRef> chunks;  // regular files: sorted by file_offset, covering [0, size) exactly
};

struct LayerIndex {
  std::vector<LayerEntry> entries;       // in layer order
  bool lazy = true;                      // false: the whole layer had to be streamed (plain tar)
  uint64_t uncompressed_size = 0;        // tar stream size, when known
  std::vector<std::string> prefetch;     // names before .prefetch.landmark (eStargz), in order
};

}  // namespace lazyfs::fs

namespace lazyfs {
class ByteWriter;
class ByteReader;
}  // namespace lazyfs

namespace lazyfs::fs {

// The binary encoding of a LayerIndex for the cache's meta database (a plain layer is streamed whole once,
// then later mounts of any image sharing it read this instead). Decode rejects malformed input.
std::string EncodeLayerIndex(const LayerIndex& index);
Result<LayerIndex> DecodeLayerIndex(std::string_view data);

// Pieces shared with the merged tree's encoding.
void EncodeChunks(ByteWriter& w, const std::vector<ChunkRef>& chunks);
Result<std::vector<ChunkRef>> DecodeChunks(ByteReader& r);
void EncodeXattrs(ByteWriter& w, const std::vector<std::pair<std::string, std::string>>& xattrs);
Result<std::vector<std::pair<std::string, std::string>>> DecodeXattrs(ByteReader& r);

}  // namespace lazyfs::fs
