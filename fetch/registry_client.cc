// RegistryClient: OCI distribution API v2 over an HttpTransport (see registry_client.h).
//
// Thread safety: methods share only constant state and the endpoints' RegistryAuth (which locks itself);
// per-call state lives on the caller's stack.
#include "fetch/registry_client.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/log.h"
#include "fetch/image.h"

namespace lazyfs::fetch {
namespace {

constexpr std::string_view kManifestAccept =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

std::string PullScope(const std::string& repo) { return "repository:" + repo + ":pull"; }
std::string PushScope(const std::string& repo) { return "repository:" + repo + ":pull,push"; }

std::optional<uint64_t> ParseUint(std::string_view text) {
  if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  return std::stoull(std::string(text));
}

std::string MediaTypeOf(const HttpResponse& response) {
  std::string type = response.Header("content-type").value_or("");
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  return AsciiLower(type);
}

// Whether `url` is on `endpoint`'s origin; an unparsable URL is on nobody's.
bool SameOrigin(const Result<UrlOrigin>& endpoint, std::string_view url) {
  Result<UrlOrigin> origin = ParseUrlOrigin(url);
  return endpoint && origin && *endpoint == *origin;
}

std::string OriginText(std::string_view url) {
  Result<UrlOrigin> origin = ParseUrlOrigin(url);
  return origin ? origin->ToString() : RedactUrl(url);
}

}  // namespace

struct RegistryClient::Endpoint {
  Endpoint(std::string base, std::optional<Credentials> credentials, std::shared_ptr<HttpTransport> transport,
           std::vector<std::string> insecure_hosts)
      : base_url(base),
        origin(ParseUrlOrigin(base)),
        auth(std::move(base), std::move(credentials), std::move(transport), std::move(insecure_hosts)) {}
  const std::string base_url;
  const Result<UrlOrigin> origin;  // an error for a base URL that does not parse: then nothing matches it
  RegistryAuth auth;
};

std::optional<ContentRange> ParseContentRange(std::string_view value) {
  if (!value.starts_with("bytes ")) return std::nullopt;
  value.remove_prefix(6);
  size_t dash = value.find('-');
  size_t slash = value.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) return std::nullopt;
  std::optional<uint64_t> first = ParseUint(value.substr(0, dash));
  std::optional<uint64_t> last = ParseUint(value.substr(dash + 1, slash - dash - 1));
  if (!first || !last || *last < *first) return std::nullopt;
  ContentRange range{*first, *last, std::nullopt};
  std::string_view total = value.substr(slash + 1);
  if (total != "*") {
    range.total = ParseUint(total);
    if (!range.total) return std::nullopt;
  }
  return range;
}

RegistryClient::RegistryClient(std::string host, RegistryClientOptions options, std::shared_ptr<HttpTransport> transport)
    : host_(std::move(host)), options_(std::move(options)), transport_(std::move(transport)) {
  origin_ = std::make_unique<Endpoint>(BaseUrl(), options_.credentials, transport_, options_.insecure_hosts);
  for (std::string mirror : options_.mirrors) {
    while (!mirror.empty() && mirror.back() == '/') mirror.pop_back();
    mirrors_.push_back(std::make_unique<Endpoint>(mirror, std::nullopt, transport_, options_.insecure_hosts));
  }
}

RegistryClient::~RegistryClient() = default;

std::string RegistryClient::BaseUrl() const { return (options_.insecure ? "http://" : "https://") + host_; }

std::chrono::milliseconds RegistryClient::Backoff(int attempt) const { return BackoffDelay(options_.retry, attempt); }

void RegistryClient::Sleep(std::chrono::milliseconds delay) const {
  if (options_.sleep) {
    options_.sleep(delay);
  } else {
    std::this_thread::sleep_for(delay);
  }
}

SteadyTime RegistryClient::Now() const { return options_.now ? options_.now() : std::chrono::steady_clock::now(); }

std::optional<SteadyTime> RegistryClient::ReadDeadline() const {
  if (options_.read_timeout.count() <= 0) return std::nullopt;
  return Now() + options_.read_timeout;
}

bool RegistryClient::PrepareAttempt(Endpoint& endpoint, const std::string& scope, HttpRequest& request,
                                    std::optional<SteadyTime> deadline, int attempt, int max_attempts) {
  using std::chrono::milliseconds;
  if (deadline) {
    // The transport's timeout covers connect, TLS and a body that drips: cutting it to the time left
    // is what makes a stalled or crawling registry end in a bounded error.
    auto left = std::chrono::duration_cast<milliseconds>(*deadline - Now());
    if (left <= milliseconds(0)) return false;
    milliseconds budget = AttemptBudget(left, attempt, max_attempts);
    if (request.timeout.count() == 0 || request.timeout > budget) request.timeout = budget;
  }
  // Credentials belong to the endpoint's origin: an upload Location on another host goes anonymous.
  if (SameOrigin(endpoint.origin, request.url)) {
    if (std::optional<std::string> authorization = endpoint.auth.Authorization(scope)) {
      request.headers.emplace_back("Authorization", *authorization);
    }
  }
  return true;
}

Result<HttpResponse> RegistryClient::Execute(Endpoint& endpoint, const std::string& scope, int max_attempts,
                                             const RequestMaker& make, const ResponseCheck& check,
                                             std::optional<SteadyTime> deadline) {
  using std::chrono::milliseconds;
  bool refreshed = false;
  std::optional<Error> failure;  // the last attempt's, for the message when the deadline ends the loop
  auto out_of_time = [&](const std::string& what) {
    return Error(ErrorCode::kTimeout,
                 fmt::format("{}: read timeout ({} ms) reached{}", what, options_.read_timeout.count(),
                             failure ? "; last failure: " + failure->ToString() : std::string()),
                 /*retryable=*/true);
  };
  for (int attempt = 1;; ++attempt) {
    HttpRequest request = make(endpoint.base_url);
    std::string what = request.method + " " + RedactUrl(request.url);
    if (!PrepareAttempt(endpoint, scope, request, deadline, attempt, max_attempts)) return out_of_time(what);
    milliseconds delay = Backoff(attempt);
    Result<HttpResponse> result = transport_->Perform(request);
    if (result && result->status == 401) {
      // Only the endpoint may ask for its credentials. A redirect target (a CDN, object storage) or a
      // foreign upload Location that answers 401 would otherwise have its realm sent the registry's
      // Basic credential. A transport that reports no effective URL was not redirected.
      const std::string& answered = result->effective_url.empty() ? request.url : result->effective_url;
      if (!SameOrigin(endpoint.origin, answered)) {
        return Error(ErrorCode::kPermission,
                     fmt::format("{}: HTTP 401 from {}, which is not the registry's origin {}; a challenge "
                                 "from another origin is not answered with the registry's credentials",
                                 what, OriginText(answered), OriginText(endpoint.base_url)));
      }
    }
    if (result && result->status == 401 && !refreshed) {
      // The token request is part of this operation, so it gets no more than the time left.
      milliseconds token_timeout = options_.request_timeout;
      if (deadline) {
        auto left = std::chrono::duration_cast<milliseconds>(*deadline - Now());
        if (left <= milliseconds(0)) return out_of_time(what);
        if (token_timeout.count() == 0 || token_timeout > left) token_timeout = left;
      }
      // One refresh per operation: a second 401 means the credentials, not the token, are the problem.
      Status learned = endpoint.auth.OnUnauthorized(*result, scope, token_timeout);
      if (learned) {
        refreshed = true;
        --attempt;  // the refused request was not a failed attempt
        continue;
      }
      if (!learned.error().retryable()) return std::move(learned).error().Context(what);
      failure = std::move(learned).error();
    } else if (std::optional<Error> retry = RetryableFailure(result, check, options_.retry, what, delay)) {
      failure = std::move(retry);
    } else {
      return result;  // a 2xx that passed `check`, a definite answer (404, 403, 416, a second 401) or an error
    }
    if (attempt >= max_attempts) return *std::move(failure);
    // A wait that would end past the deadline cannot lead to a success in time: give up now.
    if (deadline && Now() + delay >= *deadline) return out_of_time(what);
    LogDebug("{}: {} (attempt {}/{}), retrying in {} ms", what, failure->ToString(), attempt, max_attempts,
             delay.count());
    Sleep(delay);
  }
}

Result<HttpResponse> RegistryClient::ExecuteRead(const std::string& scope, const RequestMaker& make,
                                                 const ResponseCheck& check, std::optional<SteadyTime> deadline,
                                                 bool use_mirrors) {
  for (const auto& mirror : mirrors_) {
    if (!use_mirrors) break;
    std::optional<SteadyTime> mirror_deadline = deadline;
    if (deadline) mirror_deadline = Now() + (*deadline - Now()) / 2;  // the origin keeps at least half
    Result<HttpResponse> result = Execute(*mirror, scope, 1, make, check, mirror_deadline);
    if (result && Is2xx(result->status)) return result;
    LogDebug("mirror {}: {}; trying the next source", RedactUrl(mirror->base_url),
             result ? "HTTP " + std::to_string(result->status) : result.error().ToString());
  }
  return Execute(*origin_, scope, options_.retry.max_attempts, make, check, deadline);
}

Result<FetchedManifest> RegistryClient::GetManifest(const std::string& repo, const std::string& reference) {
  std::optional<Sha256Digest> pinned = Sha256Digest::Parse(reference);
  auto make = [&](const std::string& base) {
    HttpRequest request;
    request.url = base + "/v2/" + repo + "/manifests/" + reference;
    request.headers.emplace_back("Accept", std::string(kManifestAccept));
    request.timeout = options_.request_timeout;
    request.max_body_bytes = kMaxManifestSize;
    return request;
  };
  auto check = [&](HttpResponse& response) -> Status {
    Sha256Digest actual = Sha256Of(response.body);
    if (pinned && actual != *pinned) {
      return Corrupt(fmt::format("manifest {}@{}: content hashes to {}", repo, reference, actual.ToString()));
    }
    std::optional<std::string> claimed = response.Header("docker-content-digest");
    if (!pinned && claimed && claimed->starts_with("sha256:") && *claimed != actual.ToString()) {
      return Corrupt(fmt::format("manifest {}:{}: Docker-Content-Digest {} but content hashes to {}", repo, reference,
                                 *claimed, actual.ToString()));
    }
    return Ok();
  };
  // A mirror cannot forge a digest's bytes (they are checked), but it can serve any manifest for a tag.
  bool use_mirrors = pinned.has_value() || options_.mirror_tags;
  HttpResponse response = LAZYFS_TRY(ExecuteRead(PullScope(repo), make, check, ReadDeadline(), use_mirrors));
  if (!Is2xx(response.status)) return HttpStatusError(response, fmt::format("manifest {}/{}:{}", host_, repo, reference));
  FetchedManifest out;
  out.digest = Sha256Of(response.body);
  out.media_type = MediaTypeOf(response);
  // A registry that serves manifests as application/json (or nothing) leaves the document to say.
  if (out.media_type.empty() || out.media_type == "application/json" || out.media_type == "text/plain") {
    out.media_type = LAZYFS_TRY(SniffMediaType(response.body));
  }
  out.bytes = std::move(response.body);
  return out;
}

// One range read's state across its attempts: the request each attempt sends, and the judgement of a 2xx
// answer. The body goes through a sink that keeps only the wanted slice, so a server that ignores Range
// and sends a whole multi-gigabyte layer costs bandwidth but not memory. Not movable once a request is
// made (the request's sink points at it).
struct RegistryClient::RangeRead {
  RangeRead(std::string url_path, uint64_t offset, uint64_t length, std::chrono::milliseconds timeout, std::string what)
      : url_path(std::move(url_path)), offset(offset), length(length), timeout(timeout), what(std::move(what)) {}
  RangeRead(const RangeRead&) = delete;
  RangeRead& operator=(const RangeRead&) = delete;

  HttpRequest Make(const std::string& base) {
    slice.clear();
    position = 0;
    HttpRequest request;
    request.url = base + url_path;
    request.range = HttpRequest::ByteRange{offset, length};
    request.timeout = timeout;
    request.sink = [this](int status, std::string_view data) -> Status {
      if (status == 206 && position == 0) position = offset;
      uint64_t begin = std::max(position, offset);
      uint64_t end = std::min(position + data.size(), offset + length);
      if (begin < end) slice.append(data.substr(begin - position, end - begin));
      position += data.size();
      return Ok();
    };
    return request;
  }

  Status Check(HttpResponse& response) const {
    if (response.status == 206) {
      if (std::optional<std::string> header = response.Header("content-range")) {
        std::optional<ContentRange> range = ParseContentRange(*header);
        if (!range || range->first != offset) {
          return Error(ErrorCode::kNetwork, what + ": unexpected Content-Range " + *header, /*retryable=*/true);
        }
        if (range->total && *range->total < offset + length) {
          return Corrupt(fmt::format("{}: blob is only {} bytes", what, *range->total));
        }
      }
    } else if (response.status == 200) {
      // A whole body that ends early is the blob being short (curl already failed truncated transfers).
      if (position < offset + length) return Corrupt(fmt::format("{}: blob is only {} bytes", what, position));
    } else {
      return Error(ErrorCode::kNetwork, fmt::format("{}: unexpected HTTP {}", what, response.status));
    }
    if (slice.size() < length) {
      return Error(ErrorCode::kNetwork, fmt::format("{}: truncated body ({} of {} bytes)", what, slice.size(), length),
                   /*retryable=*/true);
    }
    return Ok();
  }

  const std::string url_path;  // "/v2/<repo>/blobs/<digest>"
  const uint64_t offset;
  const uint64_t length;
  const std::chrono::milliseconds timeout;
  const std::string what;
  std::string slice;
  uint64_t position = 0;  // offset in the blob of the next byte the sink sees
};

Result<std::string> RegistryClient::ReadOneRange(const std::string& repo, RangeRead& read,
                                                 std::optional<SteadyTime> deadline, bool use_mirrors) {
  HttpResponse response = LAZYFS_TRY(ExecuteRead(
      PullScope(repo), [&](const std::string& base) { return read.Make(base); },
      [&](HttpResponse& r) { return read.Check(r); }, deadline, use_mirrors));
  if (!Is2xx(response.status)) return HttpStatusError(response, read.what);
  return std::move(read.slice);
}

Result<std::string> RegistryClient::GetBlobRange(const std::string& repo, const Sha256Digest& digest, uint64_t offset,
                                                 uint64_t length, std::optional<SteadyTime> deadline) {
  if (length == 0) return std::string();
  if (!deadline) deadline = ReadDeadline();
  RangeRead read("/v2/" + repo + "/blobs/" + digest.ToString(), offset, length, options_.request_timeout,
                 fmt::format("blob {}/{}@{} [{}, +{})", host_, repo, digest.ToString(), offset, length));
  return ReadOneRange(repo, read, deadline, /*use_mirrors=*/true);
}

Result<std::vector<std::string>> RegistryClient::GetBlobRanges(const std::string& repo, const Sha256Digest& digest,
                                                               std::span<const std::pair<uint64_t, uint64_t>> ranges,
                                                               std::optional<SteadyTime> deadline) {
  if (!deadline) deadline = ReadDeadline();
  std::string scope = PullScope(repo);
  std::vector<std::unique_ptr<RangeRead>> reads;
  for (const auto& [offset, length] : ranges) {
    reads.push_back(std::make_unique<RangeRead>(
        "/v2/" + repo + "/blobs/" + digest.ToString(), offset, length, options_.request_timeout,
        fmt::format("blob {}/{}@{} [{}, +{})", host_, repo, digest.ToString(), offset, length)));
  }
  std::vector<std::string> out(reads.size());
  std::vector<size_t> left;  // ranges not read yet
  for (size_t i = 0; i < reads.size(); ++i) {
    if (reads[i]->length > 0) left.push_back(i);
  }
  // One batch per source, in the order a single read asks them (mirrors, then the origin), each with the
  // share of the time a single read would give it; what a batch did not get goes on to the next source.
  std::vector<Endpoint*> sources;
  for (const auto& mirror : mirrors_) sources.push_back(mirror.get());
  sources.push_back(origin_.get());
  for (Endpoint* source : sources) {
    if (left.empty()) break;
    bool is_origin = source == origin_.get();
    std::optional<SteadyTime> bound = deadline;
    if (deadline && !is_origin) bound = Now() + (*deadline - Now()) / 2;  // the origin keeps at least half
    std::vector<HttpRequest> requests;
    for (size_t i : left) {
      HttpRequest request = reads[i]->Make(source->base_url);
      if (!PrepareAttempt(*source, scope, request, bound, 1, is_origin ? options_.retry.max_attempts : 1)) {
        return Error(ErrorCode::kTimeout,
                     fmt::format("{}: read timeout ({} ms) reached", reads[i]->what, options_.read_timeout.count()),
                     /*retryable=*/true);
      }
      requests.push_back(std::move(request));
    }
    std::vector<Result<HttpResponse>> answers = transport_->PerformAll(requests);
    std::vector<size_t> still;
    for (size_t k = 0; k < left.size(); ++k) {
      RangeRead& read = *reads[left[k]];
      Result<HttpResponse>& answer = answers[k];
      if (answer && Is2xx(answer->status) && read.Check(*answer)) {
        out[left[k]] = std::move(read.slice);
      } else {
        still.push_back(left[k]);
      }
    }
    left = std::move(still);
  }
  // The rest (a failure, a 401 to answer, a 404 to map) take the single-range path at the origin, which
  // retries, refreshes a token and says what went wrong; all within the same deadline.
  for (size_t i : left) {
    out[i] = LAZYFS_TRY(ReadOneRange(repo, *reads[i], deadline, /*use_mirrors=*/false));
  }
  return out;
}

Status RegistryClient::GetBlobStream(const std::string& repo, const Sha256Digest& digest,
                                     const std::function<Status(std::string_view)>& sink,
                                     std::optional<uint64_t> expected_size, std::optional<SteadyTime> deadline) {
  std::string what = fmt::format("blob {}/{}@{}", host_, repo, digest.ToString());
  Sha256Hasher hasher;
  uint64_t delivered = 0;  // bytes handed to `sink`, across attempts and sources
  uint64_t position = 0;   // blob offset of the next byte of the current attempt
  std::optional<Error> sink_error;
  auto make = [&](const std::string& base) {
    position = 0;
    HttpRequest request;
    request.url = base + "/v2/" + repo + "/blobs/" + digest.ToString();
    // Resume where the previous attempt stopped; a 200 answer (Range ignored) is skipped up to there.
    if (delivered > 0) request.range = HttpRequest::ByteRange{delivered, 0};
    request.sink = [&](int status, std::string_view data) -> Status {
      if (status == 206 && position == 0) position = delivered;
      if (position < delivered) {
        uint64_t skip = std::min<uint64_t>(delivered - position, data.size());
        data.remove_prefix(skip);
        position += skip;
      }
      if (data.empty()) return Ok();
      if (expected_size && delivered + data.size() > *expected_size) {
        return Corrupt(fmt::format("{}: longer than the {} bytes its descriptor says", what, *expected_size));
      }
      hasher.Update(data);
      position += data.size();
      delivered += data.size();
      if (Status sunk = sink(data); !sunk) {
        // The consumer's failure is final even if it says retryable: it has already seen these bytes.
        sink_error = std::move(sunk).error();
        return Internal("sink stopped the stream");
      }
      return Ok();
    };
    return request;
  };
  auto check = [&](HttpResponse&) -> Status {
    if (expected_size && delivered < *expected_size) {
      return Error(ErrorCode::kNetwork, fmt::format("{}: stream ended after {} of {} bytes", what, delivered, *expected_size),
                   /*retryable=*/true);
    }
    return Ok();
  };
  Result<HttpResponse> response = ExecuteRead(PullScope(repo), make, check, deadline);
  if (sink_error) return *std::move(sink_error);
  if (!response) return std::move(response).error();
  if (!Is2xx(response->status)) return HttpStatusError(*response, what);
  Sha256Digest actual = hasher.Finish();
  if (actual != digest) return Corrupt(fmt::format("{}: content hashes to {}", what, actual.ToString()));
  return Ok();
}

Result<std::optional<uint64_t>> RegistryClient::HeadBlob(const std::string& repo, const Sha256Digest& digest) {
  std::string what = fmt::format("HEAD blob {}/{}@{}", host_, repo, digest.ToString());
  auto make = [&](const std::string& base) {
    HttpRequest request;
    request.method = "HEAD";
    request.url = base + "/v2/" + repo + "/blobs/" + digest.ToString();
    request.timeout = options_.request_timeout;
    return request;
  };
  // The origin only: pushes ask "does the destination have it?", which no mirror can answer.
  HttpResponse response =
      LAZYFS_TRY(Execute(*origin_, PullScope(repo), options_.retry.max_attempts, make, nullptr, ReadDeadline()));
  if (response.status == 404) return std::optional<uint64_t>();
  if (!Is2xx(response.status)) return HttpStatusError(response, what);
  std::optional<uint64_t> size = ParseUint(response.Header("content-length").value_or(""));
  if (!size) return Corrupt(what + ": no valid Content-Length");
  return std::optional<uint64_t>(*size);
}

Status RegistryClient::UploadBlob(const std::string& repo, const Sha256Digest& digest, const std::string& file,
                                  uint64_t size, const std::function<void(uint64_t, uint64_t)>& progress) {
  std::string what = fmt::format("upload {}/{}@{}", host_, repo, digest.ToString());
  std::string scope = PushScope(repo);
  // The whole POST + PUT is the unit of retry: after a failed PUT the upload session may be gone.
  auto once = [&]() -> Status {
    auto post = [&](const std::string& base) {
      HttpRequest request;
      request.method = "POST";
      request.url = base + "/v2/" + repo + "/blobs/uploads/";
      request.body = std::string();
      request.timeout = options_.request_timeout;
      return request;
    };
    HttpResponse started = LAZYFS_TRY(Execute(*origin_, scope, 1, post, nullptr));
    if (started.status != 202) return HttpStatusError(started, what + ": POST");
    std::string location = started.Header("location").value_or("");
    if (location.empty()) return Corrupt(what + ": upload session without a Location");
    // Location may be absolute, absolute-path, or (rarely) relative to the uploads URL: resolved as a URI
    // reference against the URL that answered the POST.
    Result<std::string> resolved = ResolveUrl(
        started.effective_url.empty() ? origin_->base_url + "/v2/" + repo + "/blobs/uploads/" : started.effective_url,
        location);
    if (!resolved) return Corrupt("upload Location: " + resolved.error().message());
    std::string put_url = LAZYFS_TRY(WithQuery(*resolved, {{"digest", digest.ToString()}}));
    auto put = [&](const std::string&) {
      HttpRequest request;
      request.method = "PUT";
      request.url = put_url;
      request.body_file = file;
      request.body_file_size = size;
      request.headers.emplace_back("Content-Type", "application/octet-stream");
      request.upload_progress = progress;
      return request;
    };
    HttpResponse finished = LAZYFS_TRY(Execute(*origin_, scope, 1, put, nullptr));
    if (!Is2xx(finished.status)) return HttpStatusError(finished, what + ": PUT");
    return Ok();
  };
  for (int attempt = 1;; ++attempt) {
    Status status = once();
    if (status || !status.error().retryable() || attempt >= options_.retry.max_attempts) return status;
    LogInfo("{}: {} (attempt {}/{}), retrying", what, status.error().ToString(), attempt, options_.retry.max_attempts);
    Sleep(Backoff(attempt));
  }
}

Status RegistryClient::PutManifest(const std::string& repo, const std::string& tag, std::string_view bytes,
                                   const std::string& media_type) {
  std::string what = fmt::format("PUT manifest {}/{}:{}", host_, repo, tag);
  Sha256Digest digest = Sha256Of(bytes);
  auto make = [&](const std::string& base) {
    HttpRequest request;
    request.method = "PUT";
    request.url = base + "/v2/" + repo + "/manifests/" + tag;
    request.body = std::string(bytes);
    request.headers.emplace_back("Content-Type", media_type);
    request.timeout = options_.request_timeout;
    return request;
  };
  auto check = [&](HttpResponse& response) -> Status {
    std::optional<std::string> stored = response.Header("docker-content-digest");
    if (stored && stored->starts_with("sha256:") && *stored != digest.ToString()) {
      return Corrupt(fmt::format("{}: registry stored {} but we sent {}", what, *stored, digest.ToString()));
    }
    return Ok();
  };
  HttpResponse response = LAZYFS_TRY(Execute(*origin_, PushScope(repo), options_.retry.max_attempts, make, check));
  if (!Is2xx(response.status)) return HttpStatusError(response, what);
  return Ok();
}

}  // namespace lazyfs::fetch
