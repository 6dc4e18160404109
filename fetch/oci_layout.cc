// OciLayout and its pread-based BlobReader (see oci_layout.h). The layout format is the OCI image-layout
// spec: an `oci-layout` marker file, `index.json` (an image index whose entries name tags through the
// org.opencontainers.image.ref.name annotation) and content-addressed blobs under blobs/sha256/.
//
// Thread safety: OciLayout is immutable after Open/Create; readers share nothing but the blob reader's fd
// cache, which is guarded by a mutex never held across a syscall. Writers assume one writing process per
// layout: index.json is rewritten whole and renamed into place (readers never see half a file), but two
// concurrent Tag calls could lose one update.
#include "fetch/oci_layout.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <mutex>
#include <unordered_map>

#include "common/fd.h"

namespace lazyfs::fetch {
namespace {

using nlohmann::ordered_json;

constexpr uint64_t kStreamPieceSize = 1 << 20;
// Open blob fds kept per reader. Images have tens of layers; the cap only guards against fd exhaustion
// when one reader serves many images.
constexpr size_t kMaxOpenBlobs = 64;

std::string IndexPath(const std::string& dir) { return dir + "/index.json"; }
std::string MarkerPath(const std::string& dir) { return dir + "/oci-layout"; }

bool PathExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Result<ordered_json> ReadIndexJson(const std::string& dir) {
  std::string path = IndexPath(dir);
  std::string text = LAZYFS_TRY(ReadWholeFile(path));
  try {
    ordered_json doc = ordered_json::parse(text);
    if (!doc.is_object()) return Corrupt(fmt::format("{}: not a JSON object", path));
    return doc;
  } catch (const ordered_json::exception& e) {
    return Corrupt(fmt::format("{}: not valid JSON: {}", path, e.what()));
  }
}

// Reads blobs from blobs/sha256/<hex> with pread. Open fds are cached: blobs are immutable, so an fd and
// the size seen at open stay valid for the reader's lifetime.
class OciLayoutBlobReader final : public BlobReader {
 public:
  explicit OciLayoutBlobReader(OciLayout layout) : layout_(std::move(layout)) {}

  Result<std::string> ReadRange(const Sha256Digest& blob, uint64_t offset, uint64_t length) override {
    auto open = LAZYFS_TRY(Get(blob));
    // Checked before PreadExact allocates `length` bytes: a bad range must not become a huge allocation.
    if (offset > open->size || length > open->size - offset) {
      return Corrupt(fmt::format("blob {} in {} is {} bytes; range [{}, {}) is past its end", blob.ToString(),
                                 Describe(), open->size, offset, offset + length));
    }
    return PreadExact(open->fd.get(), offset, length, layout_.BlobPath(blob));
  }

  Result<uint64_t> Size(const Sha256Digest& blob) override {
    auto open = LAZYFS_TRY(Get(blob));
    return open->size;
  }

  Status Stream(const Sha256Digest& blob, const std::function<Status(std::string_view)>& sink, StreamBound) override {
    auto open = LAZYFS_TRY(Get(blob));
    std::string path = layout_.BlobPath(blob);
    std::string buffer(kStreamPieceSize, '\0');
    Sha256Hasher hasher;
    uint64_t offset = 0;
    for (;;) {
      ssize_t n = ::pread(open->fd.get(), buffer.data(), buffer.size(), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return PosixError(errno, "read " + path);
      }
      if (n == 0) break;
      std::string_view piece(buffer.data(), static_cast<size_t>(n));
      hasher.Update(piece);
      LAZYFS_TRY(sink(piece));
      offset += static_cast<uint64_t>(n);
    }
    Sha256Digest actual = hasher.Finish();
    if (actual != blob) {
      return Corrupt(fmt::format("blob {} in {}: digest mismatch (content hashes to {})", blob.ToString(), Describe(),
                                 actual.ToString()));
    }
    return Ok();
  }

  std::string Describe() const override { return "oci:" + layout_.dir(); }

 private:
  struct OpenBlob {
    UniqueFd fd;
    uint64_t size = 0;
  };

  Result<std::shared_ptr<const OpenBlob>> Get(const Sha256Digest& blob) {
    {
      std::lock_guard lock(mu_);
      if (auto it = open_.find(blob); it != open_.end()) return it->second;
    }
    // Opened without the lock (no lock across a syscall); a racing thread's fd is simply dropped.
    std::string path = layout_.BlobPath(blob);
    auto fd = OpenFile(path, O_RDONLY);
    if (!fd) {
      if (fd.error().code() == ErrorCode::kNotFound) {
        return NotFound(fmt::format("blob {} not found in OCI layout {}", blob.ToString(), layout_.dir()));
      }
      return std::move(fd).error();
    }
    auto entry = std::make_shared<OpenBlob>();
    entry->size = LAZYFS_TRY(FileSize(fd->get(), path));
    entry->fd = std::move(*fd);
    std::lock_guard lock(mu_);
    if (open_.size() >= kMaxOpenBlobs) open_.clear();  // in-flight users keep their shared_ptr alive
    auto [it, inserted] = open_.emplace(blob, std::move(entry));
    return it->second;
  }

  const OciLayout layout_;
  std::mutex mu_;
  std::unordered_map<Sha256Digest, std::shared_ptr<const OpenBlob>, Sha256DigestHash> open_;  // guarded by mu_
};

}  // namespace

Result<OciLayout> OciLayout::Open(const std::string& dir) {
  if (!PathExists(MarkerPath(dir)) || !PathExists(IndexPath(dir))) {
    return NotFound(fmt::format("{} is not an OCI image layout (no oci-layout or index.json)", dir));
  }
  std::string marker = LAZYFS_TRY(ReadWholeFile(MarkerPath(dir)));
  try {
    auto doc = nlohmann::json::parse(marker);
    auto version = doc.is_object() ? doc.find("imageLayoutVersion") : doc.end();
    if (!doc.is_object() || version == doc.end() || !version->is_string()) {
      return Corrupt(fmt::format("{}: no imageLayoutVersion", MarkerPath(dir)));
    }
    if (!version->get<std::string>().starts_with("1.")) {
      return Unsupported(fmt::format("{}: image layout version {} (only 1.x)", MarkerPath(dir), version->dump()));
    }
  } catch (const nlohmann::json::exception& e) {
    return Corrupt(fmt::format("{}: not valid JSON: {}", MarkerPath(dir), e.what()));
  }
  return OciLayout(dir);
}

Result<OciLayout> OciLayout::Create(const std::string& dir) {
  LAZYFS_TRY(MakeDirs(dir + "/blobs/sha256"));
  if (!PathExists(MarkerPath(dir))) LAZYFS_TRY(WriteFileAtomic(MarkerPath(dir), R"({"imageLayoutVersion":"1.0.0"})"));
  if (!PathExists(IndexPath(dir))) {
    ordered_json index;
    index["schemaVersion"] = 2;
    index["mediaType"] = kMediaTypeOciIndex;
    index["manifests"] = ordered_json::array();
    LAZYFS_TRY(WriteFileAtomic(IndexPath(dir), index.dump()));
  }
  return Open(dir);
}

std::string OciLayout::BlobPath(const Sha256Digest& digest) const { return dir_ + "/blobs/sha256/" + digest.Hex(); }

Result<Descriptor> OciLayout::Resolve(const std::string& tag) const {
  std::string text = LAZYFS_TRY(ReadWholeFile(IndexPath(dir_)));
  auto index = ParseImageIndex(text);
  if (!index) return std::move(index).error().Context(IndexPath(dir_));

  std::string tags;
  const Descriptor* latest = nullptr;
  for (const Descriptor& d : index->manifests) {
    auto name = d.Annotation(kAnnotationRefName);
    if (name && !tag.empty() && *name == tag) return d;
    if (name && *name == "latest") latest = &d;
    if (!tags.empty()) tags += ", ";
    tags += name ? *name : "(untagged)";
  }
  if (tag.empty()) {
    if (index->manifests.size() == 1) return index->manifests.front();
    if (latest != nullptr) return *latest;
    if (index->manifests.empty()) return NotFound(fmt::format("OCI layout {} holds no images", dir_));
    return NotFound(fmt::format("OCI layout {} holds {} images and none is tagged latest; name a tag (oci:{}:TAG) "
                                "from: {}", dir_, index->manifests.size(), dir_, tags));
  }
  return NotFound(fmt::format("tag \"{}\" not found in OCI layout {} (tags: {})", tag, dir_, tags.empty() ? "none" : tags));
}

Result<Sha256Digest> OciLayout::AddBlob(std::string_view data) const {
  Sha256Digest digest = Sha256Of(data);
  std::string path = BlobPath(digest);
  struct stat st {};
  // Content-addressed: a present blob of the right size already holds these bytes.
  if (::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == data.size()) return digest;
  LAZYFS_TRY(WriteFileAtomic(path, data));
  return digest;
}

Status OciLayout::AdoptBlobFile(const std::string& file, const Sha256Digest& digest) const {
  std::string path = BlobPath(digest);
  if (::rename(file.c_str(), path.c_str()) != 0) return PosixError(errno, "rename " + file + " -> " + path);
  return Ok();
}

Status OciLayout::Tag(const Descriptor& manifest, const std::string& tag) const {
  if (tag.empty()) return InvalidArgument(fmt::format("OCI layout {}: cannot tag a manifest with an empty tag", dir_));
  ordered_json index = LAZYFS_TRY(ReadIndexJson(dir_));
  if (!index.contains("schemaVersion")) index["schemaVersion"] = 2;
  if (!index.contains("mediaType")) index["mediaType"] = kMediaTypeOciIndex;
  if (!index.contains("manifests") || !index["manifests"].is_array()) {
    return Corrupt(fmt::format("{}: \"manifests\" is missing or not an array", IndexPath(dir_)));
  }
  // Drop the entries that carried this tag before; keep everything else untouched.
  ordered_json kept = ordered_json::array();
  for (auto& entry : index["manifests"]) {
    bool same_tag = false;
    if (entry.is_object() && entry.contains("annotations") && entry["annotations"].is_object()) {
      auto it = entry["annotations"].find(kAnnotationRefName);
      same_tag = it != entry["annotations"].end() && it->is_string() && it->get<std::string>() == tag;
    }
    if (!same_tag) kept.push_back(std::move(entry));
  }
  Descriptor tagged = manifest;
  tagged.annotations[std::string(kAnnotationRefName)] = tag;
  kept.push_back(ordered_json::parse(DescriptorToJson(tagged)));
  index["manifests"] = std::move(kept);
  return WriteFileAtomic(IndexPath(dir_), index.dump());
}

std::unique_ptr<BlobReader> OciLayout::NewBlobReader() const { return std::make_unique<OciLayoutBlobReader>(*this); }

}  // namespace lazyfs::fetch
