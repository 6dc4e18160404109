#include "fs/layer_index.h"

#include "common/byte_codec.h"

namespace lazyfs::fs {
namespace {

constexpr std::string_view kLayerIndexMagic = "LZL1";
// Bounds that no real layer reaches; they stop a corrupt value from making us allocate wildly.
constexpr uint64_t kMaxEntries = 50'000'000;
constexpr uint64_t kMaxChunksPerFile = 1 << 24;
constexpr uint64_t kMaxXattrs = 1 << 16;

Result<uint32_t> U32(ByteReader& r) {
  uint64_t v = LAZYFS_TRY(r.U64());
  if (v > UINT32_MAX) return Corrupt("encoded value out of range");
  return static_cast<uint32_t>(v);
}

}  // namespace

const char* EntryTypeName(EntryType type) {
  switch (type) {
    case EntryType::kRegular: return "reg";
    case EntryType::kDirectory: return "dir";
    case EntryType::kSymlink: return "symlink";
    case EntryType::kHardlink: return "hardlink";
    case EntryType::kCharDevice: return "char";
    case EntryType::kBlockDevice: return "block";
    case EntryType::kFifo: return "fifo";
  }
  return "?";
}

void EncodeChunks(ByteWriter& w, const std::vector<ChunkRef>& chunks) {
  w.U64(chunks.size());
  for (const ChunkRef& c : chunks) {
    w.U64(c.file_offset);
    w.U64(c.size);
    w.Fixed(c.digest.Raw());
    w.U64(c.blob_offset);
    w.U64(c.blob_length);
  }
}

Result<std::vector<ChunkRef>> DecodeChunks(ByteReader& r) {
  uint64_t n = LAZYFS_TRY(r.U64());
  if (n > kMaxChunksPerFile) return Corrupt("too many chunks");
  std::vector<ChunkRef> chunks(n);
  for (ChunkRef& c : chunks) {
    c.file_offset = LAZYFS_TRY(r.U64());
    c.size = LAZYFS_TRY(r.U64());
    c.digest = *Sha256Digest::FromRaw(LAZYFS_TRY(r.Fixed(32)));
    c.blob_offset = LAZYFS_TRY(r.U64());
    c.blob_length = LAZYFS_TRY(r.U64());
  }
  return chunks;
}

void EncodeXattrs(ByteWriter& w, const std::vector<std::pair<std::string, std::string>>& xattrs) {
  w.U64(xattrs.size());
  for (const auto& [name, value] : xattrs) {
    w.Bytes(name);
    w.Bytes(value);
  }
}

Result<std::vector<std::pair<std::string, std::string>>> DecodeXattrs(ByteReader& r) {
  uint64_t n = LAZYFS_TRY(r.U64());
  if (n > kMaxXattrs) return Corrupt("too many xattrs");
  std::vector<std::pair<std::string, std::string>> xattrs;
  xattrs.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    std::string name(LAZYFS_TRY(r.Bytes()));
    std::string value(LAZYFS_TRY(r.Bytes()));
    xattrs.emplace_back(std::move(name), std::move(value));
  }
  return xattrs;
}

std::string EncodeLayerIndex(const LayerIndex& index) {
  ByteWriter w;
  w.Fixed(kLayerIndexMagic);
  w.U64(index.lazy ? 1 : 0);
  w.U64(index.uncompressed_size);
  w.U64(index.prefetch.size());
  for (const std::string& name : index.prefetch) w.Bytes(name);
  w.U64(index.entries.size());
  for (const LayerEntry& e : index.entries) {
    w.Bytes(e.name);
    w.U64(static_cast<uint64_t>(e.type));
    w.U64(e.mode);
    w.U64(e.uid);
    w.U64(e.gid);
    w.I64(e.mtime_sec);
    w.U64(e.mtime_nsec);
    w.U64(e.size);
    w.Bytes(e.link_target);
    w.U64(e.dev_major);
    w.U64(e.dev_minor);
    EncodeXattrs(w, e.xattrs);
    EncodeChunks(w, e.chunks);
  }
  return w.Take();
}

Result<LayerIndex> DecodeLayerIndex(std::string_view data) {
  ByteReader r(data);
  if (LAZYFS_TRY(r.Fixed(kLayerIndexMagic.size())) != kLayerIndexMagic) return Corrupt("not an encoded layer index");
  LayerIndex index;
  index.lazy = LAZYFS_TRY(r.U64()) != 0;
  index.uncompressed_size = LAZYFS_TRY(r.U64());
  uint64_t prefetch = LAZYFS_TRY(r.U64());
  if (prefetch > kMaxEntries) return Corrupt("too many prefetch entries");
  for (uint64_t i = 0; i < prefetch; ++i) index.prefetch.emplace_back(LAZYFS_TRY(r.Bytes()));
  uint64_t n = LAZYFS_TRY(r.U64());
  if (n > kMaxEntries) return Corrupt("too many entries");
  index.entries.resize(n);
  for (LayerEntry& e : index.entries) {
    e.name = LAZYFS_TRY(r.Bytes());
    uint64_t type = LAZYFS_TRY(r.U64());
    if (type > static_cast<uint64_t>(EntryType::kFifo)) return Corrupt("bad entry type");
    e.type = static_cast<EntryType>(type);
    e.mode = LAZYFS_TRY(U32(r));
    e.uid = LAZYFS_TRY(U32(r));
    e.gid = LAZYFS_TRY(U32(r));
    e.mtime_sec = LAZYFS_TRY(r.I64());
    e.mtime_nsec = LAZYFS_TRY(U32(r));
    e.size = LAZYFS_TRY(r.U64());
    e.link_target = LAZYFS_TRY(r.Bytes());
    e.dev_major = LAZYFS_TRY(U32(r));
    e.dev_minor = LAZYFS_TRY(U32(r));
    e.xattrs = LAZYFS_TRY(DecodeXattrs(r));
    e.chunks = LAZYFS_TRY(DecodeChunks(r));
  }
  if (!r.AtEnd()) return Corrupt("trailing bytes after layer index");
  return index;
}

}  // namespace lazyfs::fs
