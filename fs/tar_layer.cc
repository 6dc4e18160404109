#include "fs/tar_layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <memory>

#include "common/log.h"
#include "fetch/archive_handles.h"
#include "fetch/blob_pull.h"

namespace lazyfs::fs {
namespace {

// Feeds libarchive from one streaming read of the blob (BlobPull); the stream checks the blob's sha256.
struct BlobFeed {
  fetch::BlobPull& pull;
  uint64_t size;  // the descriptor's: a longer blob is refused before it is all read
  std::optional<Error> error;

  la_ssize_t Next(const void** buffer) {
    Result<std::string_view> piece = pull.Next();
    if (!piece) {
      error = piece.error();
      return -1;
    }
    if (pull.position() > size) {
      error = Corrupt(fmt::format("blob longer than the {} bytes its descriptor says", size));
      return -1;
    }
    *buffer = piece->data();
    return static_cast<la_ssize_t>(piece->size());
  }

  static la_ssize_t Read(archive*, void* self, const void** buffer) { return static_cast<BlobFeed*>(self)->Next(buffer); }
};

EntryType TypeOf(archive_entry* entry) {
  if (archive_entry_hardlink(entry) != nullptr) return EntryType::kHardlink;
  switch (archive_entry_filetype(entry)) {
    case AE_IFDIR: return EntryType::kDirectory;
    case AE_IFLNK: return EntryType::kSymlink;
    case AE_IFCHR: return EntryType::kCharDevice;
    case AE_IFBLK: return EntryType::kBlockDevice;
    case AE_IFIFO: return EntryType::kFifo;
    default: return EntryType::kRegular;
  }
}

Status StoreChunk(cache::ChunkStore& store, std::string_view data, uint64_t file_offset, LayerEntry& entry) {
  ChunkRef ref;
  ref.file_offset = file_offset;
  ref.size = data.size();
  ref.digest = Sha256Of(data);
  LAZYFS_TRY(store.PutChunk(ref.digest, data));
  entry.chunks.push_back(ref);
  return Ok();
}

}  // namespace

Result<LayerIndex> IndexTarLayer(fetch::BlobReader& blobs, const fetch::Descriptor& layer, cache::ChunkStore& store,
                                 fetch::BlobReader::StreamBound bound, uint64_t chunk_size) {
  std::string where = "layer " + layer.digest.ToString();
  // Declared before the archive, so libarchive is freed (it may still read) before the stream is stopped.
  fetch::BlobPull pull(blobs, layer.digest, bound);
  BlobFeed feed{pull, layer.size, std::nullopt};
  fetch::ArchiveReadPtr a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  auto archive_error = [&](const std::string& what) -> Error {
    if (feed.error) return std::move(*feed.error).Context(where);
    return Corrupt(where + ": " + what + ": " + fetch::ArchiveErrorString(a.get()));
  };
  if (archive_read_open(a.get(), &feed, nullptr, &BlobFeed::Read, nullptr) != ARCHIVE_OK) {
    return archive_error("not a tar stream");
  }
  LayerIndex index;
  index.lazy = false;
  std::string chunk;
  chunk.reserve(chunk_size);
  for (;;) {
    archive_entry* entry = nullptr;
    int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc == ARCHIVE_WARN) LogWarn("{}: {}", where, archive_error_string(a.get()));
    else if (rc != ARCHIVE_OK) return archive_error("bad tar header");
    LayerEntry e;
    e.name = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    e.type = TypeOf(entry);
    e.mode = archive_entry_perm(entry) & 07777;
    e.uid = static_cast<uint32_t>(archive_entry_uid(entry));
    e.gid = static_cast<uint32_t>(archive_entry_gid(entry));
    e.mtime_sec = archive_entry_mtime(entry);
    e.mtime_nsec = static_cast<uint32_t>(archive_entry_mtime_nsec(entry));
    if (e.type == EntryType::kHardlink) e.link_target = archive_entry_hardlink(entry);
    if (e.type == EntryType::kSymlink && archive_entry_symlink(entry)) e.link_target = archive_entry_symlink(entry);
    if (e.type == EntryType::kCharDevice || e.type == EntryType::kBlockDevice) {
      e.dev_major = static_cast<uint32_t>(archive_entry_rdevmajor(entry));
      e.dev_minor = static_cast<uint32_t>(archive_entry_rdevminor(entry));
    }
    archive_entry_xattr_reset(entry);
    const char* xname = nullptr;
    const void* xvalue = nullptr;
    size_t xsize = 0;
    while (archive_entry_xattr_next(entry, &xname, &xvalue, &xsize) == ARCHIVE_OK) {
      e.xattrs.emplace_back(xname, std::string(static_cast<const char*>(xvalue), xsize));
    }
    if (e.type == EntryType::kRegular) {
      // Read through archive_read_data, which fills sparse holes with zeros.
      uint64_t file_offset = 0;
      chunk.clear();
      for (;;) {
        size_t room = chunk_size - chunk.size();
        size_t old = chunk.size();
        chunk.resize(chunk_size);
        la_ssize_t n = archive_read_data(a.get(), chunk.data() + old, room);
        if (n < 0) return archive_error("bad file data in " + e.name);
        chunk.resize(old + static_cast<size_t>(n));
        if (n == 0 || chunk.size() == chunk_size) {
          if (!chunk.empty()) {
            LAZYFS_TRY(StoreChunk(store, chunk, file_offset, e));
            file_offset += chunk.size();
            chunk.clear();
          }
          if (n == 0) break;
        }
      }
      e.size = file_offset;
    }
    index.entries.push_back(std::move(e));
  }
  index.uncompressed_size = static_cast<uint64_t>(archive_filter_bytes(a.get(), 0));
  // libarchive stops at the end-of-archive marker; the digest covers the whole blob, padding included, and
  // only a stream that ended with its digest matched makes the index usable.
  if (Status finished = pull.Finish(); !finished) {
    return std::move(finished).error().Context(where + " (layer not used)");
  }
  if (pull.position() != layer.size) {
    return Corrupt(fmt::format("{}: blob is {} bytes, its descriptor says {}; layer not used", where,
                               pull.position(), layer.size));
  }
  return index;
}

}  // namespace lazyfs::fs
