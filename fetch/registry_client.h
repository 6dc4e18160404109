// RegistryClient: the OCI distribution API (v2) of one registry host, over an HttpTransport. It owns
// everything between "give me these bytes" and HTTP: URLs, Accept headers, auth (registry_auth.h),
// mirrors, retries with backoff, range semantics, digest checks and monolithic blob uploads.
//
// Retries: transport failures the transport marks retryable (timeouts, resets, refused connections),
// 5xx and 429 are retried with exponential backoff and jitter, honouring Retry-After; other 4xx are not,
// except that one 401 per operation lets the auth state refresh its token. Mirrors are tried in order
// before the origin for reads (GET/HEAD of manifests and blobs), one attempt each, so a dead mirror costs
// one failure, not a full backoff ladder; the origin gets the whole retry policy. A tag's manifest may be
// taken from a mirror (containerd's default) unless `mirror_tags` is off; a digest's is checked anyway.
//
// Credentials: an endpoint's Authorization goes only to that endpoint's own origin (scheme, host, port),
// never to an upload Location on another host; libcurl drops it on a redirect to another host. A 401 is
// answered (token fetch, Basic) only when it comes from the endpoint's origin: a redirect target (a CDN)
// that asks for credentials gets a permanent kPermission error naming both origins, not the registry's.
//
// Read deadline: a read operation (a manifest, a HEAD, one GetBlobRange or a batch of them sharing one
// deadline) ends by `read_timeout` whatever the registry does (stalls, drips bytes, fails forever): each
// attempt's transport timeout is cut to the time left, a backoff that would end past it is not slept, and
// the operation fails with kTimeout naming the last failure; a token fetch after a 401 is cut to the time
// left as well. Mirrors get at most half the time left each,
// so a black-holed mirror cannot starve the origin. Streams and uploads have no deadline (a big layer may
// rightly take long); the transport's low-speed limit bounds them instead.
//
// Thread safety: every method is thread-safe (the auth state has its own lock; the rest is constant
// after construction). Methods block on HTTP; none holds a lock while doing so.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/result.h"
#include "fetch/http_retry.h"
#include "fetch/http_transport.h"
#include "fetch/registry_auth.h"

namespace lazyfs::fetch {

struct RegistryClientOptions {
  bool insecure = false;  // plain http instead of https (only for registries the user marked insecure)
  // Base URLs ("https://mirror.example", "http://127.0.0.1:5001") tried in order before the origin for
  // manifest and blob reads. Mirrors are asked anonymously: credentials belong to the origin.
  std::vector<std::string> mirrors;
  // Whether a tag's manifest may come from a mirror. Off: tags are resolved at the origin only (a mirror
  // could serve a stale or forged tag); digests still go through mirrors, which cannot forge them.
  bool mirror_tags = true;
  std::optional<Credentials> credentials;
  // HOST[:PORT] names the user marked insecure: token realms there may be plain http (registry_auth.h).
  std::vector<std::string> insecure_hosts;
  RetryPolicy retry;
  // Deadline for small exchanges (manifests, HEAD, ranges, tokens); streams and uploads rely on the
  // transport's low-speed limit instead, since a big layer may rightly take long.
  std::chrono::milliseconds request_timeout{60'000};
  // Bound on one read operation, retries and mirrors included (see above); 0 means none.
  std::chrono::milliseconds read_timeout{0};
  // The seams for waiting between attempts and for the clock; tests record the delays instead of
  // sleeping and move a fake clock.
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<SteadyTime()> now;
};

struct FetchedManifest {
  std::string bytes;       // exactly as served: its sha256 is the digest
  std::string media_type;  // Content-Type, or sniffed from the JSON when the server sends none
  Sha256Digest digest;
};

class RegistryClient {
 public:
  // `host` is "HOST[:PORT]" as in a docker:// reference.
  RegistryClient(std::string host, RegistryClientOptions options, std::shared_ptr<HttpTransport> transport);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  const std::string& host() const { return host_; }
  std::string BaseUrl() const;  // "https://HOST[:PORT]"

  // GET /v2/<repo>/manifests/<tag or digest> with the OCI and Docker manifest/index Accept types.
  // When `reference` is a digest, the bytes must hash to it (kCorrupt otherwise); by tag, a
  // Docker-Content-Digest header that disagrees with the bytes is kCorrupt too. kNotFound for an unknown
  // tag or digest; bodies above kMaxManifestSize are kCorrupt.
  Result<FetchedManifest> GetManifest(const std::string& repo, const std::string& reference);

  // The deadline a read operation starting now must end by: now + read_timeout, or nullopt (no bound).
  std::optional<SteadyTime> ReadDeadline() const;

  // Bytes [offset, offset + length) of a blob via `Range: bytes=a-b`. A 200 (server ignored Range) is
  // sliced; a truncated answer is retried and, when retries run out, a retryable kNetwork error; a blob
  // shorter than the range (416, or a short Content-Range total) is kCorrupt; a missing blob kNotFound.
  // The bytes are not verified (a range cannot be). `deadline` bounds the call (kTimeout past it);
  // nullopt means a fresh ReadDeadline(). Callers reading several ranges for one FUSE read share one.
  Result<std::string> GetBlobRange(const std::string& repo, const Sha256Digest& digest, uint64_t offset,
                                   uint64_t length, std::optional<SteadyTime> deadline = std::nullopt);

  // Several ranges of one blob under one deadline (nullopt: a fresh ReadDeadline()), returned in input
  // order; errors as GetBlobRange (the first failure). Every range's first attempt goes out in one
  // HttpTransport::PerformAll batch per source (mirrors, then the origin); a range a batch did not get
  // then takes GetBlobRange's path at the origin (retries, token refresh, error mapping).
  Result<std::vector<std::string>> GetBlobRanges(const std::string& repo, const Sha256Digest& digest,
                                                 std::span<const std::pair<uint64_t, uint64_t>> ranges,
                                                 std::optional<SteadyTime> deadline = std::nullopt);

  // Streams a whole blob to `sink` and verifies its sha256 (kCorrupt on mismatch). A transfer cut short
  // is resumed with a Range from the bytes already delivered, so the sink sees every byte exactly once.
  // `expected_size`, when known, is checked too. `deadline`, when given, bounds the whole stream like a
  // read (kTimeout past it); without one only the transport's low-speed limit does.
  Status GetBlobStream(const std::string& repo, const Sha256Digest& digest,
                       const std::function<Status(std::string_view)>& sink,
                       std::optional<uint64_t> expected_size = std::nullopt,
                       std::optional<SteadyTime> deadline = std::nullopt);

  // The blob's size from HEAD (Content-Length), or nullopt when the registry does not have it.
  Result<std::optional<uint64_t>> HeadBlob(const std::string& repo, const Sha256Digest& digest);

  // Uploads a blob from `file` (`size` bytes, already known to hash to `digest`): POST to open an upload
  // session, then one PUT ?digest= with the whole body. `progress(sent, total)` is called now and then.
  Status UploadBlob(const std::string& repo, const Sha256Digest& digest, const std::string& file, uint64_t size,
                    const std::function<void(uint64_t, uint64_t)>& progress = nullptr);

  // PUT /v2/<repo>/manifests/<tag> with `bytes` as they are (their sha256 is the manifest's digest).
  Status PutManifest(const std::string& repo, const std::string& tag, std::string_view bytes,
                     const std::string& media_type);

 private:
  struct Endpoint;
  // One exchange with retries and auth. `make` builds the request for each attempt (a resumed stream
  // asks for a different range); `check` judges a 2xx response and may ask for a retry by returning a
  // retryable error. Non-2xx answers other than 401/429/5xx are returned for the caller to map.
  using RequestMaker = std::function<HttpRequest(const std::string& base_url)>;
  using ResponseCheck = std::function<Status(HttpResponse&)>;
  // `deadline` (nullopt: none) bounds every attempt and wait, as described at the top.
  Result<HttpResponse> Execute(Endpoint& endpoint, const std::string& scope, int max_attempts,
                               const RequestMaker& make, const ResponseCheck& check,
                               std::optional<SteadyTime> deadline = std::nullopt);
  // Execute on each mirror once (unless `use_mirrors` is false), then on the origin. Only a mirror's 2xx
  // is taken: its 404 or failure means "ask the next one", since only the origin can say a blob or tag is
  // absent.
  Result<HttpResponse> ExecuteRead(const std::string& scope, const RequestMaker& make, const ResponseCheck& check,
                                   std::optional<SteadyTime> deadline, bool use_mirrors = true);

  // Gives an attempt its share of the time before `deadline` (as Execute describes) and the endpoint's
  // credential when the request goes to its origin; false when no time is left.
  bool PrepareAttempt(Endpoint& endpoint, const std::string& scope, HttpRequest& request,
                      std::optional<SteadyTime> deadline, int attempt, int max_attempts);
  struct RangeRead;
  // One range through ExecuteRead (retries, auth, and mirrors unless `use_mirrors` is false).
  Result<std::string> ReadOneRange(const std::string& repo, RangeRead& read, std::optional<SteadyTime> deadline,
                                   bool use_mirrors);

  std::chrono::milliseconds Backoff(int attempt) const;
  void Sleep(std::chrono::milliseconds delay) const;
  SteadyTime Now() const;

  // Constant after construction.
  const std::string host_;
  const RegistryClientOptions options_;
  const std::shared_ptr<HttpTransport> transport_;
  std::unique_ptr<Endpoint> origin_;
  std::vector<std::unique_ptr<Endpoint>> mirrors_;
};

// Maps a final non-2xx answer to an Error: 404 kNotFound, 401/403 kPermission, 416 kCorrupt, 429/5xx
// retryable kNetwork, other 4xx kNetwork (not retryable). The registry's JSON error (code, message) is
// quoted when present. Exposed for tests.
Error HttpStatusError(const HttpResponse& response, const std::string& what);

// Parses "bytes a-b/total" (total may be "*"). Exposed for tests.
struct ContentRange {
  uint64_t first = 0;
  uint64_t last = 0;
  std::optional<uint64_t> total;
};
std::optional<ContentRange> ParseContentRange(std::string_view value);

}  // namespace lazyfs::fetch
