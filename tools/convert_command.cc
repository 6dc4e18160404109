// `lazyfs convert` (see convert_command.h): source layer -> fs::WriteEstargzLayer -> a temporary file in
// the destination's blob store -> renamed to its digest; then the config (diff_ids replaced), the
// manifest (eStargz annotations on every layer) and the tag.
//
// The source layer streams through ReadRange in 1 MiB pieces and is hashed on the way: the converted layer
// is trusted only if the bytes it was made from hash to the source descriptor's digest.
//
// Thread safety: one conversion per call, all state local; one writer per destination layout.
#include "tools/convert_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include "common/digest.h"
#include "common/fd.h"
#include "common/temp_dir.h"
#include "common/human_size.h"
#include "common/log.h"
#include "fetch/image.h"
#include "fetch/image_source.h"
#include "fetch/oci_layout.h"
#include "fetch/registry_push.h"
#include "fs/estargz.h"
#include "tools/commands.h"
#include "tools/source_flags.h"

namespace lazyfs::tools {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kPieceSize = 1 << 20;
constexpr auto kProgressInterval = std::chrono::seconds(1);

// Progress lines: rewritten in place on a terminal, log lines (info) otherwise; debug-only when quiet.
class Reporter {
 public:
  explicit Reporter(bool quiet) : quiet_(quiet), tty_(!quiet && ::isatty(STDERR_FILENO) == 1) {}

  // A line that may be replaced by the next one; rate-limited unless `force` (a terminal only: in a log,
  // a forced "0 MiB" line per layer is noise).
  void Progress(const std::string& line, bool force = false) {
    if (force && !tty_) return;
    auto now = Clock::now();
    if (!force && now - last_ < kProgressInterval) return;
    last_ = now;
    if (tty_) {
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      std::fflush(stderr);
    } else {
      Emit(line);
    }
  }

  // A line that stays.
  void Done(const std::string& line) {
    if (tty_) {
      std::fprintf(stderr, "\r\033[K%s\n", line.c_str());
      std::fflush(stderr);
    } else {
      Emit(line);
    }
  }

 private:
  void Emit(const std::string& line) {
    if (quiet_) {
      LogDebug("{}", line);
    } else {
      LogInfo("{}", line);
    }
  }

  const bool quiet_;
  const bool tty_;
  Clock::time_point last_ = Clock::now();
};

// Feeds one source blob to the eStargz writer in kPieceSize reads, hashing every byte, and checks the
// digest once the whole blob has gone through. The writer may stop before the end (after the tar's
// end-of-archive blocks), so Finish drains the rest before verifying.
class VerifyingLayerReader {
 public:
  VerifyingLayerReader(fetch::BlobReader& blobs, const fetch::Descriptor& layer) : blobs_(blobs), layer_(layer) {}

  Result<size_t> Read(char* buffer, size_t capacity) {
    if (pos_ == piece_.size()) {
      if (offset_ == layer_.size) {
        LAZYFS_TRY(Verify());
        return size_t{0};
      }
      LAZYFS_TRY(NextPiece());
    }
    size_t n = std::min(capacity, piece_.size() - pos_);
    std::memcpy(buffer, piece_.data() + pos_, n);
    pos_ += n;
    return n;
  }

  // Reads what the writer left unread and verifies the digest over the whole blob.
  Status Finish() {
    while (offset_ < layer_.size) LAZYFS_TRY(NextPiece());
    return Verify();
  }

 private:
  Status NextPiece() {
    uint64_t length = std::min(kPieceSize, layer_.size - offset_);
    auto piece = blobs_.ReadRange(layer_.digest, offset_, length);
    if (!piece) return std::move(piece).error().Context(fmt::format("source layer {}", layer_.digest.ToString()));
    piece_ = std::move(*piece);
    pos_ = 0;
    hasher_.Update(piece_);
    offset_ += length;
    return Ok();
  }

  Status Verify() {
    if (!verified_) {
      actual_ = hasher_.Finish();
      verified_ = true;
    }
    if (actual_ != layer_.digest) {
      return Corrupt(fmt::format("source layer {} in {}: digest mismatch (content hashes to {})",
                                 layer_.digest.ToString(), blobs_.Describe(), actual_.ToString()));
    }
    return Ok();
  }

  fetch::BlobReader& blobs_;
  const fetch::Descriptor& layer_;
  Sha256Hasher hasher_;
  std::string piece_;
  size_t pos_ = 0;
  uint64_t offset_ = 0;
  bool verified_ = false;
  Sha256Digest actual_;
};

// A temporary file in the blob store, removed unless it was adopted as a blob.
class TempBlobFile {
 public:
  static Result<TempBlobFile> Create(const fetch::OciLayout& layout, size_t index) {
    static std::atomic<uint64_t> counter{0};  // distinct names for concurrent conversions in one process
    std::string path = fmt::format("{}/blobs/sha256/.lazyfs-convert-{}-{}-{}.tmp", layout.dir(), ::getpid(),
                                   counter.fetch_add(1), index);
    UniqueFd fd = LAZYFS_TRY(OpenFile(path, O_WRONLY | O_CREAT | O_EXCL, 0644));
    return TempBlobFile(std::move(path), std::move(fd));
  }
  TempBlobFile(TempBlobFile&& other) noexcept
      : path_(std::move(other.path_)), fd_(std::move(other.fd_)), keep_(std::exchange(other.keep_, true)) {}
  TempBlobFile(const TempBlobFile&) = delete;
  TempBlobFile& operator=(const TempBlobFile&) = delete;
  TempBlobFile& operator=(TempBlobFile&&) = delete;
  ~TempBlobFile() {
    if (!keep_) ::unlink(path_.c_str());
  }

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

  // Flushes and closes the file, then moves it into the store under `digest`.
  Status Adopt(const fetch::OciLayout& layout, const Sha256Digest& digest) {
    if (::fsync(fd_.get()) != 0) return PosixError(errno, "fsync " + path_);
    fd_.Reset();
    LAZYFS_TRY(layout.AdoptBlobFile(path_, digest));
    keep_ = true;
    return Ok();
  }

 private:
  TempBlobFile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
  bool keep_ = false;
};

struct ConvertedLayer {
  fetch::Descriptor descriptor;
  Sha256Digest diff_id;
  uint64_t source_size = 0;
};

Result<ConvertedLayer> ConvertLayer(fetch::BlobReader& blobs, const fetch::Descriptor& layer, size_t index, size_t count,
                                    const fetch::OciLayout& dst, const ConvertOptions& options, Reporter& reporter) {
  std::string label = fmt::format("layer {}/{} {}…", index + 1, count, layer.digest.Short());
  LAZYFS_TRY(fetch::LayerCompressionOf(layer.media_type));  // fail early and clearly on non-tar layers

  TempBlobFile out = LAZYFS_TRY(TempBlobFile::Create(dst, index));
  VerifyingLayerReader reader(blobs, layer);
  fs::ReadCallback source = [&reader](char* buffer, size_t capacity) { return reader.Read(buffer, capacity); };
  fs::ProgressCallback progress = [&](uint64_t bytes_read) {
    reporter.Progress(fmt::format("{}: {} / {}", label, HumanSize(bytes_read), HumanSize(layer.size)));
  };
  fs::EstargzWriterOptions writer_options;
  writer_options.chunk_size = options.chunk_size;
  reporter.Progress(fmt::format("{}: {} / {}", label, HumanSize(0), HumanSize(layer.size)), /*force=*/true);

  auto info = fs::WriteEstargzLayer(source, out.fd(), writer_options, progress);
  if (!info) {
    // Malformed input may be a damaged blob: then the digest mismatch is the cause worth reporting.
    if (info.error().code() == ErrorCode::kCorrupt) {
      if (auto verified = reader.Finish(); !verified) return std::move(verified).error().Context(label);
    }
    return std::move(info).error().Context(label);
  }
  LAZYFS_TRY(reader.Finish());
  LAZYFS_TRY(out.Adopt(dst, info->blob_digest));

  ConvertedLayer converted;
  converted.descriptor.media_type = std::string(fetch::kMediaTypeOciLayerGzip);
  converted.descriptor.digest = info->blob_digest;
  converted.descriptor.size = info->blob_size;
  converted.descriptor.annotations[std::string(fetch::kAnnotationTocDigest)] = info->toc_digest.ToString();
  converted.descriptor.annotations[std::string(fetch::kAnnotationUncompressedSize)] =
      std::to_string(info->uncompressed_size);
  converted.descriptor.annotations[std::string(fetch::kAnnotationTocOffset)] = std::to_string(info->toc_offset);
  converted.diff_id = info->diff_id;
  converted.source_size = layer.size;
  reporter.Done(fmt::format("{}: {} -> {} eStargz {}", label, HumanSize(layer.size), HumanSize(info->blob_size),
                            info->blob_digest.Short()));
  return converted;
}

// The source config with rootfs.diff_ids replaced; everything else kept as it was (ordered_json keeps
// the key order, so only the diff_ids change).
Result<std::string> RewriteConfig(const std::string& config_json, const std::vector<ConvertedLayer>& layers,
                                  std::optional<fetch::Platform>* platform) {
  try {
    auto config = nlohmann::ordered_json::parse(config_json);
    if (!config.is_object()) return Corrupt("source config: not a JSON object");
    auto diff_ids = nlohmann::ordered_json::array();
    for (const ConvertedLayer& layer : layers) diff_ids.push_back(layer.diff_id.ToString());
    if (!config.contains("rootfs") || !config["rootfs"].is_object()) {
      config["rootfs"] = nlohmann::ordered_json::object();
      config["rootfs"]["type"] = "layers";
    }
    config["rootfs"]["diff_ids"] = std::move(diff_ids);
    // The index entry names the platform when the config says it.
    auto text = [&](const char* key) -> std::string {
      auto it = config.find(key);
      return it != config.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (!text("os").empty() && !text("architecture").empty()) {
      *platform = fetch::Platform{text("os"), text("architecture"), text("variant")};
    }
    return config.dump();
  } catch (const nlohmann::ordered_json::exception& e) {
    return Corrupt(fmt::format("source config: {}", e.what()));
  }
}

// oci -> registry: convert into a staging layout, then push it (see convert_command.h for why).
Status ConvertToRegistry(const fetch::ImageRef& src, const fetch::ImageRef& dst, const ConvertOptions& options) {
  if (dst.digest) return InvalidArgument("convert: destination must name a tag, not a digest: " + dst.ToString());
  TempDir staging = LAZYFS_TRY(TempDir::Create(TempRoot(), "lazyfs-convert-"));
  std::string tag = dst.tag.empty() ? "latest" : dst.tag;
  fetch::ImageRef staged;
  staged.transport = fetch::ImageRef::Transport::kOciLayout;
  staged.path = staging.path() + "/layout";
  staged.tag = tag;
  LAZYFS_TRY(ConvertImage(src, staged, options));
  fetch::OciLayout layout = LAZYFS_TRY(fetch::OciLayout::Open(staged.path));
  Reporter reporter(options.quiet);
  fetch::PushProgress progress = [&](const std::string& line) { reporter.Done(line); };
  LAZYFS_TRY(fetch::PushImage(layout, tag, dst, options.source.registry, progress));
  reporter.Done(fmt::format("pushed {}", dst.ToString()));
  return Ok();
}

}  // namespace

Status ConvertImage(const fetch::ImageRef& src, const fetch::ImageRef& dst, const ConvertOptions& options) {
  if (dst.transport == fetch::ImageRef::Transport::kDocker) return ConvertToRegistry(src, dst, options);
  if (dst.transport != fetch::ImageRef::Transport::kOciLayout) {
    return Unsupported(fmt::format("convert: destination {}: want oci:DIR[:TAG] or docker://…", dst.ToString()));
  }
  auto started = Clock::now();
  Reporter reporter(options.quiet);

  auto source = LAZYFS_TRY(fetch::OpenImageSource(src, options.source));
  fetch::ResolvedImage image = LAZYFS_TRY(source->Resolve());
  fetch::OciLayout layout = LAZYFS_TRY(fetch::OciLayout::Create(dst.path));

  std::vector<ConvertedLayer> layers;
  const size_t count = image.manifest.layers.size();
  for (size_t i = 0; i < count; ++i) {
    layers.push_back(
        LAZYFS_TRY(ConvertLayer(source->blobs(), image.manifest.layers[i], i, count, layout, options, reporter)));
  }

  std::optional<fetch::Platform> platform;
  std::string config_json = LAZYFS_TRY(RewriteConfig(image.config_json, layers, &platform));

  fetch::Manifest manifest;
  manifest.media_type = std::string(fetch::kMediaTypeOciManifest);
  manifest.config.media_type = std::string(fetch::kMediaTypeOciConfig);
  manifest.config.digest = LAZYFS_TRY(layout.AddBlob(config_json));
  manifest.config.size = config_json.size();
  manifest.annotations = image.manifest.annotations;
  uint64_t source_bytes = 0;
  uint64_t estargz_bytes = 0;
  for (const ConvertedLayer& layer : layers) {
    manifest.layers.push_back(layer.descriptor);
    source_bytes += layer.source_size;
    estargz_bytes += layer.descriptor.size;
  }
  std::string manifest_json = fetch::ManifestToJson(manifest);

  fetch::Descriptor tagged;
  tagged.media_type = std::string(fetch::kMediaTypeOciManifest);
  tagged.digest = LAZYFS_TRY(layout.AddBlob(manifest_json));
  tagged.size = manifest_json.size();
  tagged.platform = platform;
  std::string tag = dst.tag.empty() ? "latest" : dst.tag;
  LAZYFS_TRY(layout.Tag(tagged, tag));

  double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  reporter.Done(fmt::format("converted {} -> oci:{}:{}: {} layers, {} -> {} eStargz, manifest {} ({:.1f} s)",
                            src.ToString(), dst.path, tag, count, HumanSize(source_bytes), HumanSize(estargz_bytes),
                            tagged.digest.ToString(), seconds));
  return Ok();
}

void AddConvertCommand(CLI::App& app, int& exit_code) {
  struct Options {
    std::string src;
    std::string dst;
    ConvertOptions convert;
    SourceFlags source;
  };
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("convert", "Rewrite an image's layers as eStargz (still an ordinary image)");
  cmd->add_option("source", options->src, "oci:DIR[:TAG], docker-archive:FILE or docker://HOST[:PORT]/NAME[:TAG]")
      ->required();
  cmd->add_option("destination", options->dst, "oci:DIR[:TAG] or docker://HOST[:PORT]/NAME[:TAG]")->required();
  cmd->add_option("--chunk-size", options->convert.chunk_size, "uncompressed bytes per chunk")->capture_default_str();
  AddSourceFlags(*cmd, options->source);
  cmd->add_flag("-q,--quiet", options->convert.quiet, "no progress output");
  cmd->callback([options, &exit_code] {
    Result<fetch::ImageRef> src = fetch::ImageRef::Parse(options->src);
    Result<fetch::ImageRef> dst = fetch::ImageRef::Parse(options->dst);
    if (!src || !dst) {
      std::fprintf(stderr, "lazyfs: %s\n", (!src ? src.error() : dst.error()).ToString().c_str());
      exit_code = 2;
      return;
    }
    Result<fetch::SourceOptions> source = ToSourceOptions(options->source);
    if (!source) {
      std::fprintf(stderr, "lazyfs: %s\n", source.error().ToString().c_str());
      exit_code = 2;
      return;
    }
    options->convert.source = std::move(*source);
    Status status = ConvertImage(*src, *dst, options->convert);
    if (!status) {
      std::fprintf(stderr, "lazyfs: convert: %s\n", status.error().ToString().c_str());
      exit_code = 1;
    }
  });
}

}  // namespace lazyfs::tools
