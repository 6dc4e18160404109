// PushImage: OCI layout -> registry (see registry_push.h).
//
// Thread safety: all state is on the caller's stack.
#include "fetch/registry_push.h"

#include <sys/stat.h>

#include <fmt/format.h>

#include <chrono>

#include "common/human_size.h"
#include "common/log.h"
#include "fetch/image.h"

namespace lazyfs::fetch {
namespace {

constexpr int kMaxIndexDepth = 2;
constexpr auto kProgressInterval = std::chrono::seconds(2);


class Pusher {
 public:
  Pusher(const OciLayout& layout, RegistryClient& client, std::string repo, const PushProgress& progress)
      : layout_(layout), reader_(layout.NewBlobReader()), client_(client), repo_(std::move(repo)), progress_(progress) {}

  // Pushes the manifest or index `d` (and everything it names), then tags it `reference`.
  Status PushManifest(const Descriptor& d, const std::string& reference, int depth) {
    if (depth > kMaxIndexDepth) return Corrupt(fmt::format("{}: image indexes nested too deep", layout_.dir()));
    std::string bytes = LAZYFS_TRY(reader_->ReadVerified(d.digest, kMaxManifestSize));
    // The registry checks Content-Type against the document's own mediaType, so the document decides.
    std::string media_type = LAZYFS_TRY(SniffMediaType(bytes));
    if (IsIndexMediaType(media_type)) {
      ImageIndex index = LAZYFS_TRY(ParseImageIndex(bytes));
      for (const Descriptor& child : index.manifests) {
        LAZYFS_TRY(PushManifest(child, child.digest.ToString(), depth + 1));
      }
    } else {
      Manifest manifest = LAZYFS_TRY(ParseManifest(bytes));
      LAZYFS_TRY(PushBlob(manifest.config));
      for (const Descriptor& layer : manifest.layers) LAZYFS_TRY(PushBlob(layer));
    }
    LAZYFS_TRY(client_.PutManifest(repo_, reference, bytes, media_type));
    Say(fmt::format("pushed manifest {} as {}", d.digest.ToString(), reference));
    return Ok();
  }

 private:
  Status PushBlob(const Descriptor& d) {
    std::optional<uint64_t> present = LAZYFS_TRY(client_.HeadBlob(repo_, d.digest));
    if (present && *present == d.size) {
      Say(fmt::format("blob {} already present ({}), skipped", d.digest.Short(), HumanSize(d.size)));
      return Ok();
    }
    std::string file = layout_.BlobPath(d.digest);
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return PosixError(errno, "stat " + file);
    if (static_cast<uint64_t>(st.st_size) != d.size) {
      return Corrupt(fmt::format("{}: {} bytes, its descriptor says {}", file, st.st_size, d.size));
    }
    // The registry verifies the digest when the upload completes, so the file is not hashed again here.
    auto last = std::chrono::steady_clock::now();
    auto on_progress = [&](uint64_t sent, uint64_t total) {
      auto now = std::chrono::steady_clock::now();
      if (now - last < kProgressInterval) return;
      last = now;
      Say(fmt::format("uploading {} {}/{}", d.digest.Short(), HumanSize(sent), HumanSize(total)));
    };
    LAZYFS_TRY(client_.UploadBlob(repo_, d.digest, file, d.size, on_progress));
    Say(fmt::format("uploaded blob {} ({})", d.digest.Short(), HumanSize(d.size)));
    return Ok();
  }

  void Say(const std::string& line) {
    if (progress_) progress_(line);
    LogDebug("push {}/{}: {}", client_.host(), repo_, line);
  }

  const OciLayout& layout_;
  const std::unique_ptr<BlobReader> reader_;
  RegistryClient& client_;
  const std::string repo_;
  const PushProgress& progress_;
};

}  // namespace

Status PushImage(const OciLayout& layout, const std::string& tag, const ImageRef& dst, const RegistryOptions& options,
                 const PushProgress& progress) {
  if (dst.transport != ImageRef::Transport::kDocker) {
    return InvalidArgument("push destination is not a docker:// reference: " + dst.ToString());
  }
  if (dst.digest) return InvalidArgument("push destination must name a tag, not a digest: " + dst.ToString());
  Descriptor top = LAZYFS_TRY(layout.Resolve(tag));
  std::shared_ptr<RegistryClient> client = LAZYFS_TRY(NewRegistryClient(dst.host, options));
  Pusher pusher(layout, *client, dst.repository, progress);
  Status pushed = pusher.PushManifest(top, dst.tag.empty() ? "latest" : dst.tag, 0);
  if (!pushed) return std::move(pushed).error().Context("push to " + dst.ToString());
  return Ok();
}

}  // namespace lazyfs::fetch
