// The registry ImageSource: docker://HOST[:PORT]/NAME[:TAG|@sha256:…] resolved through a RegistryClient,
// with a BlobReader whose ranges are HTTP Range requests (nearby ranges merged into one request).
// RegistryOptions (registry_options.h) configures the client.
//
// Thread safety: as ImageSource (Resolve once, then blobs() from any thread). RegistryBlobReader is
// thread-safe; its table of known blob sizes is guarded by a mutex never held across HTTP.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fetch/blob_reader.h"
#include "fetch/http_transport.h"
#include "fetch/image_ref.h"
#include "fetch/image_source.h"
#include "fetch/registry_auth.h"
#include "fetch/registry_client.h"
#include "fetch/registry_options.h"

namespace lazyfs::fetch {

// A client for `host` configured from `options`: plain http iff the host is in insecure_registries,
// credentials explicit or from the auth files, a curl transport unless one is injected.
Result<std::shared_ptr<RegistryClient>> NewRegistryClient(const std::string& host, const RegistryOptions& options);

// The libcurl transport settings `options` ask for (CA, low-speed limit, a connect timeout no longer than
// the read bound). Exposed for tests.
CurlTransportOptions CurlOptionsFor(const RegistryOptions& options);

struct BlobRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Ranges merged for one request: [offset, offset + length) covers the input ranges listed in `members`
// (indexes into the input).
struct MergedRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  std::vector<size_t> members;
};

// Merges ranges whose gaps are at most `max_gap` bytes into one request each (fetching a small gap costs
// less than a round trip), never growing a request past `max_request` bytes unless a single input range
// is that big. Overlapping and unsorted inputs are fine; zero-length ranges join no request.
std::vector<MergedRange> MergeRanges(std::span<const BlobRange> ranges, uint64_t max_gap, uint64_t max_request);

class RegistryBlobReader final : public BlobReader {
 public:
  RegistryBlobReader(std::shared_ptr<RegistryClient> client, std::string repository);

  Result<std::string> ReadRange(const Sha256Digest& blob, uint64_t offset, uint64_t length) override;
  // From the descriptor sizes learnt from the manifest; otherwise a HEAD (kNotFound if absent).
  Result<uint64_t> Size(const Sha256Digest& blob) override;
  Status Stream(const Sha256Digest& blob, const std::function<Status(std::string_view)>& sink,
                StreamBound bound) override;
  std::string Describe() const override;

  // Reads several ranges of one blob with as few requests as MergeRanges allows, all sent at once
  // (RegistryClient::GetBlobRanges: one transport batch, the connection limit of the transport applies)
  // within one read deadline; the result holds each range's bytes in input order. Errors as ReadRange
  // (the first failure).
  Result<std::vector<std::string>> ReadRanges(const Sha256Digest& blob, std::span<const BlobRange> ranges,
                                              uint64_t max_gap = kDefaultMaxGap,
                                              uint64_t max_request = kDefaultMaxRequest);
  // BlobReader's batch read: the same with the default merge limits.
  Result<std::vector<std::string>> ReadRanges(const Sha256Digest& blob,
                                              const std::vector<std::pair<uint64_t, uint64_t>>& ranges) override;

  // Gaps up to this many bytes are fetched rather than paid for with another round trip; one request
  // stays below kDefaultMaxRequest so a FUSE read never waits for a huge body.
  static constexpr uint64_t kDefaultMaxGap = 64 << 10;
  static constexpr uint64_t kDefaultMaxRequest = 16 << 20;

  // Records a size from a trusted descriptor (the verified manifest), sparing a HEAD later.
  void AddKnownSize(const Sha256Digest& blob, uint64_t size);

 private:
  // Constant after construction.
  const std::shared_ptr<RegistryClient> client_;
  const std::string repository_;

  std::mutex mu_;
  std::map<Sha256Digest, uint64_t> sizes_;  // guarded by mu_
};

// Opens a docker:// reference (kInvalidArgument for any other transport). Nothing is fetched until
// Resolve. The lead wires this into OpenImageSource's kDocker case.
Result<std::unique_ptr<ImageSource>> OpenRegistrySource(const ImageRef& ref, const SourceOptions& source,
                                                        const RegistryOptions& registry);

}  // namespace lazyfs::fetch
