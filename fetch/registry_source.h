// The registry ImageSource: docker://HOST[:PORT]/NAME[:TAG|@sha256:…] resolved through a RegistryClient,
// with a BlobReader whose ranges are HTTP Range requests. RegistryOptions is everything a user can say
// about registries (insecure hosts, CA, mirrors, credentials, timeouts, retries); the CLI fills it in.
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

namespace lazyfs::fetch {

struct RegistryOptions {
  // Hosts ("HOST[:PORT]", exactly as in the reference) spoken to over plain http. None by default: TLS
  // with verification is the rule, plain http the explicit exception (a loopback registry in tests).
  std::vector<std::string> insecure_registries;
  std::string ca_file;  // extra trust anchor (PEM) for a private registry's CA
  // Base URLs tried in order before the origin for manifest and blob reads.
  std::vector<std::string> mirrors;
  // Explicit credentials; when absent and `search_auth_files`, looked up in the standard auth files.
  std::optional<Credentials> credentials;
  bool search_auth_files = true;
  AuthFileLocations auth_files = AuthFileLocations::FromProcess();

  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds request_timeout{60'000};  // manifests, HEAD, ranges, tokens
  long low_speed_bytes = 1024;                        // streams and uploads: fail when slower than this…
  std::chrono::seconds low_speed_time{30};            // …for this long
  RetryPolicy retry;

  // Seams for tests: the transport (null: libcurl) and the wait between attempts (null: sleep).
  std::shared_ptr<HttpTransport> transport;
  std::function<void(std::chrono::milliseconds)> sleep;
};

// A client for `host` configured from `options`: plain http iff the host is in insecure_registries,
// credentials explicit or from the auth files, a curl transport unless one is injected.
Result<std::shared_ptr<RegistryClient>> NewRegistryClient(const std::string& host, const RegistryOptions& options);

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
  Status Stream(const Sha256Digest& blob, const std::function<Status(std::string_view)>& sink) override;
  std::string Describe() const override;

  // Reads several ranges of one blob with as few requests as MergeRanges allows; the result holds each
  // range's bytes in input order. Errors as ReadRange.
  Result<std::vector<std::string>> ReadRanges(const Sha256Digest& blob, std::span<const BlobRange> ranges,
                                              uint64_t max_gap = 64 << 10, uint64_t max_request = 16 << 20);

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
