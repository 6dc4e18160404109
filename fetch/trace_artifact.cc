#include "fetch/trace_artifact.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/fd.h"

namespace lazyfs::fetch {
namespace {

constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kEmptyMediaType = "application/vnd.oci.empty.v1+json";
constexpr std::string_view kEmptyJson = "{}";

// A temporary file holding `data`, removed when this goes away (UploadBlob reads blobs from files).
class TempBlobFile {
 public:
  static Result<TempBlobFile> Write(std::string_view data) {
    std::string pattern = TempRoot() + "/lazyfs-blob.XXXXXX";
    int fd = ::mkstemp(pattern.data());
    if (fd < 0) return PosixError(errno, "mkstemp " + pattern);
    TempBlobFile file(pattern);
    UniqueFd owned(fd);
    LAZYFS_TRY(WriteAll(fd, data, pattern));
    return file;
  }
  TempBlobFile(TempBlobFile&& other) noexcept : path_(std::exchange(other.path_, "")) {}
  ~TempBlobFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  explicit TempBlobFile(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

Status UploadIfMissing(RegistryClient& client, const std::string& repo, const Sha256Digest& digest,
                       const std::string& file, uint64_t size) {
  std::optional<uint64_t> have = LAZYFS_TRY(client.HeadBlob(repo, digest));
  if (have) return Ok();
  return client.UploadBlob(repo, digest, file, size);
}

}  // namespace

std::string TraceArtifactTag(const Sha256Digest& image_manifest) {
  return "sha256-" + image_manifest.Hex() + ".lazyfs-trace";
}

Result<Sha256Digest> PushTraceArtifact(RegistryClient& client, const std::string& repo,
                                       const FetchedManifest& subject, const std::string& trace_path) {
  std::string trace = LAZYFS_TRY(ReadWholeFile(trace_path));
  if (trace.size() > kMaxTraceArtifactBytes) return InvalidArgument("trace " + trace_path + " is too big to push");
  Sha256Digest trace_digest = Sha256Of(trace);
  Sha256Digest empty_digest = Sha256Of(kEmptyJson);
  TempBlobFile empty = LAZYFS_TRY(TempBlobFile::Write(kEmptyJson));
  LAZYFS_TRY(UploadIfMissing(client, repo, empty_digest, empty.path(), kEmptyJson.size()));
  LAZYFS_TRY(UploadIfMissing(client, repo, trace_digest, trace_path, trace.size()));
  nlohmann::json manifest = {
      {"schemaVersion", 2},
      {"mediaType", kOciManifest},
      {"artifactType", kTraceArtifactType},
      {"config", {{"mediaType", kEmptyMediaType}, {"digest", empty_digest.ToString()}, {"size", kEmptyJson.size()}}},
      {"layers", nlohmann::json::array({{{"mediaType", kTraceArtifactType},
                                         {"digest", trace_digest.ToString()},
                                         {"size", trace.size()}}})},
      {"subject", {{"mediaType", subject.media_type}, {"digest", subject.digest.ToString()}, {"size", subject.bytes.size()}}},
  };
  std::string bytes = manifest.dump();
  LAZYFS_TRY(client.PutManifest(repo, TraceArtifactTag(subject.digest), bytes, kOciManifest));
  return Sha256Of(bytes);
}

Result<std::optional<std::string>> FetchTraceArtifact(RegistryClient& client, const std::string& repo,
                                                      const Sha256Digest& image_manifest) {
  Result<FetchedManifest> fetched = client.GetManifest(repo, TraceArtifactTag(image_manifest));
  if (!fetched) {
    if (fetched.error().code() == ErrorCode::kNotFound) return std::optional<std::string>();
    return std::move(fetched).error();
  }
  nlohmann::json m = nlohmann::json::parse(fetched->bytes, nullptr, false);
  if (m.is_discarded() || !m.is_object()) return Corrupt("trace artifact manifest is not JSON");
  auto str = [](const nlohmann::json& j, const char* key) -> std::string {
    return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
  };
  if (str(m, "artifactType") != kTraceArtifactType) return Corrupt("tag holds no lazyfs trace artifact");
  if (!m.contains("subject") || str(m["subject"], "digest") != image_manifest.ToString()) {
    return Corrupt("trace artifact refers to another image");
  }
  if (!m.contains("layers") || !m["layers"].is_array() || m["layers"].size() != 1) {
    return Corrupt("trace artifact must have exactly one layer");
  }
  const nlohmann::json& layer = m["layers"][0];
  std::optional<Sha256Digest> digest = Sha256Digest::Parse(str(layer, "digest"));
  if (!digest || str(layer, "mediaType") != kTraceArtifactType || !layer.contains("size") ||
      !layer["size"].is_number_unsigned()) {
    return Corrupt("trace artifact layer descriptor is malformed");
  }
  uint64_t size = layer["size"].get<uint64_t>();
  if (size > kMaxTraceArtifactBytes) return Corrupt("trace artifact is too big");
  std::string trace;
  LAZYFS_TRY(client.GetBlobStream(
      repo, *digest,
      [&](std::string_view piece) -> Status {
        if (trace.size() + piece.size() > size) return Corrupt("trace blob longer than its descriptor");
        trace.append(piece);
        return Ok();
      },
      size));
  return std::optional<std::string>(std::move(trace));
}

}  // namespace lazyfs::fetch
