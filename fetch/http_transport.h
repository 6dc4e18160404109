// HttpTransport: the seam between the registry protocol (fetch/registry_*) and the wire. The registry
// client builds HttpRequests and reads HttpResponses; CurlTransport (fetch/curl_transport.cc) puts them on
// the network, and unit tests plug in a fake that scripts the answers, so auth, retries, mirrors and range
// handling are tested without a server.
//
// Contract: Perform and PerformAll are thread-safe and block until the exchanges are over. A transport reports only
// transport failures as errors (connect, TLS, reset, timeout: retryable where a retry can help); every HTTP
// status, 4xx and 5xx included, is a successful Perform whose response says what the server answered.
// Retries are NOT the transport's job: the registry client owns them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ascii.h"  // AsciiLower: header names are case-insensitive
#include "common/result.h"

namespace lazyfs::fetch {

// Receives the body of a 2xx response in pieces, in order. `status` is the final response's status, so a
// range reader can tell a 206 slice from a 200 whole body. Returning an error aborts the transfer and
// Perform returns that error unchanged.
using HttpBodySink = std::function<Status(int status, std::string_view data)>;

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, POST, PUT
  std::string url;
  // Extra headers as (name, value). Values may be secrets (Authorization): transports never log them.
  std::vector<std::pair<std::string, std::string>> headers;

  // Request body: either in memory, or read from a file of `body_file_size` bytes (blob uploads, which
  // can be gigabytes). At most one of the two is set.
  std::optional<std::string> body;
  std::string body_file;
  uint64_t body_file_size = 0;

  // Byte range [offset, offset + length) as a `Range: bytes=a-b` header; length 0 means "to the end".
  struct ByteRange {
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  std::optional<ByteRange> range;

  // When set, a 2xx body goes to the sink instead of HttpResponse::body (error bodies are still kept in
  // `body` so the caller can report the registry's error message).
  HttpBodySink sink;
  // Upper bound on a body kept in memory; a larger one fails the request (kCorrupt, not retryable), so a
  // hostile server cannot make us allocate without bound. 0 means the transport's default.
  uint64_t max_body_bytes = 0;

  // Whole-exchange deadline; zero means none (streams of big blobs rely on the low-speed limit instead).
  std::chrono::milliseconds timeout{0};

  // Called now and then with bytes sent so far and the total, for progress lines on long uploads.
  std::function<void(uint64_t sent, uint64_t total)> upload_progress;
};

struct HttpResponse {
  int status = 0;
  // Headers of the final response (after redirects), names lower-cased, in arrival order; a name may
  // repeat (WWW-Authenticate).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;           // empty when the body went to HttpRequest::sink
  std::string effective_url;  // the URL that answered, after redirects

  // The first value of header `name` (lower-case), or nullopt.
  std::optional<std::string> Header(std::string_view name) const;
  std::vector<std::string> HeaderValues(std::string_view name) const;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  virtual Result<HttpResponse> Perform(const HttpRequest& request) = 0;
  // Performs every request at once and returns each one's outcome, in order, once all are over (errors
  // and statuses as Perform). A batch of range reads costs the slowest exchange, not their sum, and no
  // thread per request: the curl transport puts them all on its multi handle together. The default
  // performs them one after another (test fakes).
  virtual std::vector<Result<HttpResponse>> PerformAll(std::span<const HttpRequest> requests);
};

struct CurlTransportOptions {
  // Extra CA bundle (PEM) to trust instead of the system store, e.g. a private registry's CA.
  std::string ca_file;
  // A .netrc file whose machine entries give credentials for hosts the URL names none for (package
  // indexes; the registry client has its own auth files). Empty: none.
  std::string netrc_file;
  // Peer and host verification. Only tests turn this off; plain http needs no TLS at all.
  bool verify_tls = true;
  std::chrono::milliseconds connect_timeout{10'000};
  // A body that moves slower than `low_speed_bytes` per second for `low_speed_time` fails (kTimeout,
  // retryable) instead of hanging a FUSE read forever.
  long low_speed_bytes = 1024;
  std::chrono::seconds low_speed_time{30};
  // Default cap for bodies kept in memory (HttpRequest::max_body_bytes overrides it).
  uint64_t max_body_bytes = 64ull << 20;
  // Connections per host; HTTP/2 multiplexes many requests over one of them where the server offers it.
  long max_host_connections = 16;
};

// The libcurl transport: one multi handle serviced by a worker thread (see curl_transport.cc for why).
// Errors from construction (curl_multi_init failing) are kInternal.
Result<std::unique_ptr<HttpTransport>> NewCurlTransport(const CurlTransportOptions& options);


// A URL fit for log lines and error messages: user:password@ and the query (upload URLs carry signed
// session state there, token URLs carry scopes and accounts) are dropped.
std::string RedactUrl(std::string_view url);

}  // namespace lazyfs::fetch
