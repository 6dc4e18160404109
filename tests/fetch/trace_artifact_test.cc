#include "fetch/trace_artifact.h"

#include <doctest/doctest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "tests/fetch/registry_test_fakes.h"
#include "tests/test_support.h"

namespace lazyfs::fetch {
namespace {

using testing::FakeTransport;
using testing::MakeResponse;
using testing::RequestHeader;

constexpr char kHost[] = "reg.test:5000";

// A registry in memory: blob uploads (POST + PUT ?digest=), HEAD/GET of blobs, PUT/GET of manifests.
struct FakeRegistry {
  std::map<std::string, std::string> blobs;                                // digest -> bytes
  std::map<std::string, std::pair<std::string, std::string>> manifests;   // tag or digest -> (bytes, type)
  int uploads = 0;

  Result<HttpResponse> Handle(const HttpRequest& r) {
    auto digest_at = [](const std::string& url) { return url.substr(url.rfind('/') + 1); };
    if (r.method == "POST") return MakeResponse(202, "", {{"location", "/v2/app/blobs/uploads/u"}});
    if (r.method == "PUT" && r.url.find("/blobs/uploads/") != std::string::npos) {
      std::string digest = "sha256:" + r.url.substr(r.url.find("sha256%3a") + 9);
      Result<std::string> body = ReadWholeFile(r.body_file);
      if (!body) return MakeResponse(500);
      blobs[digest] = *body;
      ++uploads;
      return MakeResponse(201);
    }
    if (r.url.find("/manifests/") != std::string::npos) {
      std::string ref = digest_at(r.url);
      if (r.method == "PUT") {
        std::string type = RequestHeader(r, "Content-Type");
        manifests[ref] = {*r.body, type};
        manifests[Sha256Of(*r.body).ToString()] = {*r.body, type};
        return MakeResponse(201);
      }
      auto it = manifests.find(ref);
      if (it == manifests.end()) return MakeResponse(404);
      return MakeResponse(200, it->second.first,
                          {{"content-type", it->second.second},
                           {"docker-content-digest", Sha256Of(it->second.first).ToString()}});
    }
    auto it = blobs.find(digest_at(r.url));
    if (it == blobs.end()) return MakeResponse(404);
    if (r.method == "HEAD") return MakeResponse(200, "", {{"content-length", std::to_string(it->second.size())}});
    return MakeResponse(200, it->second);
  }
};

struct Fixture {
  FakeRegistry registry;
  std::shared_ptr<FakeTransport> transport =
      std::make_shared<FakeTransport>([this](const HttpRequest& r) { return registry.Handle(r); });
  std::unique_ptr<RegistryClient> client;
  Fixture() {
    RegistryClientOptions options;
    options.insecure = true;
    options.retry.max_attempts = 1;
    options.sleep = [](std::chrono::milliseconds) {};
    client = std::make_unique<RegistryClient>(kHost, options, transport);
    std::string image = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"})";
    registry.manifests["v1"] = {image, "application/vnd.oci.image.manifest.v1+json"};
    registry.manifests[Sha256Of(image).ToString()] = registry.manifests["v1"];
  }
  FetchedManifest Subject() {
    auto m = client->GetManifest("app", "v1");
    REQUIRE(m);
    return *m;
  }
};

}  // namespace

TEST_CASE("TraceArtifact: push stores the trace with the image as subject; fetch finds it by the image digest") {
  Fixture f;
  lazyfs::testing::TempDir dir;
  std::string trace_path = dir.path + "/t.trace";
  std::string trace_bytes = std::string("LZYTRACE") + std::string(100, 'x');
  REQUIRE(WriteFileAtomic(trace_path, trace_bytes));
  FetchedManifest subject = f.Subject();

  SUBCASE("nothing stored yet is nullopt, not an error") {
    auto none = FetchTraceArtifact(*f.client, "app", subject.digest);
    REQUIRE(none);
    CHECK(!none->has_value());
  }
  SUBCASE("round trip") {
    auto pushed = PushTraceArtifact(*f.client, "app", subject, trace_path);
    REQUIRE(pushed);
    CHECK(f.registry.uploads == 2);  // the empty config and the trace
    auto& [bytes, type] = f.registry.manifests.at(TraceArtifactTag(subject.digest));
    CHECK(type == "application/vnd.oci.image.manifest.v1+json");
    nlohmann::json m = nlohmann::json::parse(bytes);
    CHECK(m["artifactType"] == kTraceArtifactType);
    CHECK(m["subject"]["digest"] == subject.digest.ToString());
    CHECK(m["subject"]["size"] == subject.bytes.size());
    CHECK(m["config"]["mediaType"] == "application/vnd.oci.empty.v1+json");
    CHECK(*pushed == Sha256Of(bytes));
    auto fetched = FetchTraceArtifact(*f.client, "app", subject.digest);
    REQUIRE(fetched);
    REQUIRE(fetched->has_value());
    CHECK(**fetched == trace_bytes);
    // A second push skips the blobs the registry has.
    REQUIRE(PushTraceArtifact(*f.client, "app", subject, trace_path));
    CHECK(f.registry.uploads == 2);
  }
  SUBCASE("an artifact about another image under the tag is kCorrupt") {
    REQUIRE(PushTraceArtifact(*f.client, "app", subject, trace_path));
    auto& stored = f.registry.manifests.at(TraceArtifactTag(subject.digest)).first;
    nlohmann::json m = nlohmann::json::parse(stored);
    m["subject"]["digest"] = Sha256Of("other").ToString();
    stored = m.dump();
    auto fetched = FetchTraceArtifact(*f.client, "app", subject.digest);
    REQUIRE(!fetched);
    CHECK(fetched.error().code() == ErrorCode::kCorrupt);
  }
  SUBCASE("a tampered trace blob fails its digest") {
    REQUIRE(PushTraceArtifact(*f.client, "app", subject, trace_path));
    f.registry.blobs.at(Sha256Of(trace_bytes).ToString())[10] = 'y';
    auto fetched = FetchTraceArtifact(*f.client, "app", subject.digest);
    REQUIRE(!fetched);
    CHECK(fetched.error().code() == ErrorCode::kCorrupt);
  }
}

TEST_CASE("TraceArtifact: the tag follows the referrers fallback form") {
  Sha256Digest d = Sha256Of("image");
  CHECK(TraceArtifactTag(d) == "sha256-" + d.Hex() + ".lazyfs-trace");
  CHECK(TraceArtifactTag(d).size() <= 128);  // the distribution spec's tag limit
}

}  // namespace lazyfs::fetch
