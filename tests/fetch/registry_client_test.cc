// Tests for fetch/registry_client with a scripted transport: auth flows, retries, ranges, manifests,
// mirrors, streams and uploads.
#include <doctest/doctest.h>

#include <atomic>

#include "fetch/image.h"
#include "fetch/registry_client.h"
#include "tests/fetch/registry_test_fakes.h"

namespace lazyfs::fetch {
namespace {

using testing::FakeTransport;
using testing::MakeResponse;
using testing::RequestHeader;
using namespace std::chrono_literals;

constexpr char kHost[] = "reg.test:5000";
constexpr char kBase[] = "http://reg.test:5000";
const std::string kBlob = "0123456789abcdefghijklmnopqrstuvwxyz";

struct Harness {
  explicit Harness(FakeTransport::Handler handler, RegistryClientOptions options = {}) {
    transport = std::make_shared<FakeTransport>(std::move(handler));
    options.insecure = true;
    options.retry.jitter = 0;
    options.retry.max_attempts = 3;
    options.sleep = [this](std::chrono::milliseconds d) { sleeps.push_back(d); };
    client = std::make_unique<RegistryClient>(kHost, std::move(options), transport);
  }
  std::shared_ptr<FakeTransport> transport;
  std::vector<std::chrono::milliseconds> sleeps;
  std::unique_ptr<RegistryClient> client;
};

std::string BlobUrl(const std::string& repo, const std::string& data) {
  return std::string(kBase) + "/v2/" + repo + "/blobs/" + Sha256Of(data).ToString();
}

// Serves kBlob with Range support, as a registry does.
Result<HttpResponse> ServeBlob(const HttpRequest& request) {
  if (!request.range) return MakeResponse(200, kBlob);
  uint64_t end = request.range->length == 0 ? kBlob.size() : request.range->offset + request.range->length;
  if (request.range->offset >= kBlob.size()) return MakeResponse(416);
  end = std::min<uint64_t>(end, kBlob.size());
  return MakeResponse(206, kBlob.substr(request.range->offset, end - request.range->offset),
                      {{"content-range", "bytes " + std::to_string(request.range->offset) + "-" +
                                             std::to_string(end - 1) + "/" + std::to_string(kBlob.size())}});
}

const std::string kBearerChallenge =
    R"(Bearer realm="http://auth.test/token",service="reg.test",scope="repository:app:pull")";

}  // namespace

TEST_CASE("RegistryClient: bearer flow fetches a token once per scope and reuses it") {
  std::atomic<int> token_requests = 0;
  Harness h([&](const HttpRequest& r) -> Result<HttpResponse> {
    if (r.url.starts_with("http://auth.test/token")) {
      ++token_requests;
      CHECK(r.url == "http://auth.test/token?service=reg.test&scope=repository%3aapp%3apull");
      CHECK(RequestHeader(r, "Authorization").empty());  // anonymous: no credentials configured
      return MakeResponse(200, R"({"token":"tok-1","expires_in":300})");
    }
    if (RequestHeader(r, "Authorization") != "Bearer tok-1") {
      return MakeResponse(401, "", {{"www-authenticate", kBearerChallenge}});
    }
    return ServeBlob(r);
  });
  auto first = h.client->GetBlobRange("app", Sha256Of(kBlob), 2, 4);
  REQUIRE(first);
  CHECK(*first == "2345");
  auto second = h.client->GetBlobRange("app", Sha256Of(kBlob), 0, 1);
  REQUIRE(second);
  CHECK(*second == "0");
  CHECK(token_requests == 1);
  CHECK(h.transport->count() == 4);  // 401, token, retry, and the second read straight away
  CHECK(h.sleeps.empty());           // an auth round trip is not a failure to back off from
}

TEST_CASE("RegistryClient: a refused token is refreshed once, with basic credentials, from access_token") {
  std::atomic<int> token_requests = 0;
  RegistryClientOptions options;
  options.credentials = Credentials{"user", "pass"};
  Harness h(
      [&](const HttpRequest& r) -> Result<HttpResponse> {
        if (r.url.starts_with("http://auth.test/token")) {
          CHECK(RequestHeader(r, "Authorization") == "Basic dXNlcjpwYXNz");
          int n = ++token_requests;
          return MakeResponse(200, R"({"access_token":"tok-)" + std::to_string(n) + R"("})");
        }
        // The registry accepts only the second token: the first one "expired".
        if (RequestHeader(r, "Authorization") != "Bearer tok-2") {
          return MakeResponse(401, "", {{"www-authenticate", kBearerChallenge}});
        }
        return ServeBlob(r);
      },
      options);
  auto first = h.client->GetBlobRange("app", Sha256Of(kBlob), 0, 3);
  REQUIRE_FALSE(first);  // tok-1 refused after one refresh: the operation gives up
  CHECK(first.error().code() == ErrorCode::kPermission);
  CHECK(token_requests == 1);
  auto second = h.client->GetBlobRange("app", Sha256Of(kBlob), 0, 3);  // the stale tok-1 is refused, refreshed
  REQUIRE(second);
  CHECK(*second == "012");
  CHECK(token_requests == 2);
}

TEST_CASE("RegistryClient: basic auth is sent after a Basic challenge, and missing credentials are kPermission") {
  auto handler = [](const HttpRequest& r) -> Result<HttpResponse> {
    if (RequestHeader(r, "Authorization") != "Basic dXNlcjpwYXNz") {
      return MakeResponse(401, R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})",
                          {{"www-authenticate", R"(Basic realm="Registry Realm")"}});
    }
    return ServeBlob(r);
  };
  SUBCASE("with credentials") {
    RegistryClientOptions options;
    options.credentials = Credentials{"user", "pass"};
    Harness h(handler, options);
    auto got = h.client->GetBlobRange("app", Sha256Of(kBlob), 1, 2);
    REQUIRE(got);
    CHECK(*got == "12");
    CHECK(h.transport->requests().front().headers.empty());  // nothing sent before the server asked
  }
  SUBCASE("wrong credentials") {
    RegistryClientOptions options;
    options.credentials = Credentials{"user", "wrong"};
    Harness h(handler, options);
    auto got = h.client->GetBlobRange("app", Sha256Of(kBlob), 1, 2);
    REQUIRE_FALSE(got);
    CHECK(got.error().code() == ErrorCode::kPermission);
    CHECK_FALSE(got.error().retryable());
    CHECK(got.error().message().find("wrong") == std::string::npos);  // never a secret in a message
  }
  SUBCASE("without credentials") {
    Harness h(handler);
    auto got = h.client->GetBlobRange("app", Sha256Of(kBlob), 1, 2);
    REQUIRE_FALSE(got);
    CHECK(got.error().code() == ErrorCode::kPermission);
    CHECK(h.transport->count() == 1);
  }
}

TEST_CASE("RegistryClient: 503 with Retry-After and resets are retried; 404 and 403 are not") {
  SUBCASE("503 honours Retry-After") {
    int calls = 0;
    Harness h([&](const HttpRequest& r) -> Result<HttpResponse> {
      if (++calls == 1) return MakeResponse(503, "", {{"retry-after", "2"}});
      return ServeBlob(r);
    });
    auto got = h.client->GetBlobRange("app", Sha256Of(kBlob), 0, 2);
    REQUIRE(got);
    REQUIRE(h.sleeps.size() == 1);
    CHECK(h.sleeps[0] == 2000ms);
  }
  SUBCASE("429 without Retry-After backs off exponentially, then gives up retryable") {
    Harness h([&](const HttpRequest&) -> Result<HttpResponse> { return MakeResponse(429); });
    auto got = h.client->GetBlobRange("app", Sha256Of(kBlob), 0, 2);
    REQUIRE_FALSE(got);
    CHECK(got.error().retryable());
    CHECK(h.transport->count() == 3);
    REQUIRE(h.sleeps.size() == 2);
    CHECK(h.sleeps[0] == 200ms);
    CHECK(h.sleeps[1] == 400ms);
  }
  SUBCASE("a connection reset is retried") {
    int calls = 0;
    Harness h([&](const HttpRequest& r) -> Result<HttpResponse> {
      if (++calls == 1) return Error(ErrorCode::kNetwork, "Connection reset by peer", /*retryable=*/true);
      return ServeBlob(r);
    });
    auto got = h.client->GetBlobRange("app", Sha256Of(kBlob), 0, 2);
    REQUIRE(got);
    CHECK(calls == 2);
  }
  SUBCASE("a TLS verification failure is not retried") {
    Harness h([&](const HttpRequest&) -> Result<HttpResponse> { return Error(ErrorCode::kNetwork, "bad cert"); });
    CHECK_FALSE(h.client->GetBlobRange("app", Sha256Of(kBlob), 0, 2));
    CHECK(h.transport->count() == 1);
  }
  SUBCASE("404 is kNotFound at once") {
    Harness h([&](const HttpRequest&) -> Result<HttpResponse> {
      return MakeResponse(404, R"({"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]})");
    });
    auto got = h.client->GetBlobRange("app", Sha256Of(kBlob), 0, 2);
    REQUIRE_FALSE(got);
    CHECK(got.error().code() == ErrorCode::kNotFound);
    CHECK(got.error().message().find("BLOB_UNKNOWN") != std::string::npos);
    CHECK(h.transport->count() == 1);
  }
  SUBCASE("403 is kPermission at once") {
    Harness h([&](const HttpRequest&) -> Result<HttpResponse> { return MakeResponse(403); });
    auto got = h.client->GetManifest("app", "latest");
    REQUIRE_FALSE(got);
    CHECK(got.error().code() == ErrorCode::kPermission);
    CHECK(h.transport->count() == 1);
  }
}

TEST_CASE("RegistryClient: range reads") {
  SUBCASE("the Range is asked for and a 206 is returned as is") {
    Harness h(ServeBlob);
    auto got = h.client->GetBlobRange("app", Sha256Of(kBlob), 10, 5);
    REQUIRE(got);
    CHECK(*got == "abcde");
    HttpRequest sent = h.transport->requests().at(0);
    CHECK(sent.url == BlobUrl("app", kBlob));
    REQUIRE(sent.range);
    CHECK(sent.range->offset == 10);
    CHECK(sent.range->length == 5);
  }
  SUBCASE("a 200 whole body is sliced") {
    Harness h([](const HttpRequest&) -> Result<HttpResponse> { return MakeResponse(200, kBlob); });
    auto got = h.client->GetBlobRange("app", Sha256Of(kBlob), 30, 6);
    REQUIRE(got);
    CHECK(*got == "uvwxyz");
  }
  SUBCASE("a truncated 206 is retried, then fails retryable") {
    Harness h([](const HttpRequest&) -> Result<HttpResponse> {
      return MakeResponse(206, "ab", {{"content-range", "bytes 10-14/36"}});
    });
    auto got = h.client->GetBlobRange("app", Sha256Of(kBlob), 10, 5);
    REQUIRE_FALSE(got);
    CHECK(got.error().retryable());
    CHECK(h.transport->count() == 3);
  }
  SUBCASE("a truncated 206 followed by a good one succeeds") {
    int calls = 0;
    Harness h([&](const HttpRequest& r) -> Result<HttpResponse> {
      if (++calls == 1) return MakeResponse(206, "ab");
      return ServeBlob(r);
    });
    auto got = h.client->GetBlobRange("app", Sha256Of(kBlob), 10, 5);
    REQUIRE(got);
    CHECK(*got == "abcde");
  }
  SUBCASE("416 and a short blob are kCorrupt") {
    Harness h(ServeBlob);
    auto beyond = h.client->GetBlobRange("app", Sha256Of(kBlob), 100, 5);
    REQUIRE_FALSE(beyond);
    CHECK(beyond.error().code() == ErrorCode::kCorrupt);
    auto straddling = h.client->GetBlobRange("app", Sha256Of(kBlob), 30, 10);
    REQUIRE_FALSE(straddling);
    CHECK(straddling.error().code() == ErrorCode::kCorrupt);
    CHECK_FALSE(straddling.error().retryable());
  }
  SUBCASE("Content-Range parsing") {
    auto r = ParseContentRange("bytes 5-9/100");
    REQUIRE(r);
    CHECK(r->first == 5);
    CHECK(r->last == 9);
    CHECK(r->total == 100u);
    CHECK_FALSE(ParseContentRange("bytes 5-9/*")->total);
    CHECK_FALSE(ParseContentRange("bytes 9-5/10"));
    CHECK_FALSE(ParseContentRange("items 0-1/2"));
  }
}

TEST_CASE("RegistryClient: manifests") {
  const std::string manifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]})";
  SUBCASE("by tag: Accept types sent, digest computed, media type from Content-Type") {
    Harness h([&](const HttpRequest& r) -> Result<HttpResponse> {
      std::string accept = RequestHeader(r, "Accept");
      CHECK(accept.find(kMediaTypeOciIndex) != std::string::npos);
      CHECK(accept.find(kMediaTypeDockerManifestList) != std::string::npos);
      CHECK(r.url == std::string(kBase) + "/v2/lib/app/manifests/v1");
      return MakeResponse(200, manifest,
                          {{"content-type", "application/vnd.oci.image.manifest.v1+json; charset=utf-8"},
                           {"docker-content-digest", Sha256Of(manifest).ToString()}});
    });
    auto got = h.client->GetManifest("lib/app", "v1");
    REQUIRE(got);
    CHECK(got->digest == Sha256Of(manifest));
    CHECK(got->media_type == kMediaTypeOciManifest);
    CHECK(got->bytes == manifest);
  }
  SUBCASE("pinned by digest: wrong bytes are kCorrupt") {
    Harness h([&](const HttpRequest&) -> Result<HttpResponse> { return MakeResponse(200, manifest + " "); });
    auto got = h.client->GetManifest("app", Sha256Of(manifest).ToString());
    REQUIRE_FALSE(got);
    CHECK(got.error().code() == ErrorCode::kCorrupt);
    CHECK(h.transport->count() == 1);
  }
  SUBCASE("by tag: a Docker-Content-Digest that disagrees is kCorrupt") {
    Harness h([&](const HttpRequest&) -> Result<HttpResponse> {
      return MakeResponse(200, manifest, {{"docker-content-digest", Sha256Of("other").ToString()}});
    });
    auto got = h.client->GetManifest("app", "latest");
    REQUIRE_FALSE(got);
    CHECK(got.error().code() == ErrorCode::kCorrupt);
  }
  SUBCASE("no Content-Type: the document's mediaType decides") {
    Harness h([&](const HttpRequest&) -> Result<HttpResponse> { return MakeResponse(200, manifest); });
    auto got = h.client->GetManifest("app", "latest");
    REQUIRE(got);
    CHECK(got->media_type == kMediaTypeOciManifest);
  }
}

TEST_CASE("RegistryClient: mirrors are tried in order before the origin") {
  RegistryClientOptions options;
  options.mirrors = {"http://mirror-a.test/", "http://mirror-b.test"};
  SUBCASE("failing mirrors fall through to the origin, each tried once") {
    Harness h(
        [](const HttpRequest& r) -> Result<HttpResponse> {
          if (r.url.starts_with("http://mirror-a.test/")) return Error(ErrorCode::kNetwork, "refused", true);
          if (r.url.starts_with("http://mirror-b.test/")) return MakeResponse(404);
          return ServeBlob(r);
        },
        options);
    auto got = h.client->GetBlobRange("app", Sha256Of(kBlob), 0, 3);
    REQUIRE(got);
    auto requests = h.transport->requests();
    REQUIRE(requests.size() == 3);
    CHECK(requests[0].url == "http://mirror-a.test/v2/app/blobs/" + Sha256Of(kBlob).ToString());
    CHECK(requests[1].url.starts_with("http://mirror-b.test/v2/app/blobs/"));
    CHECK(requests[2].url == BlobUrl("app", kBlob));
    CHECK(h.sleeps.empty());
  }
  SUBCASE("a working mirror spares the origin") {
    Harness h(
        [](const HttpRequest& r) -> Result<HttpResponse> {
          CHECK(r.url.starts_with("http://mirror-a.test/"));
          return ServeBlob(r);
        },
        options);
    auto got = h.client->GetBlobRange("app", Sha256Of(kBlob), 0, 3);
    REQUIRE(got);
    CHECK(h.transport->count() == 1);
  }
}

TEST_CASE("RegistryClient: streams verify the digest and resume after a reset") {
  SUBCASE("a reset mid-body resumes from the delivered offset") {
    int calls = 0;
    Harness h([&](const HttpRequest& r) -> Result<HttpResponse> {
      if (++calls == 1) {
        // Deliver 9 bytes, then the connection dies.
        REQUIRE(r.sink(200, std::string_view(kBlob).substr(0, 9)));
        return Error(ErrorCode::kNetwork, "Connection reset by peer", true);
      }
      REQUIRE(r.range);
      CHECK(r.range->offset == 9);
      CHECK(r.range->length == 0);
      return ServeBlob(r);
    });
    std::string got;
    Status status = h.client->GetBlobStream("app", Sha256Of(kBlob), [&](std::string_view piece) {
      got.append(piece);
      return Ok();
    }, kBlob.size());
    REQUIRE(status);
    CHECK(got == kBlob);
  }
  SUBCASE("a server ignoring the resume Range is skipped forward") {
    int calls = 0;
    Harness h([&](const HttpRequest& r) -> Result<HttpResponse> {
      if (++calls == 1) {
        REQUIRE(r.sink(200, std::string_view(kBlob).substr(0, 7)));
        return Error(ErrorCode::kTimeout, "stalled", true);
      }
      return MakeResponse(200, kBlob);
    });
    std::string got;
    REQUIRE(h.client->GetBlobStream("app", Sha256Of(kBlob), [&](std::string_view piece) {
      got.append(piece);
      return Ok();
    }));
    CHECK(got == kBlob);
  }
  SUBCASE("wrong bytes are kCorrupt") {
    Harness h([](const HttpRequest&) -> Result<HttpResponse> { return MakeResponse(200, "not the blob"); });
    Status status = h.client->GetBlobStream("app", Sha256Of(kBlob), [](std::string_view) { return Ok(); });
    REQUIRE_FALSE(status);
    CHECK(status.error().code() == ErrorCode::kCorrupt);
  }
  SUBCASE("a sink error stops the stream and is returned as is") {
    Harness h(ServeBlob);
    Status status = h.client->GetBlobStream("app", Sha256Of(kBlob),
                                            [](std::string_view) { return Status(Error(ErrorCode::kNoSpace, "full", true)); });
    REQUIRE_FALSE(status);
    CHECK(status.error().code() == ErrorCode::kNoSpace);
    CHECK(h.transport->count() == 1);
  }
}

TEST_CASE("RegistryClient: HeadBlob") {
  Harness h([](const HttpRequest& r) -> Result<HttpResponse> {
    CHECK(r.method == "HEAD");
    if (r.url == BlobUrl("app", kBlob)) return MakeResponse(200, "", {{"content-length", "36"}});
    return MakeResponse(404);
  });
  auto present = h.client->HeadBlob("app", Sha256Of(kBlob));
  REQUIRE(present);
  CHECK(*present == 36u);
  auto absent = h.client->HeadBlob("app", Sha256Of("x"));
  REQUIRE(absent);
  CHECK_FALSE(*absent);
}

TEST_CASE("RegistryClient: monolithic upload is POST then PUT ?digest= with the file as body") {
  Sha256Digest digest = Sha256Of(kBlob);
  std::string location;
  std::string expected_put;
  SUBCASE("absolute-path Location that already has a query") {
    location = "/v2/app/blobs/uploads/u-1?_state=abc";
    expected_put = std::string(kBase) + "/v2/app/blobs/uploads/u-1?_state=abc&digest=sha256%3a" + digest.Hex();
  }
  SUBCASE("absolute Location on another host") {
    location = "http://upload.test/session/7";
    expected_put = "http://upload.test/session/7?digest=sha256%3a" + digest.Hex();
  }
  Harness h([&](const HttpRequest& r) -> Result<HttpResponse> {
    if (r.method == "POST") {
      CHECK(r.url == std::string(kBase) + "/v2/app/blobs/uploads/");
      return MakeResponse(202, "", {{"location", location}});
    }
    CHECK(r.method == "PUT");
    CHECK(r.url == expected_put);
    CHECK(r.body_file == "/tmp/blob-file");
    CHECK(r.body_file_size == kBlob.size());
    CHECK(RequestHeader(r, "Content-Type") == "application/octet-stream");
    return MakeResponse(201);
  });
  REQUIRE(h.client->UploadBlob("app", digest, "/tmp/blob-file", kBlob.size()));
  CHECK(h.transport->count() == 2);
}

TEST_CASE("RegistryClient: a failed PUT restarts the whole upload; PutManifest sends bytes and media type") {
  int puts = 0;
  int posts = 0;
  std::string stored_manifest;
  Harness h([&](const HttpRequest& r) -> Result<HttpResponse> {
    if (r.method == "POST") {
      ++posts;
      return MakeResponse(202, "", {{"location", "/v2/app/blobs/uploads/s" + std::to_string(posts)}});
    }
    if (r.url.find("/manifests/") != std::string::npos) {
      CHECK(RequestHeader(r, "Content-Type") == kMediaTypeOciManifest);
      stored_manifest = *r.body;
      return MakeResponse(201, "", {{"docker-content-digest", Sha256Of(*r.body).ToString()}});
    }
    if (++puts == 1) return MakeResponse(500);
    CHECK(r.url.find("/uploads/s2?") != std::string::npos);
    return MakeResponse(201);
  });
  REQUIRE(h.client->UploadBlob("app", Sha256Of(kBlob), "/tmp/f", kBlob.size()));
  CHECK(posts == 2);
  REQUIRE(h.client->PutManifest("app", "v1", "{\"m\":1}", std::string(kMediaTypeOciManifest)));
  CHECK(stored_manifest == "{\"m\":1}");
}

TEST_CASE("HttpStatusError: maps statuses to codes and retryability") {
  CHECK(HttpStatusError(MakeResponse(404), "x").code() == ErrorCode::kNotFound);
  CHECK(HttpStatusError(MakeResponse(401), "x").code() == ErrorCode::kPermission);
  CHECK(HttpStatusError(MakeResponse(416), "x").code() == ErrorCode::kCorrupt);
  CHECK(HttpStatusError(MakeResponse(502), "x").retryable());
  CHECK(HttpStatusError(MakeResponse(429), "x").retryable());
  CHECK_FALSE(HttpStatusError(MakeResponse(400), "x").retryable());
}

TEST_CASE("RegistryClient: the read timeout bounds a read, every retry and wait included") {
  // A fake clock: requests "take" the time the server makes them take, waits advance it too.
  auto start = std::chrono::steady_clock::now();
  std::chrono::milliseconds elapsed{0};
  RegistryClientOptions options;
  options.insecure = true;
  options.retry.jitter = 0;
  options.retry.max_attempts = 1000;  // only the deadline may end these loops
  options.read_timeout = 30s;
  options.request_timeout = 60s;
  options.now = [&] { return start + elapsed; };
  options.sleep = [&](std::chrono::milliseconds d) { elapsed += d; };
  std::vector<std::chrono::milliseconds> timeouts;

  SUBCASE("a registry that stalls every request") {
    auto transport = std::make_shared<FakeTransport>([&](const HttpRequest& r) -> Result<HttpResponse> {
      timeouts.push_back(r.timeout);
      elapsed += r.timeout;  // the transport gives up exactly at the timeout it was given
      return Error(ErrorCode::kTimeout, "Operation timed out", /*retryable=*/true);
    });
    RegistryClient client(kHost, options, transport);
    auto got = client.GetBlobRange("app", Sha256Of(kBlob), 0, 2);
    REQUIRE_FALSE(got);
    CHECK(got.error().code() == ErrorCode::kTimeout);
    CHECK(elapsed <= 30s);
    // A stalled first attempt leaves room for another on a fresh connection.
    CHECK(timeouts.size() >= 2);
    CHECK(timeouts.front() <= 15s);
  }
  SUBCASE("a registry that answers 503 with a long Retry-After forever") {
    auto transport = std::make_shared<FakeTransport>([&](const HttpRequest& r) -> Result<HttpResponse> {
      timeouts.push_back(r.timeout);
      elapsed += 10ms;
      return MakeResponse(503, "", {{"retry-after", "7"}});
    });
    RegistryClient client(kHost, options, transport);
    auto got = client.GetManifest("app", "latest");
    REQUIRE_FALSE(got);
    CHECK(got.error().code() == ErrorCode::kTimeout);
    CHECK(got.error().message().find("503") != std::string::npos);  // the last failure is named
    CHECK(elapsed <= 30s);
    CHECK(timeouts.size() == 5);  // at 0, 7, 14, 21 and 28 s; a wait to 35 s is not taken
  }
  SUBCASE("one deadline shared by several range reads") {
    auto transport = std::make_shared<FakeTransport>([&](const HttpRequest& r) -> Result<HttpResponse> {
      elapsed += 12s;
      return ServeBlob(r);
    });
    RegistryClient client(kHost, options, transport);
    auto deadline = client.ReadDeadline();
    REQUIRE(deadline);
    CHECK(client.GetBlobRange("app", Sha256Of(kBlob), 0, 2, deadline));
    CHECK(client.GetBlobRange("app", Sha256Of(kBlob), 4, 2, deadline));
    auto third = client.GetBlobRange("app", Sha256Of(kBlob), 8, 2, deadline);  // starts at 24 s: 6 s left
    CHECK(third);  // the fake ignores its 6 s timeout; what matters is that it was given
    auto fourth = client.GetBlobRange("app", Sha256Of(kBlob), 8, 2, deadline);  // starts at 36 s
    REQUIRE_FALSE(fourth);
    CHECK(fourth.error().code() == ErrorCode::kTimeout);
    CHECK(transport->requests().back().timeout <= 6s);
  }
}


TEST_CASE("RegistryClient: a 401 from a redirect target is not answered with the registry's credentials") {
  // The registry sends a blob GET to a CDN; the CDN asks for credentials at a third host. Before the fix
  // the registry's Basic credential went to that third host's token endpoint.
  RegistryClientOptions options;
  options.credentials = Credentials{"user", "pass"};
  std::string challenge;
  SUBCASE("Bearer") { challenge = R"(Bearer realm="https://collector.test/token",service="x")"; }
  SUBCASE("Basic") { challenge = R"(Basic realm="cdn")"; }
  Harness h(
      [&](const HttpRequest& r) -> Result<HttpResponse> {
        CHECK_FALSE(r.url.starts_with("https://collector.test"));
        HttpResponse redirected = MakeResponse(401, "", {{"www-authenticate", challenge}});
        redirected.effective_url = "https://cdn.test/blobs/abc?sig=1";
        return redirected;
      },
      options);
  auto got = h.client->GetBlobRange("app", Sha256Of(kBlob), 0, 3);
  REQUIRE_FALSE(got);
  CHECK(got.error().code() == ErrorCode::kPermission);
  CHECK_FALSE(got.error().retryable());
  CHECK(got.error().message().find("https://cdn.test:443") != std::string::npos);
  CHECK(got.error().message().find("http://reg.test:5000") != std::string::npos);
  CHECK(h.transport->count() == 1);  // neither a token request nor a retry with credentials
  for (const HttpRequest& r : h.transport->requests()) CHECK(RequestHeader(r, "Authorization").empty());
}

TEST_CASE("RegistryClient: the registry's own challenge may name a token realm on another https host") {
  // Docker Hub's flow: registry-1.docker.io challenges, auth.docker.io issues the token.
  RegistryClientOptions options;
  options.credentials = Credentials{"user", "pass"};
  options.retry.jitter = 0;
  auto transport = std::make_shared<FakeTransport>([](const HttpRequest& r) -> Result<HttpResponse> {
    if (r.url.starts_with("https://auth.test/token")) {
      CHECK(RequestHeader(r, "Authorization") == "Basic dXNlcjpwYXNz");
      return MakeResponse(200, R"({"token":"t"})");
    }
    CHECK(r.url.starts_with("https://reg.test:5000/"));
    if (RequestHeader(r, "Authorization") != "Bearer t") {
      HttpResponse refused = MakeResponse(401, "", {{"www-authenticate", R"(Bearer realm="https://auth.test/token")"}});
      refused.effective_url = r.url;
      return refused;
    }
    return ServeBlob(r);
  });
  RegistryClient client(kHost, options, transport);
  auto got = client.GetBlobRange("app", Sha256Of(kBlob), 0, 3);
  REQUIRE(got);
  CHECK(*got == "012");
  CHECK(transport->count() == 3);
}

TEST_CASE("RegistryClient: an https registry's plain-http token realm is refused unless named insecure") {
  RegistryClientOptions options;  // https: not insecure
  options.credentials = Credentials{"user", "pass"};
  options.retry.jitter = 0;
  std::atomic<int> token_requests = 0;
  auto handler = [&](const HttpRequest& r) -> Result<HttpResponse> {
    if (r.url.starts_with("http://auth.test/token")) {
      ++token_requests;
      CHECK(RequestHeader(r, "Authorization") == "Basic dXNlcjpwYXNz");
      return MakeResponse(200, R"({"token":"t"})");
    }
    if (RequestHeader(r, "Authorization") != "Bearer t") {
      return MakeResponse(401, "", {{"www-authenticate", R"(Bearer realm="http://auth.test/token")"}});
    }
    return ServeBlob(r);
  };
  SUBCASE("refused: nothing is sent in cleartext") {
    auto transport = std::make_shared<FakeTransport>(handler);
    RegistryClient client(kHost, options, transport);
    auto got = client.GetBlobRange("app", Sha256Of(kBlob), 0, 3);
    REQUIRE_FALSE(got);
    CHECK(got.error().code() == ErrorCode::kPermission);
    CHECK_FALSE(got.error().retryable());
    CHECK(got.error().message().find("--insecure-registry auth.test:80") != std::string::npos);
    CHECK(token_requests == 0);
    CHECK(transport->count() == 1);
  }
  SUBCASE("allowed when the realm's host is named with --insecure-registry") {
    options.insecure_hosts = {"auth.test"};
    auto transport = std::make_shared<FakeTransport>(handler);
    RegistryClient client(kHost, options, transport);
    REQUIRE(client.GetBlobRange("app", Sha256Of(kBlob), 0, 3));
    CHECK(token_requests == 1);
  }
  SUBCASE("another port of that host is still refused") {
    options.insecure_hosts = {"auth.test:8080"};
    auto transport = std::make_shared<FakeTransport>(handler);
    RegistryClient client(kHost, options, transport);
    CHECK_FALSE(client.GetBlobRange("app", Sha256Of(kBlob), 0, 3));
    CHECK(token_requests == 0);
  }
  SUBCASE("allowed when the registry itself is plain http") {
    Harness h(handler, options);
    REQUIRE(h.client->GetBlobRange("app", Sha256Of(kBlob), 0, 3));
    CHECK(token_requests == 1);
  }
}

TEST_CASE("RegistryClient: an upload Location on another host gets no Authorization") {
  RegistryClientOptions options;
  options.credentials = Credentials{"user", "pass"};
  Harness h(
      [&](const HttpRequest& r) -> Result<HttpResponse> {
        if (r.url.starts_with("http://upload.test/")) {
          CHECK(RequestHeader(r, "Authorization").empty());
          return MakeResponse(201);
        }
        if (RequestHeader(r, "Authorization") != "Basic dXNlcjpwYXNz") {
          return MakeResponse(401, "", {{"www-authenticate", R"(Basic realm="r")"}});
        }
        return MakeResponse(202, "", {{"location", "http://upload.test/session/7"}});
      },
      options);
  REQUIRE(h.client->UploadBlob("app", Sha256Of(kBlob), "/tmp/blob-file", kBlob.size()));
  auto requests = h.transport->requests();
  REQUIRE(requests.size() == 3);  // POST refused, POST with Basic, PUT to upload.test anonymous
  CHECK(requests[2].url.starts_with("http://upload.test/session/7?digest="));
}

TEST_CASE("RegistryClient: a token fetch after a late 401 gets only the time left before the read deadline") {
  auto start = std::chrono::steady_clock::now();
  std::chrono::milliseconds elapsed{0};
  RegistryClientOptions options;
  options.insecure = true;
  options.retry.jitter = 0;
  options.read_timeout = 5s;
  options.request_timeout = 5s;  // as --read-timeout 5 makes it
  options.now = [&] { return start + elapsed; };
  options.sleep = [&](std::chrono::milliseconds d) { elapsed += d; };
  std::vector<std::chrono::milliseconds> token_timeouts;
  std::chrono::milliseconds registry_delay = 4500ms;
  auto transport = std::make_shared<FakeTransport>([&](const HttpRequest& r) -> Result<HttpResponse> {
    if (r.url.starts_with("http://auth.test/token")) {
      // A silent token server: the request lasts exactly as long as it is allowed to.
      token_timeouts.push_back(r.timeout);
      elapsed += r.timeout;
      return Error(ErrorCode::kTimeout, "Operation timed out", /*retryable=*/true);
    }
    elapsed += registry_delay;
    return MakeResponse(401, "", {{"www-authenticate", kBearerChallenge}});
  });
  RegistryClient client(kHost, options, transport);
  SUBCASE("the 401 comes late: the token request gets the rest") {
    auto got = client.GetManifest("app", "latest");
    REQUIRE_FALSE(got);
    CHECK(got.error().code() == ErrorCode::kTimeout);
    REQUIRE(token_timeouts.size() == 1);
    CHECK(token_timeouts[0] > 0ms);
    CHECK(token_timeouts[0] <= 500ms);
    CHECK(elapsed <= 5s);
  }
  SUBCASE("the 401 comes after the deadline: no token request at all") {
    registry_delay = 6s;
    auto got = client.GetManifest("app", "latest");
    REQUIRE_FALSE(got);
    CHECK(got.error().code() == ErrorCode::kTimeout);
    CHECK(token_timeouts.empty());
  }
}

TEST_CASE("RegistryClient: mirror_tags decides whether a mirror may resolve a tag; digests use mirrors either way") {
  const std::string origin_manifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]})";
  const std::string mirror_manifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[],"x":1})";
  RegistryClientOptions options;
  options.mirrors = {"http://mirror.test"};
  auto handler = [&](const HttpRequest& r) -> Result<HttpResponse> {
    bool mirror = r.url.starts_with("http://mirror.test/");
    // By tag the two disagree; by digest the mirror has the origin's manifest too.
    if (r.url.ends_with("/manifests/v1")) return MakeResponse(200, mirror ? mirror_manifest : origin_manifest);
    if (r.url.ends_with("/manifests/" + Sha256Of(origin_manifest).ToString())) return MakeResponse(200, origin_manifest);
    return MakeResponse(404);
  };
  SUBCASE("yes (the default): the mirror's tag answer is taken") {
    Harness h(handler, options);
    auto got = h.client->GetManifest("app", "v1");
    REQUIRE(got);
    CHECK(got->bytes == mirror_manifest);
    CHECK(h.transport->count() == 1);
  }
  SUBCASE("no: tags at the origin only, digests still from the mirror") {
    options.mirror_tags = false;
    Harness h(handler, options);
    auto by_tag = h.client->GetManifest("app", "v1");
    REQUIRE(by_tag);
    CHECK(by_tag->bytes == origin_manifest);
    auto requests = h.transport->requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].url == std::string(kBase) + "/v2/app/manifests/v1");
    auto by_digest = h.client->GetManifest("app", by_tag->digest.ToString());
    REQUIRE(by_digest);
    requests = h.transport->requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[1].url.starts_with("http://mirror.test/v2/app/manifests/sha256:"));
    // Blobs are digests too.
    auto blob = h.client->GetBlobRange("app", Sha256Of(kBlob), 0, 1);
    CHECK_FALSE(blob);  // neither has it
    CHECK(h.transport->requests().at(2).url.starts_with("http://mirror.test/"));
  }
}

}  // namespace lazyfs::fetch

namespace lazyfs::fetch {

TEST_CASE("RegistryClient: GetBlobRanges sends every range's first attempt in one batch, answers in order") {
  Harness h(ServeBlob);
  std::vector<std::pair<uint64_t, uint64_t>> ranges = {{10, 3}, {0, 2}, {30, 6}};
  auto got = h.client->GetBlobRanges("app", Sha256Of(kBlob), ranges);
  REQUIRE(got);
  CHECK(*got == std::vector<std::string>{"abc", "01", "uvwxyz"});
  CHECK(h.transport->batch_sizes() == std::vector<size_t>{3});
  CHECK(h.transport->count() == 3);
}

TEST_CASE("RegistryClient: GetBlobRanges retries alone what the batch did not get") {
  SUBCASE("a 503 for one range") {
    std::atomic<int> failed = 0;
    Harness h([&](const HttpRequest& r) -> Result<HttpResponse> {
      if (r.range && r.range->offset == 10 && failed++ == 0) return MakeResponse(503);
      return ServeBlob(r);
    });
    auto got = h.client->GetBlobRanges("app", Sha256Of(kBlob), std::vector<std::pair<uint64_t, uint64_t>>{{0, 2}, {10, 3}});
    REQUIRE(got);
    CHECK(*got == std::vector<std::string>{"01", "abc"});
    CHECK(h.transport->batch_sizes() == std::vector<size_t>{2});
    CHECK(h.transport->count() == 3);  // the batch, then the one range again
  }
  SUBCASE("a 401 for all: one token, then each range") {
    std::atomic<int> token_requests = 0;
    Harness h([&](const HttpRequest& r) -> Result<HttpResponse> {
      if (r.url.starts_with("http://auth.test/token")) {
        ++token_requests;
        return MakeResponse(200, R"({"token":"tok-1","expires_in":300})");
      }
      if (RequestHeader(r, "Authorization") != "Bearer tok-1") {
        return MakeResponse(401, "", {{"www-authenticate", kBearerChallenge}});
      }
      return ServeBlob(r);
    });
    auto got = h.client->GetBlobRanges("app", Sha256Of(kBlob), std::vector<std::pair<uint64_t, uint64_t>>{{0, 2}, {10, 3}});
    REQUIRE(got);
    CHECK(*got == std::vector<std::string>{"01", "abc"});
    CHECK(token_requests == 1);
  }
  SUBCASE("a missing blob is kNotFound") {
    Harness h([](const HttpRequest&) -> Result<HttpResponse> { return MakeResponse(404); });
    auto got = h.client->GetBlobRanges("app", Sha256Of(kBlob), std::vector<std::pair<uint64_t, uint64_t>>{{0, 2}});
    REQUIRE_FALSE(got);
    CHECK(got.error().code() == ErrorCode::kNotFound);
  }
}

TEST_CASE("RegistryClient: GetBlobRanges asks a mirror first, then the origin for what it lacked, in batches") {
  RegistryClientOptions options;
  options.mirrors = {"http://mirror.test"};
  Harness h(
      [](const HttpRequest& r) -> Result<HttpResponse> {
        if (r.url.starts_with("http://mirror.test")) return MakeResponse(404);
        return ServeBlob(r);
      },
      options);
  auto got = h.client->GetBlobRanges("app", Sha256Of(kBlob), std::vector<std::pair<uint64_t, uint64_t>>{{0, 2}, {10, 3}});
  REQUIRE(got);
  CHECK(*got == std::vector<std::string>{"01", "abc"});
  CHECK(h.transport->batch_sizes() == std::vector<size_t>{2, 2});
}

}  // namespace lazyfs::fetch
