// OpenImageSource and the OCI-layout ImageSource: resolving a tag through index.json to a manifest
// (through a platform index when the tag names one) and its config, every document read whole and
// verified against its digest and size.
//
// Thread safety: Resolve is called once, by one thread; blobs() is thread-safe afterwards.
#include "fetch/image_source.h"

#include <fmt/format.h>

#include "fetch/docker_archive.h"
#include "fetch/oci_layout.h"
#include "fetch/registry_source.h"

namespace lazyfs::fetch {
namespace {

// Index -> index nesting we follow before calling the document hostile.
constexpr int kMaxIndexDepth = 2;

// Reads a small document named by `d` and checks that it is as long as the descriptor says.
Result<std::string> ReadDocument(BlobReader& blobs, const Descriptor& d, uint64_t max_size, std::string_view what) {
  auto data = blobs.ReadVerified(d.digest, max_size);
  if (!data) return std::move(data).error().Context(std::string(what));
  if (data->size() != d.size) {
    return Corrupt(fmt::format("{} {} in {}: descriptor says {} bytes, blob has {}", what, d.digest.ToString(),
                               blobs.Describe(), d.size, data->size()));
  }
  return data;
}

class OciImageSource final : public ImageSource {
 public:
  OciImageSource(OciLayout layout, std::string tag, std::string platform)
      : layout_(std::move(layout)), blobs_(layout_.NewBlobReader()), tag_(std::move(tag)), platform_(std::move(platform)) {}

  Result<ResolvedImage> Resolve() override {
    Descriptor d = LAZYFS_TRY(layout_.Resolve(tag_));
    for (int depth = 0; depth <= kMaxIndexDepth; ++depth) {
      std::string doc = LAZYFS_TRY(ReadDocument(*blobs_, d, kMaxManifestSize, "manifest"));
      // index.json's descriptor may not say what the blob is (or say it wrongly); the blob decides.
      std::string media_type = LAZYFS_TRY(SniffMediaType(doc));
      if (IsIndexMediaType(d.media_type) || IsIndexMediaType(media_type)) {
        auto index = ParseImageIndex(doc);
        if (!index) return std::move(index).error().Context(fmt::format("{} index {}", Describe(), d.digest.ToString()));
        d = LAZYFS_TRY(SelectPlatform(*index, platform_));
        continue;
      }
      auto manifest = ParseManifest(doc);
      if (!manifest) return std::move(manifest).error().Context(fmt::format("{} manifest {}", Describe(), d.digest.ToString()));
      ResolvedImage out;
      out.manifest_digest = d.digest;
      out.config_json = LAZYFS_TRY(ReadDocument(*blobs_, manifest->config, kMaxConfigSize, "config"));
      out.manifest = std::move(*manifest);
      return out;
    }
    return Corrupt(fmt::format("{}: image indexes nested deeper than {}", Describe(), kMaxIndexDepth));
  }

  BlobReader& blobs() override { return *blobs_; }
  std::string Describe() const override { return tag_.empty() ? "oci:" + layout_.dir() : "oci:" + layout_.dir() + ":" + tag_; }

 private:
  const OciLayout layout_;
  const std::unique_ptr<BlobReader> blobs_;
  const std::string tag_;
  const std::string platform_;
};

}  // namespace

Result<std::unique_ptr<ImageSource>> OpenImageSource(const ImageRef& ref, const SourceOptions& options) {
  switch (ref.transport) {
    case ImageRef::Transport::kOciLayout: {
      OciLayout layout = LAZYFS_TRY(OciLayout::Open(ref.path));
      return std::unique_ptr<ImageSource>(std::make_unique<OciImageSource>(std::move(layout), ref.tag, options.platform));
    }
    case ImageRef::Transport::kDockerArchive:
      return OpenDockerArchive(ref.path);
    case ImageRef::Transport::kDocker:
      return OpenRegistrySource(ref, options, options.registry);
  }
  return Internal("OpenImageSource: unknown transport");
}

}  // namespace lazyfs::fetch
