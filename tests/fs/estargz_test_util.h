// Helpers for the fs tests: tars built with libarchive, an in-memory BlobReader, whole-blob gunzip, a test store.
//
// Thread safety: test-only; FakeBlobReader may be read from several threads once its blobs are added.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cache/chunk_store.h"
#include "common/fd.h"
#include "fetch/blob_reader.h"
#include "fetch/image_source.h"
#include "fs/estargz.h"

namespace lazyfs::fs::test {

struct Attrs {
  unsigned mode = 0644;
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t mtime = 1700000000;
  long mtime_nsec = 0;
  std::vector<std::pair<std::string, std::string>> xattrs = {};
};

// Builds a pax tar in memory.
class TarBuilder {
 public:
  TarBuilder() : a_(archive_write_new()) {
    archive_write_set_format_pax(a_);
    archive_write_set_bytes_per_block(a_, 0);
    archive_write_open(a_, this, nullptr, &TarBuilder::Sink, nullptr);
  }
  ~TarBuilder() { archive_write_free(a_); }
  TarBuilder(const TarBuilder&) = delete;
  TarBuilder& operator=(const TarBuilder&) = delete;

  TarBuilder& File(const std::string& name, const std::string& data, const Attrs& attrs = Attrs{}) {
    archive_entry* e = New(name, AE_IFREG, attrs);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    Write(e, data);
    return *this;
  }
  TarBuilder& Dir(const std::string& name, Attrs attrs = Attrs{}) {
    if (attrs.mode == 0644) attrs.mode = 0755;
    Write(New(name, AE_IFDIR, attrs), "");
    return *this;
  }
  TarBuilder& Symlink(const std::string& name, const std::string& target) {
    archive_entry* e = New(name, AE_IFLNK, Attrs{.mode = 0777});
    archive_entry_set_symlink(e, target.c_str());
    Write(e, "");
    return *this;
  }
  TarBuilder& Hardlink(const std::string& name, const std::string& target) {
    archive_entry* e = New(name, AE_IFREG, Attrs{});
    archive_entry_set_hardlink(e, target.c_str());
    archive_entry_set_size(e, 0);
    Write(e, "");
    return *this;
  }
  TarBuilder& Fifo(const std::string& name) {
    Write(New(name, AE_IFIFO, Attrs{}), "");
    return *this;
  }
  TarBuilder& Device(const std::string& name, mode_t type, unsigned major, unsigned minor) {
    archive_entry* e = New(name, type, Attrs{.mode = 0600});
    archive_entry_set_rdevmajor(e, major);
    archive_entry_set_rdevminor(e, minor);
    Write(e, "");
    return *this;
  }
  std::string Finish() {
    archive_write_close(a_);
    return out_;
  }

 private:
  static la_ssize_t Sink(archive*, void* client, const void* buffer, size_t length) {
    static_cast<TarBuilder*>(client)->out_.append(static_cast<const char*>(buffer), length);
    return static_cast<la_ssize_t>(length);
  }
  archive_entry* New(const std::string& name, mode_t type, const Attrs& attrs) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, attrs.mode);
    archive_entry_set_uid(e, attrs.uid);
    archive_entry_set_gid(e, attrs.gid);
    archive_entry_set_mtime(e, attrs.mtime, attrs.mtime_nsec);
    for (const auto& [k, v] : attrs.xattrs) archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    return e;
  }
  void Write(archive_entry* e, const std::string& data) {
    archive_write_header(a_, e);
    if (!data.empty()) archive_write_data(a_, data.data(), data.size());
    archive_write_finish_entry(a_);
    archive_entry_free(e);
  }

  archive* a_;
  std::string out_;
};

// Gzips `data` as one member.
inline std::string Gzip(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Inflates a concatenation of gzip members (what `gunzip` does to a whole eStargz blob).
inline std::string GunzipAll(const std::string& blob) {
  std::string out;
  z_stream z{};
  inflateInit2(&z, 16 + MAX_WBITS);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(blob.data()));
  z.avail_in = static_cast<uInt>(blob.size());
  char buffer[65536];
  while (z.avail_in > 0) {
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    int r = inflate(&z, Z_NO_FLUSH);
    out.append(buffer, sizeof buffer - z.avail_out);
    if (r == Z_STREAM_END) {
      inflateReset(&z);
    } else if (r != Z_OK) {
      break;
    }
  }
  inflateEnd(&z);
  return out;
}

// Runs the writer over `tar` and returns the blob.
inline Result<std::pair<std::string, EstargzLayerInfo>> Convert(const std::string& tar,
                                                                const EstargzWriterOptions& options = {}) {
  UniqueFd fd(memfd_create("estargz-test", MFD_CLOEXEC));
  size_t pos = 0;
  ReadCallback source = [&](char* buffer, size_t capacity) -> Result<size_t> {
    size_t n = std::min(capacity, tar.size() - pos);
    std::copy_n(tar.data() + pos, n, buffer);
    pos += n;
    return n;
  };
  EstargzLayerInfo info = LAZYFS_TRY(WriteEstargzLayer(source, fd.get(), options));
  uint64_t size = LAZYFS_TRY(FileSize(fd.get(), "blob"));
  std::string blob = LAZYFS_TRY(PreadExact(fd.get(), 0, size, "blob"));
  return std::make_pair(std::move(blob), info);
}

// Blobs in memory. Stream keeps the contract (pieces of kStreamPiece bytes, sha256 checked at the end),
// and the counters are atomic, so tests may stream from several threads.
class FakeBlobReader : public fetch::BlobReader {
 public:
  static constexpr size_t kStreamPiece = 64 << 10;

  // Add before any reader thread starts.
  Sha256Digest Add(std::string blob) {
    Sha256Digest d = Sha256Of(blob);
    blobs_[d] = std::move(blob);
    return d;
  }
  // Serves `bytes` as the blob `digest` (a registry answering with other bytes than the digest names).
  void AddWrong(const Sha256Digest& digest, std::string bytes) { blobs_[digest] = std::move(bytes); }

  Result<std::string> ReadRange(const Sha256Digest& blob, uint64_t offset, uint64_t length) override {
    ++range_reads;
    auto it = blobs_.find(blob);
    if (it == blobs_.end()) return NotFound("no blob");
    if (offset > it->second.size() || length > it->second.size() - offset) return Corrupt("short blob");
    return it->second.substr(offset, length);
  }
  Result<uint64_t> Size(const Sha256Digest& blob) override {
    auto it = blobs_.find(blob);
    if (it == blobs_.end()) return NotFound("no blob");
    return uint64_t{it->second.size()};
  }
  Status Stream(const Sha256Digest& blob, const std::function<Status(std::string_view)>& sink, StreamBound) override {
    ++streams;
    auto it = blobs_.find(blob);
    if (it == blobs_.end()) return NotFound("no blob");
    std::string_view all = it->second;
    for (size_t at = 0; at < all.size(); at += kStreamPiece) LAZYFS_TRY(sink(all.substr(at, kStreamPiece)));
    if (Sha256Of(all) != blob) return Corrupt("blob does not match its digest");
    return Ok();
  }
  std::string Describe() const override { return "fake"; }

  std::atomic<int> range_reads = 0;  // ReadRange calls so far
  std::atomic<int> streams = 0;      // Stream calls so far

 private:
  std::map<Sha256Digest, std::string> blobs_;
};

// An image in memory: `image` is what Resolve returns, its blobs are in `blob_reader`.
class FakeImageSource : public fetch::ImageSource {
 public:
  Result<fetch::ResolvedImage> Resolve() override { return image; }
  fetch::BlobReader& blobs() override { return blob_reader; }
  std::string Describe() const override { return "fake image"; }

  fetch::ResolvedImage image;
  FakeBlobReader blob_reader;
};

// A real LMDB store under `dir` that records accesses at once (tests look at them right away).
inline std::unique_ptr<cache::ChunkStore> OpenTestStore(const std::string& dir) {
  cache::CacheOptions options;
  options.dir = dir;
  options.access_flush_interval = std::chrono::milliseconds(0);
  return std::move(cache::ChunkStore::Open(options).value());
}

inline fetch::Descriptor LayerDescriptor(const Sha256Digest& digest, const std::string& blob,
                                         const std::optional<Sha256Digest>& toc_digest) {
  fetch::Descriptor d;
  d.media_type = std::string(fetch::kMediaTypeOciLayerGzip);
  d.digest = digest;
  d.size = blob.size();
  if (toc_digest) d.annotations[std::string(fetch::kAnnotationTocDigest)] = toc_digest->ToString();
  return d;
}

}  // namespace lazyfs::fs::test
