// The registry ImageSource and its BlobReader (see registry_source.h).
//
// Thread safety: Resolve runs once on one thread; RegistryBlobReader locks mu_ only around sizes_;
// ReadRanges runs its requests on short-lived threads it joins before returning.
#include "fetch/registry_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "common/log.h"
#include "fetch/image.h"

namespace lazyfs::fetch {
namespace {

// Index -> index nesting followed before calling the document hostile (as the OCI layout source does).
constexpr int kMaxIndexDepth = 2;

class RegistryImageSource final : public ImageSource {
 public:
  RegistryImageSource(ImageRef ref, std::string platform, std::shared_ptr<RegistryClient> client,
                      std::shared_ptr<DocumentCache> documents)
      : ref_(std::move(ref)),
        platform_(std::move(platform)),
        client_(client),
        documents_(std::move(documents)),
        blobs_(client, ref_.repository) {}

  Result<ResolvedImage> Resolve() override {
    std::string reference = ref_.digest ? ref_.digest->ToString() : (ref_.tag.empty() ? "latest" : ref_.tag);
    std::optional<uint64_t> expected_size;  // known once an index descriptor names the manifest
    for (int depth = 0; depth <= kMaxIndexDepth; ++depth) {
      FetchedManifest fetched = LAZYFS_TRY(GetManifest(reference));
      if (expected_size && fetched.bytes.size() != *expected_size) {
        return Corrupt(fmt::format("{}: manifest {} is {} bytes, its index descriptor says {}", Describe(), reference,
                                   fetched.bytes.size(), *expected_size));
      }
      // The document decides what it is when the server's Content-Type is vague or wrong.
      std::string sniffed = LAZYFS_TRY(SniffMediaType(fetched.bytes));
      if (IsIndexMediaType(fetched.media_type) || IsIndexMediaType(sniffed)) {
        auto index = ParseImageIndex(fetched.bytes);
        if (!index) return std::move(index).error().Context(fmt::format("{} index {}", Describe(), fetched.digest.ToString()));
        Descriptor chosen = LAZYFS_TRY(SelectPlatform(*index, platform_));
        reference = chosen.digest.ToString();
        expected_size = chosen.size;
        continue;
      }
      auto manifest = ParseManifest(fetched.bytes);
      if (!manifest) return std::move(manifest).error().Context(fmt::format("{} manifest {}", Describe(), fetched.digest.ToString()));
      // Descriptor sizes come from a manifest whose digest we checked (pinned) or computed, so they are as
      // trustworthy as the reference; Size() answers from them without a HEAD per layer.
      blobs_.AddKnownSize(manifest->config.digest, manifest->config.size);
      for (const Descriptor& layer : manifest->layers) blobs_.AddKnownSize(layer.digest, layer.size);
      ResolvedImage out;
      out.manifest_digest = fetched.digest;
      auto config = GetConfig(manifest->config.digest);
      if (!config) return std::move(config).error().Context("config");
      out.config_json = std::move(*config);
      out.manifest = std::move(*manifest);
      return out;
    }
    return Corrupt(fmt::format("{}: image indexes nested deeper than {}", Describe(), kMaxIndexDepth));
  }

  BlobReader& blobs() override { return blobs_; }
  std::string Describe() const override { return ref_.ToString(); }

 private:
  // Document cache values: the media type the registry gave, a newline, the document's bytes.
  std::optional<FetchedManifest> CachedManifest(const Sha256Digest& digest) {
    std::optional<std::string> value = documents_->Get(digest);
    size_t newline = value ? value->find('\n') : std::string::npos;
    if (newline == std::string::npos) return std::nullopt;
    FetchedManifest cached{value->substr(newline + 1), value->substr(0, newline), digest};
    if (Sha256Of(cached.bytes) != digest) {
      LogWarn("{}: cached manifest {} has other bytes: fetching it", Describe(), digest.ToString());
      return std::nullopt;
    }
    return cached;
  }

  // A manifest by digest comes from the document cache when it holds it; a fetched one goes into it.
  Result<FetchedManifest> GetManifest(const std::string& reference) {
    std::optional<Sha256Digest> pinned = Sha256Digest::Parse(reference);
    if (documents_ && pinned) {
      if (std::optional<FetchedManifest> cached = CachedManifest(*pinned)) return std::move(*cached);
    }
    FetchedManifest fetched = LAZYFS_TRY(client_->GetManifest(ref_.repository, reference));
    if (documents_) documents_->Put(fetched.digest, fetched.media_type + "\n" + fetched.bytes);
    return fetched;
  }

  // The config blob, verified, from the document cache or the registry (then kept).
  Result<std::string> GetConfig(const Sha256Digest& digest) {
    if (documents_) {
      std::optional<std::string> value = documents_->Get(digest);
      if (value && value->starts_with('\n') && Sha256Of(std::string_view(*value).substr(1)) == digest) {
        return value->substr(1);
      }
    }
    std::string config = LAZYFS_TRY(blobs_.ReadVerified(digest, kMaxConfigSize));
    if (documents_) documents_->Put(digest, "\n" + config);
    return config;
  }

  const ImageRef ref_;
  const std::string platform_;
  const std::shared_ptr<RegistryClient> client_;
  const std::shared_ptr<DocumentCache> documents_;  // may be null
  RegistryBlobReader blobs_;
};

}  // namespace

Result<std::shared_ptr<RegistryClient>> NewRegistryClient(const std::string& host, const RegistryOptions& options) {
  if (host.empty()) return InvalidArgument("registry host is empty");
  RegistryClientOptions client;
  client.insecure = std::find(options.insecure_registries.begin(), options.insecure_registries.end(), host) !=
                    options.insecure_registries.end();
  client.mirrors = options.mirrors;
  client.mirror_tags = options.mirror_tags;
  client.insecure_hosts = options.insecure_registries;
  client.credentials = options.credentials;
  if (!client.credentials && options.search_auth_files) {
    client.credentials = LAZYFS_TRY(FindCredentials(host, options.auth_files));
  }
  client.retry = options.retry;
  client.request_timeout = options.request_timeout;
  client.read_timeout = options.read_timeout;
  client.sleep = options.sleep;
  client.now = options.now;
  std::shared_ptr<HttpTransport> transport = options.transport;
  if (!transport) transport = LAZYFS_TRY(NewCurlTransport(CurlOptionsFor(options)));
  if (client.insecure) LogDebug("registry {}: plain http (listed as insecure)", host);
  return std::make_shared<RegistryClient>(host, std::move(client), std::move(transport));
}

CurlTransportOptions CurlOptionsFor(const RegistryOptions& options) {
  CurlTransportOptions curl;
  curl.ca_file = options.ca_file;
  curl.connect_timeout = options.connect_timeout;
  // A per-operation read bound shorter than the connect timeout must not be outlived by a connect.
  if (options.read_timeout.count() > 0) curl.connect_timeout = std::min(curl.connect_timeout, options.read_timeout);
  curl.low_speed_bytes = options.low_speed_bytes;
  curl.low_speed_time = options.low_speed_time;
  return curl;
}

std::vector<MergedRange> MergeRanges(std::span<const BlobRange> ranges, uint64_t max_gap, uint64_t max_request) {
  std::vector<size_t> order(ranges.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a].offset < ranges[b].offset; });
  std::vector<MergedRange> merged;
  for (size_t i : order) {
    const BlobRange& r = ranges[i];
    if (r.length == 0) continue;
    if (!merged.empty()) {
      MergedRange& last = merged.back();
      uint64_t last_end = last.offset + last.length;
      uint64_t new_end = std::max(last_end, r.offset + r.length);
      if (r.offset <= last_end + max_gap && new_end - last.offset <= max_request) {
        last.length = new_end - last.offset;
        last.members.push_back(i);
        continue;
      }
    }
    merged.push_back(MergedRange{r.offset, r.length, {i}});
  }
  return merged;
}

RegistryBlobReader::RegistryBlobReader(std::shared_ptr<RegistryClient> client, std::string repository)
    : client_(std::move(client)), repository_(std::move(repository)) {}

Result<std::string> RegistryBlobReader::ReadRange(const Sha256Digest& blob, uint64_t offset, uint64_t length) {
  return client_->GetBlobRange(repository_, blob, offset, length);
}

Result<uint64_t> RegistryBlobReader::Size(const Sha256Digest& blob) {
  {
    std::lock_guard lock(mu_);
    if (auto it = sizes_.find(blob); it != sizes_.end()) return it->second;
  }
  std::optional<uint64_t> size = LAZYFS_TRY(client_->HeadBlob(repository_, blob));
  if (!size) return NotFound(fmt::format("blob {} not in {}", blob.ToString(), Describe()));
  // Not cached: an unverified HEAD answer should not outlive the call that asked for it.
  return *size;
}

Status RegistryBlobReader::Stream(const Sha256Digest& blob, const std::function<Status(std::string_view)>& sink,
                                  StreamBound bound) {
  std::optional<uint64_t> expected;
  {
    std::lock_guard lock(mu_);
    if (auto it = sizes_.find(blob); it != sizes_.end()) expected = it->second;
  }
  std::optional<SteadyTime> deadline;
  if (bound == StreamBound::kReadDeadline) deadline = client_->ReadDeadline();
  return client_->GetBlobStream(repository_, blob, sink, expected, deadline);
}

std::string RegistryBlobReader::Describe() const { return "docker://" + client_->host() + "/" + repository_; }

Result<std::vector<std::string>> RegistryBlobReader::ReadRanges(const Sha256Digest& blob,
                                                                std::span<const BlobRange> ranges, uint64_t max_gap,
                                                                uint64_t max_request) {
  // One deadline for the batch: it serves one FUSE read, which must end in bounded time as a whole. The
  // merged requests go out together (one PerformAll batch): a batch of scattered small files (a prefetch
  // window, a fetch-ahead) would otherwise pay one round trip after another.
  const std::vector<MergedRange> merged = MergeRanges(ranges, max_gap, max_request);
  std::vector<std::pair<uint64_t, uint64_t>> requests;
  requests.reserve(merged.size());
  for (const MergedRange& m : merged) requests.emplace_back(m.offset, m.length);
  std::vector<std::string> bodies = LAZYFS_TRY(client_->GetBlobRanges(repository_, blob, requests, client_->ReadDeadline()));
  std::vector<std::string> out(ranges.size());
  for (size_t k = 0; k < merged.size(); ++k) {
    for (size_t i : merged[k].members) out[i] = bodies[k].substr(ranges[i].offset - merged[k].offset, ranges[i].length);
  }
  return out;
}

Result<std::vector<std::string>> RegistryBlobReader::ReadRanges(
    const Sha256Digest& blob, const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  std::vector<BlobRange> spans;
  spans.reserve(ranges.size());
  for (const auto& [offset, length] : ranges) spans.push_back(BlobRange{offset, length});
  return ReadRanges(blob, std::span<const BlobRange>(spans), kDefaultMaxGap, kDefaultMaxRequest);
}

void RegistryBlobReader::AddKnownSize(const Sha256Digest& blob, uint64_t size) {
  std::lock_guard lock(mu_);
  sizes_[blob] = size;
}

Result<std::unique_ptr<ImageSource>> OpenRegistrySource(const ImageRef& ref, const SourceOptions& source,
                                                        const RegistryOptions& registry) {
  if (ref.transport != ImageRef::Transport::kDocker) {
    return InvalidArgument("OpenRegistrySource: not a docker:// reference: " + ref.ToString());
  }
  std::shared_ptr<RegistryClient> client = LAZYFS_TRY(NewRegistryClient(ref.host, registry));
  return std::unique_ptr<ImageSource>(
      std::make_unique<RegistryImageSource>(ref, source.platform, std::move(client), source.documents));
}

}  // namespace lazyfs::fetch
