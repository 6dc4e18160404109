// A `docker save` tarball as an ImageSource (see docker_archive.h).
//
// Layout of the archives we read (both generations of `docker save`):
//   manifest.json          [{"Config": "<hex>.json", "RepoTags": [...], "Layers": ["<id>/layer.tar", ...]}]
//   <hex>.json, <id>/layer.tar, ...            (classic; duplicate layers are symlinks "../<id>/layer.tar")
//   blobs/sha256/<hex>, index.json, oci-layout (docker 25+; manifest.json then names "blobs/sha256/<hex>")
// Some tools name files "sha256:<hex>" in manifest.json; those are looked up as blobs/sha256/<hex> too.
//
// Thread safety: everything is immutable after OpenDockerArchive; reads use pread on one shared fd.
#include "fetch/docker_archive.h"

#include <fcntl.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <map>
#include <unordered_map>
#include <vector>

#include "common/fd.h"
#include "common/log.h"
#include "fetch/archive_handles.h"

namespace lazyfs::fetch {
namespace {

constexpr size_t kPieceSize = 1 << 20;
constexpr int kMaxLinkHops = 16;

// Where one regular file's bytes are in the (uncompressed) tarball, and what they hash to.
struct FileEntry {
  uint64_t offset = 0;
  uint64_t size = 0;
  Sha256Digest digest;
  LayerCompression compression = LayerCompression::kNone;  // sniffed from the first bytes
};

LayerCompression SniffCompression(std::string_view head) {
  if (head.starts_with("\x1f\x8b")) return LayerCompression::kGzip;
  if (head.starts_with("\x28\xb5\x2f\xfd")) return LayerCompression::kZstd;
  return LayerCompression::kNone;
}

std::string_view LayerMediaType(LayerCompression compression) {
  switch (compression) {
    case LayerCompression::kGzip: return kMediaTypeOciLayerGzip;
    case LayerCompression::kZstd: return kMediaTypeOciLayerZstd;
    case LayerCompression::kNone: break;
  }
  return kMediaTypeOciLayer;
}

// Lexically normalizes a path inside the archive ("./a/../b" -> "b"); nullopt if it climbs above the root.
std::optional<std::string> NormalizeArchivePath(std::string_view path) {
  std::vector<std::string_view> parts;
  for (size_t start = 0; start <= path.size();) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(start, slash - start);
    if (part == "..") {
      if (parts.empty()) return std::nullopt;
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = slash + 1;
  }
  std::string out;
  for (std::string_view part : parts) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

std::string Dirname(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

// Serves the archive's files (by the digests computed while indexing) and the synthesized manifest.
class DockerArchiveBlobReader final : public BlobReader {
 public:
  DockerArchiveBlobReader(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  void AddFile(const FileEntry& entry) { files_.emplace(entry.digest, entry); }
  void AddMemoryBlob(std::string data) {
    Sha256Digest digest = Sha256Of(data);
    memory_.emplace(digest, std::move(data));
  }

  Result<std::string> ReadRange(const Sha256Digest& blob, uint64_t offset, uint64_t length) override {
    if (auto it = memory_.find(blob); it != memory_.end()) {
      const std::string& data = it->second;
      if (offset > data.size() || length > data.size() - offset) return PastEnd(blob, data.size(), offset, length);
      return data.substr(offset, length);
    }
    const FileEntry* file = LAZYFS_TRY(Find(blob));
    if (offset > file->size || length > file->size - offset) return PastEnd(blob, file->size, offset, length);
    return PreadExact(fd_.get(), file->offset + offset, length, path_);
  }

  Result<uint64_t> Size(const Sha256Digest& blob) override {
    if (auto it = memory_.find(blob); it != memory_.end()) return it->second.size();
    const FileEntry* file = LAZYFS_TRY(Find(blob));
    return file->size;
  }

  Status Stream(const Sha256Digest& blob, const std::function<Status(std::string_view)>& sink, StreamBound) override {
    Sha256Hasher hasher;
    uint64_t size = LAZYFS_TRY(Size(blob));
    for (uint64_t offset = 0; offset < size;) {
      uint64_t length = std::min<uint64_t>(kPieceSize, size - offset);
      std::string piece = LAZYFS_TRY(ReadRange(blob, offset, length));
      hasher.Update(piece);
      LAZYFS_TRY(sink(piece));
      offset += length;
    }
    // The archive may have changed since it was indexed; verify like any other source.
    Sha256Digest actual = hasher.Finish();
    if (actual != blob) {
      return Corrupt(fmt::format("blob {} in {}: digest mismatch (content hashes to {}; was the file changed?)",
                                 blob.ToString(), Describe(), actual.ToString()));
    }
    return Ok();
  }

  std::string Describe() const override { return "docker-archive:" + path_; }

 private:
  Result<const FileEntry*> Find(const Sha256Digest& blob) const {
    auto it = files_.find(blob);
    if (it == files_.end()) return NotFound(fmt::format("blob {} not found in {}", blob.ToString(), Describe()));
    return &it->second;
  }
  Error PastEnd(const Sha256Digest& blob, uint64_t size, uint64_t offset, uint64_t length) const {
    return Corrupt(fmt::format("blob {} in {} is {} bytes; range [{}, {}) is past its end", blob.ToString(),
                               Describe(), size, offset, offset + length));
  }

  const std::string path_;
  const UniqueFd fd_;
  std::unordered_map<Sha256Digest, FileEntry, Sha256DigestHash> files_;    // filled before sharing
  std::unordered_map<Sha256Digest, std::string, Sha256DigestHash> memory_;  // filled before sharing
};

class DockerArchiveSource final : public ImageSource {
 public:
  DockerArchiveSource(std::unique_ptr<DockerArchiveBlobReader> blobs, ResolvedImage resolved)
      : blobs_(std::move(blobs)), resolved_(std::move(resolved)) {}

  Result<ResolvedImage> Resolve() override { return resolved_; }
  BlobReader& blobs() override { return *blobs_; }
  std::string Describe() const override { return blobs_->Describe(); }

 private:
  std::unique_ptr<DockerArchiveBlobReader> blobs_;
  ResolvedImage resolved_;
};

// The tarball's table of contents: regular files by normalized name, and links (symlinks resolved
// relative to their directory, hardlinks by archive path) by name.
struct ArchiveIndex {
  std::map<std::string, FileEntry> files;
  std::map<std::string, std::string> links;

  Result<const FileEntry*> Lookup(std::string_view name, std::string_view archive) const {
    auto normalized = NormalizeArchivePath(name);
    if (!normalized) return Corrupt(fmt::format("{}: path \"{}\" climbs out of the archive", archive, name));
    std::string current = *normalized;
    for (int hop = 0; hop <= kMaxLinkHops; ++hop) {
      if (auto it = files.find(current); it != files.end()) return &it->second;
      auto link = links.find(current);
      if (link == links.end()) break;
      current = link->second;
    }
    // manifest.json entries written as digests ("sha256:<hex>") live under blobs/sha256/ in newer saves.
    if (normalized->starts_with("sha256:")) {
      return Lookup("blobs/sha256/" + normalized->substr(7), archive);
    }
    return NotFound(fmt::format("{}: manifest.json names \"{}\", which is not a file in the archive", archive, name));
  }
};

// Reads the whole tarball once: records every regular file's data offset and sha256.
Result<ArchiveIndex> IndexArchive(const std::string& path, int pread_fd) {
  std::string head = LAZYFS_TRY(PreadExact(pread_fd, 0, std::min<uint64_t>(6, LAZYFS_TRY(FileSize(pread_fd, path))), path));
  if (head.starts_with("\x1f\x8b") || head.starts_with("\x28\xb5\x2f\xfd") || head.starts_with("BZh") ||
      head.starts_with("\xfd" "7zXZ")) {
    return Unsupported(fmt::format("docker-archive:{} is compressed; only uncompressed `docker save` tarballs are "
                                   "supported (decompress it first)", path));
  }

  ArchiveReadPtr a(archive_read_new());
  if (!a) return Internal("archive_read_new failed");
  // Tar only, no decompression filters: data offsets must be offsets in the file itself.
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), kPieceSize) != ARCHIVE_OK) {
    // The format is detected at open: a file we could open ourselves that libarchive rejects is not a tar.
    std::string why = ArchiveErrorString(a.get());
    // libarchive reports an unrecognized format with its private ARCHIVE_ERRNO_FILE_FORMAT, which is
    // EILSEQ (or EINVAL) on Linux builds; -1 is ARCHIVE_ERRNO_MISC.
    if (int err = archive_errno(a.get()); err == EILSEQ || err == EINVAL || err == -1) {
      return Corrupt(fmt::format("docker-archive:{}: not a tar archive: {}", path, why));
    }
    return IoError(fmt::format("docker-archive:{}: {}", path, why));
  }

  ArchiveIndex index;
  std::string buffer(kPieceSize, '\0');
  for (;;) {
    archive_entry* entry = nullptr;
    int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) {
      return Corrupt(fmt::format("docker-archive:{}: not a readable tar archive: {}", path, ArchiveErrorString(a.get())));
    }
    const char* raw_name = archive_entry_pathname(entry);
    auto name = NormalizeArchivePath(raw_name ? raw_name : "");
    if (!name || name->empty()) continue;  // unsafe or empty names are never referenced by a valid manifest

    if (const char* target = archive_entry_hardlink(entry)) {
      if (auto t = NormalizeArchivePath(target)) index.links[*name] = *t;
      continue;
    }
    if (archive_entry_filetype(entry) == AE_IFLNK) {
      const char* target = archive_entry_symlink(entry);
      if (!target) continue;
      std::string joined = std::string(target).starts_with('/') ? std::string(target) : Dirname(*name) + "/" + target;
      if (auto t = NormalizeArchivePath(joined)) index.links[*name] = *t;
      continue;
    }
    if (archive_entry_filetype(entry) != AE_IFREG) continue;
    if (archive_entry_sparse_count(entry) > 0) {
      return Unsupported(fmt::format("docker-archive:{}: entry {} is a sparse file", path, *name));
    }

    FileEntry file;
    // After the header is consumed, the read position is where this entry's data starts.
    file.offset = static_cast<uint64_t>(archive_filter_bytes(a.get(), 0));
    file.size = static_cast<uint64_t>(archive_entry_size(entry));
    Sha256Hasher hasher;
    uint64_t read = 0;
    std::string first;
    for (;;) {
      la_ssize_t n = archive_read_data(a.get(), buffer.data(), buffer.size());
      if (n < 0) {
        return Corrupt(fmt::format("docker-archive:{}: reading {}: {}", path, *name, ArchiveErrorString(a.get())));
      }
      if (n == 0) break;
      std::string_view piece(buffer.data(), static_cast<size_t>(n));
      if (read == 0) first = std::string(piece.substr(0, 512));
      hasher.Update(piece);
      read += static_cast<uint64_t>(n);
    }
    if (read != file.size) {
      return Corrupt(fmt::format("docker-archive:{}: entry {} has {} bytes, header says {}", path, *name, read, file.size));
    }
    // Cross-check the offset once: pread serves these bytes later, so they must be the ones we hashed.
    if (!first.empty()) {
      std::string at_offset = LAZYFS_TRY(PreadExact(pread_fd, file.offset, first.size(), path));
      if (at_offset != first) {
        return Unsupported(fmt::format("docker-archive:{}: cannot locate the data of {} in the file", path, *name));
      }
    }
    file.digest = hasher.Finish();
    file.compression = SniffCompression(first);
    index.files[*name] = file;
  }
  return index;
}

struct ArchiveManifest {
  std::string config;
  std::vector<std::string> layers;
};

Result<ArchiveManifest> ParseArchiveManifest(std::string_view text, const std::string& path) {
  std::string where = fmt::format("docker-archive:{}: manifest.json", path);
  try {
    auto doc = nlohmann::json::parse(text);
    if (!doc.is_array()) return Corrupt(where + ": must be a JSON array");
    if (doc.empty()) return Corrupt(where + ": lists no images");
    if (doc.size() > 1) {
      return Unsupported(fmt::format("{}: holds {} images; only single-image archives are supported", where, doc.size()));
    }
    const auto& image = doc[0];
    if (!image.is_object()) return Corrupt(where + ": entry must be an object");
    auto config = image.find("Config");
    if (config == image.end() || !config->is_string()) return Corrupt(where + ": \"Config\" must be a string");
    auto layers = image.find("Layers");
    if (layers == image.end() || !layers->is_array()) return Corrupt(where + ": \"Layers\" must be an array");
    ArchiveManifest out;
    out.config = config->get<std::string>();
    for (const auto& layer : *layers) {
      if (!layer.is_string()) return Corrupt(where + ": \"Layers\" entries must be strings");
      out.layers.push_back(layer.get<std::string>());
    }
    return out;
  } catch (const nlohmann::json::exception& e) {
    return Corrupt(fmt::format("{}: not valid JSON: {}", where, e.what()));
  }
}

}  // namespace

Result<std::unique_ptr<ImageSource>> OpenDockerArchive(const std::string& path) {
  UniqueFd fd = LAZYFS_TRY(OpenFile(path, O_RDONLY));
  ArchiveIndex index = LAZYFS_TRY(IndexArchive(path, fd.get()));

  auto manifest_entry = index.files.find("manifest.json");
  if (manifest_entry == index.files.end()) {
    return Corrupt(fmt::format("docker-archive:{}: no manifest.json (is this a `docker save` tarball?)", path));
  }
  if (manifest_entry->second.size > kMaxManifestSize) {
    return Corrupt(fmt::format("docker-archive:{}: manifest.json is too large", path));
  }
  std::string manifest_text =
      LAZYFS_TRY(PreadExact(fd.get(), manifest_entry->second.offset, manifest_entry->second.size, path));
  ArchiveManifest archive_manifest = LAZYFS_TRY(ParseArchiveManifest(manifest_text, path));

  std::string where = "docker-archive:" + path;
  const FileEntry* config = LAZYFS_TRY(index.Lookup(archive_manifest.config, where));
  if (config->size > kMaxConfigSize) return Corrupt(fmt::format("{}: config {} is too large", where, archive_manifest.config));

  Manifest manifest;
  manifest.media_type = std::string(kMediaTypeOciManifest);
  manifest.config.media_type = std::string(kMediaTypeOciConfig);
  manifest.config.digest = config->digest;
  manifest.config.size = config->size;
  std::vector<FileEntry> served{*config};
  for (const std::string& name : archive_manifest.layers) {
    const FileEntry* layer = LAZYFS_TRY(index.Lookup(name, where));
    Descriptor d;
    d.media_type = std::string(LayerMediaType(layer->compression));
    d.digest = layer->digest;
    d.size = layer->size;
    manifest.layers.push_back(std::move(d));
    served.push_back(*layer);
  }

  ResolvedImage resolved;
  resolved.config_json = LAZYFS_TRY(PreadExact(fd.get(), config->offset, config->size, path));
  std::string manifest_json = ManifestToJson(manifest);
  resolved.manifest_digest = Sha256Of(manifest_json);
  resolved.manifest = std::move(manifest);

  auto blobs = std::make_unique<DockerArchiveBlobReader>(path, std::move(fd));
  for (const FileEntry& entry : served) blobs->AddFile(entry);
  blobs->AddMemoryBlob(std::move(manifest_json));
  LogDebug("docker-archive:{}: {} layers, config {}, manifest {}", path, resolved.manifest.layers.size(),
           resolved.manifest.config.digest.Short(), resolved.manifest_digest.Short());
  return std::unique_ptr<ImageSource>(std::make_unique<DockerArchiveSource>(std::move(blobs), std::move(resolved)));
}

}  // namespace lazyfs::fetch
