// Tests for fetch/registry_source (range merging, the registry BlobReader, Resolve through an index) and
// fetch/registry_push (HEAD-skip, upload, manifest bytes preserved), against an in-memory fake registry
// behind the fake transport.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "fetch/document_cache.h"
#include "fetch/image.h"
#include "fetch/oci_layout.h"
#include "fetch/registry_push.h"
#include "fetch/registry_source.h"
#include "tests/fetch/registry_test_fakes.h"
#include "tests/test_support.h"

namespace lazyfs::fetch {
namespace {

using testing::FakeTransport;
using testing::MakeResponse;
using testing::RequestHeader;

// A registry in memory: blobs and manifests per repository, uploads through POST + PUT ?digest=.
class FakeRegistry {
 public:
  Result<HttpResponse> Handle(const HttpRequest& r) {
    std::lock_guard lock(mu_);
    std::string path = r.url.substr(r.url.find("/v2/"));
    std::string query;
    if (size_t q = path.find('?'); q != std::string::npos) {
      query = path.substr(q + 1);
      path.resize(q);
    }
    if (size_t at = path.find("/blobs/uploads/"); at != std::string::npos) {
      if (r.method == "POST") {
        return MakeResponse(202, "", {{"location", path + "session" + std::to_string(++sessions_) + "?_state=s"}});
      }
      std::string digest = query.substr(query.find("digest=") + 7);
      digest.replace(digest.find("%3a"), 3, ":");
      std::ifstream in(r.body_file, std::ios::binary);
      std::stringstream data;
      data << in.rdbuf();
      if (Sha256Of(data.str()).ToString() != digest || data.str().size() != r.body_file_size) return MakeResponse(400);
      blobs[digest] = data.str();
      ++uploads;
      return MakeResponse(201);
    }
    if (size_t at = path.find("/blobs/"); at != std::string::npos) {
      auto it = blobs.find(path.substr(at + 7));
      if (it == blobs.end()) return MakeResponse(404);
      if (r.method == "HEAD") return MakeResponse(200, "", {{"content-length", std::to_string(it->second.size())}});
      ++blob_gets;
      if (r.range) {
        return MakeResponse(206, it->second.substr(r.range->offset, r.range->length ? r.range->length : std::string::npos));
      }
      return MakeResponse(200, it->second);
    }
    if (size_t at = path.find("/manifests/"); at != std::string::npos) {
      std::string reference = path.substr(at + 11);
      if (r.method == "PUT") {
        manifests[reference] = {*r.body, RequestHeader(r, "Content-Type")};
        manifests[Sha256Of(*r.body).ToString()] = manifests[reference];
        return MakeResponse(201);
      }
      auto it = manifests.find(reference);
      if (it == manifests.end()) return MakeResponse(404);
      return MakeResponse(200, it->second.first, {{"content-type", it->second.second}});
    }
    return MakeResponse(400);
  }

  std::mutex mu_;
  int sessions_ = 0;
  int uploads = 0;
  int blob_gets = 0;
  std::map<std::string, std::string> blobs;                                  // digest -> bytes
  std::map<std::string, std::pair<std::string, std::string>> manifests;      // reference -> bytes, type
};

struct Fixture {
  Fixture() {
    transport = std::make_shared<FakeTransport>([this](const HttpRequest& r) { return registry.Handle(r); });
    options.transport = transport;
    options.search_auth_files = false;
    options.insecure_registries = {"reg.test"};
    options.sleep = [](std::chrono::milliseconds) {};
  }
  FakeRegistry registry;
  std::shared_ptr<FakeTransport> transport;
  RegistryOptions options;
};

Descriptor MakeDescriptor(std::string_view media_type, std::string_view data) {
  Descriptor d;
  d.media_type = media_type;
  d.digest = Sha256Of(data);
  d.size = data.size();
  return d;
}

}  // namespace

TEST_CASE("MergeRanges: merges ranges closer than the gap, keeps far ones apart, respects the request cap") {
  std::vector<BlobRange> ranges = {{100, 10}, {0, 10}, {15, 5}, {5, 3}, {1000, 1}, {200, 0}};
  auto merged = MergeRanges(ranges, /*max_gap=*/8, /*max_request=*/1 << 20);
  REQUIRE(merged.size() == 3);
  CHECK(merged[0].offset == 0);
  CHECK(merged[0].length == 20);
  CHECK(merged[0].members == std::vector<size_t>{1, 3, 2});
  CHECK(merged[1].offset == 100);
  CHECK(merged[1].length == 10);
  CHECK(merged[2].offset == 1000);

  auto capped = MergeRanges(ranges, /*max_gap=*/1000, /*max_request=*/50);
  REQUIRE(capped.size() == 3);  // [0,20) and [100,110) would make a 110-byte request
  CHECK(capped[0].length == 20);
}

TEST_CASE("RegistryBlobReader: ReadRanges fetches nearby ranges in one request") {
  Fixture f;
  std::string blob = "The quick brown fox jumps over the lazy dog";
  f.registry.blobs[Sha256Of(blob).ToString()] = blob;
  auto client = NewRegistryClient("reg.test", f.options);
  REQUIRE(client);
  RegistryBlobReader reader(*client, "app");
  std::vector<BlobRange> ranges = {{16, 3}, {4, 5}, {40, 3}};
  auto parts = reader.ReadRanges(Sha256Of(blob), ranges, /*max_gap=*/10);
  REQUIRE(parts);
  CHECK((*parts)[0] == "fox");
  CHECK((*parts)[1] == "quick");
  CHECK((*parts)[2] == "dog");
  CHECK(f.registry.blob_gets == 2);  // [4,19) and [40,43)

  auto size = reader.Size(Sha256Of(blob));  // unknown from a manifest: HEAD
  REQUIRE(size);
  CHECK(*size == blob.size());
  CHECK(reader.Size(Sha256Of("absent")).error().code() == ErrorCode::kNotFound);
  CHECK(reader.Describe() == "docker://reg.test/app");
}

TEST_CASE("RegistryBlobReader: ReadRanges sends far-apart ranges as parallel requests, results in input order") {
  Fixture f;
  std::string blob = lazyfs::testing::PseudoRandomBytes(1 << 20, 7);
  f.registry.blobs[Sha256Of(blob).ToString()] = blob;
  auto client = NewRegistryClient("reg.test", f.options);
  REQUIRE(client);
  RegistryBlobReader reader(*client, "app");
  std::vector<BlobRange> ranges;
  for (uint64_t i = 0; i < 10; ++i) ranges.push_back({(9 - i) * 100'000 + i, 100 + i});
  auto parts = reader.ReadRanges(Sha256Of(blob), ranges, /*max_gap=*/10);
  REQUIRE(parts);
  REQUIRE(parts->size() == ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) CHECK((*parts)[i] == blob.substr(ranges[i].offset, ranges[i].length));
  CHECK(f.registry.blob_gets == 10);
  CHECK(reader.ReadRanges(Sha256Of("absent"), ranges, 10).error().code() == ErrorCode::kNotFound);
}

// A one-layer image for `arch` whose config and layer blobs the fake registry serves (the manifest is
// left to the test to publish).
struct OneLayerImage {
  std::string config;
  std::string layer = "layer-bytes";
  Manifest manifest;
  std::string manifest_json;
};

OneLayerImage PublishBlobs(Fixture& f, const std::string& arch) {
  OneLayerImage image;
  image.config = R"({"architecture":")" + arch + R"(","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  f.registry.blobs[Sha256Of(image.config).ToString()] = image.config;
  f.registry.blobs[Sha256Of(image.layer).ToString()] = image.layer;
  image.manifest.media_type = kMediaTypeOciManifest;
  image.manifest.config = MakeDescriptor(kMediaTypeOciConfig, image.config);
  image.manifest.layers.push_back(MakeDescriptor(kMediaTypeOciLayerGzip, image.layer));
  image.manifest_json = ManifestToJson(image.manifest);
  return image;
}

TEST_CASE("OpenRegistrySource: resolves an index to the platform's manifest and its verified config") {
  Fixture f;
  auto [config, layer, manifest, manifest_json] = PublishBlobs(f, "arm64");
  Descriptor manifest_desc = MakeDescriptor(kMediaTypeOciManifest, manifest_json);
  manifest_desc.platform = Platform{"linux", "arm64", "v8"};
  Descriptor other = MakeDescriptor(kMediaTypeOciManifest, "{}");
  other.platform = Platform{"linux", "amd64", ""};
  std::string index_json = std::string(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)") +
                           DescriptorToJson(other) + "," + DescriptorToJson(manifest_desc) + "]}";
  f.registry.manifests["v1"] = {index_json, std::string(kMediaTypeOciIndex)};
  f.registry.manifests[manifest_desc.digest.ToString()] = {manifest_json, std::string(kMediaTypeOciManifest)};

  auto ref = ImageRef::Parse("docker://reg.test/app:v1");
  REQUIRE(ref);
  auto source = OpenRegistrySource(*ref, SourceOptions{"linux/arm64", {}, nullptr}, f.options);
  REQUIRE(source);
  auto resolved = (*source)->Resolve();
  REQUIRE(resolved);
  CHECK(resolved->manifest_digest == manifest_desc.digest);
  CHECK(resolved->config_json == config);
  REQUIRE(resolved->manifest.layers.size() == 1);

  BlobReader& blobs = (*source)->blobs();
  size_t before = f.transport->count();
  auto size = blobs.Size(Sha256Of(layer));
  REQUIRE(size);
  CHECK(*size == layer.size());
  CHECK(f.transport->count() == before);  // known from the manifest: no HEAD
  auto range = blobs.ReadRange(Sha256Of(layer), 6, 5);
  REQUIRE(range);
  CHECK(*range == "bytes");
  std::string streamed;
  REQUIRE(blobs.Stream(Sha256Of(layer), [&](std::string_view piece) {
    streamed.append(piece);
    return Ok();
  }, BlobReader::StreamBound::kUnbounded));
  CHECK(streamed == layer);

  SUBCASE("a registry serving other bytes for the pinned platform manifest is kCorrupt") {
    f.registry.manifests[manifest_desc.digest.ToString()].first += " ";
    auto again = (*source)->Resolve();
    REQUIRE_FALSE(again);
    CHECK(again.error().code() == ErrorCode::kCorrupt);
  }
}

// A DocumentCache in memory.
class MapDocuments final : public DocumentCache {
 public:
  std::optional<std::string> Get(const Sha256Digest& digest) override {
    auto it = values.find(digest.ToString());
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
  void Put(const Sha256Digest& digest, std::string_view value) override { values[digest.ToString()] = value; }
  std::map<std::string, std::string> values;
};

TEST_CASE("OpenRegistrySource: a document cache saves the manifest and config requests of a pinned reference") {
  Fixture f;
  auto [config, layer, manifest, manifest_json] = PublishBlobs(f, "amd64");
  Sha256Digest manifest_digest = Sha256Of(manifest_json);
  f.registry.manifests["v1"] = {manifest_json, std::string(kMediaTypeOciManifest)};
  f.registry.manifests[manifest_digest.ToString()] = {manifest_json, std::string(kMediaTypeOciManifest)};
  auto documents = std::make_shared<MapDocuments>();
  auto resolve = [&](const std::string& text) {
    auto ref = ImageRef::Parse(text);
    REQUIRE(ref);
    auto source = OpenRegistrySource(*ref, SourceOptions{"linux/amd64", {}, documents}, f.options);
    REQUIRE(source);
    return (*source)->Resolve();
  };

  // By tag: the registry is asked, and both documents are kept.
  auto by_tag = resolve("docker://reg.test/app:v1");
  REQUIRE(by_tag);
  CHECK(by_tag->manifest_digest == manifest_digest);
  CHECK(documents->values.size() == 2);
  size_t requests = f.transport->count();
  CHECK(requests == 2);

  // By digest: nothing goes to the registry, and the result is the same.
  std::string pinned = "docker://reg.test/app@" + manifest_digest.ToString();
  auto cached = resolve(pinned);
  REQUIRE(cached);
  CHECK(f.transport->count() == requests);
  CHECK(cached->manifest_digest == manifest_digest);
  CHECK(cached->config_json == config);
  REQUIRE(cached->manifest.layers.size() == 1);

  SUBCASE("a tag is always asked for: it may have moved") {
    REQUIRE(resolve("docker://reg.test/app:v1"));
    CHECK(f.transport->count() == requests + 1);  // the manifest; the config comes from the cache
  }
  SUBCASE("cached bytes that do not hash to their digest are ignored and replaced") {
    documents->values[manifest_digest.ToString()] += " ";
    documents->values[manifest.config.digest.ToString()] = "\n{}";
    auto again = resolve(pinned);
    REQUIRE(again);
    CHECK(again->config_json == config);
    CHECK(f.transport->count() == requests + 2);
    CHECK(documents->values[manifest.config.digest.ToString()] == "\n" + config);
  }
}

TEST_CASE("PushImage: uploads only missing blobs and PUTs the manifest bytes unchanged") {
  Fixture f;
  char pattern[] = "/tmp/lazyfs-push-test-XXXXXX";
  std::string dir = mkdtemp(pattern);
  auto layout = OciLayout::Create(dir + "/layout");
  REQUIRE(layout);
  std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  std::string present_layer = "already there";
  std::string new_layer = "brand new layer";
  REQUIRE(layout->AddBlob(config));
  REQUIRE(layout->AddBlob(present_layer));
  REQUIRE(layout->AddBlob(new_layer));
  Manifest manifest;
  manifest.config = MakeDescriptor(kMediaTypeOciConfig, config);
  manifest.layers = {MakeDescriptor(kMediaTypeOciLayerGzip, present_layer), MakeDescriptor(kMediaTypeOciLayerGzip, new_layer)};
  std::string manifest_json = ManifestToJson(manifest);
  auto manifest_digest = layout->AddBlob(manifest_json);
  REQUIRE(manifest_digest);
  REQUIRE(layout->Tag(MakeDescriptor(kMediaTypeOciManifest, manifest_json), "v1"));
  f.registry.blobs[Sha256Of(present_layer).ToString()] = present_layer;

  auto dst = ImageRef::Parse("docker://reg.test/team/app:release");
  REQUIRE(dst);
  std::vector<std::string> lines;
  Status pushed = PushImage(*layout, "v1", *dst, f.options, [&](const std::string& line) { lines.push_back(line); });
  // Pushing again finds every blob present and uploads nothing.
  int uploads_after_first = f.registry.uploads;
  Status again = PushImage(*layout, "v1", *dst, f.options, nullptr);
  std::filesystem::remove_all(dir);
  REQUIRE(pushed);
  REQUIRE(again);
  CHECK(f.registry.uploads == uploads_after_first);
  CHECK(f.registry.uploads == 2);  // config and the new layer
  CHECK(f.registry.blobs.at(Sha256Of(new_layer).ToString()) == new_layer);
  REQUIRE(f.registry.manifests.count("release") == 1);
  CHECK(f.registry.manifests["release"].first == manifest_json);
  CHECK(f.registry.manifests["release"].second == kMediaTypeOciManifest);
  bool skipped_line = false;
  for (const auto& line : lines) skipped_line |= line.find("skipped") != std::string::npos;
  CHECK(skipped_line);
}

TEST_CASE("PushImage: a digest destination is refused") {
  Fixture f;
  auto dst = ImageRef::Parse("docker://reg.test/app@sha256:" + std::string(64, 'a'));
  REQUIRE(dst);
  auto layout = OciLayout::Create("/tmp/lazyfs-push-unused-" + std::to_string(::getpid()));
  REQUIRE(layout);
  CHECK(PushImage(*layout, "", *dst, f.options, nullptr).error().code() == ErrorCode::kInvalidArgument);
  std::filesystem::remove_all(layout->dir());
}

TEST_CASE("OpenRegistrySource: RegistryOptions::mirror_tags reaches the client") {
  Fixture f;
  auto [config, layer, manifest, manifest_json] = PublishBlobs(f, "amd64");
  f.registry.manifests["v1"] = {manifest_json, std::string(kMediaTypeOciManifest)};
  f.options.mirrors = {"http://mirror.test"};
  bool off = false;
  SUBCASE("yes") {}
  SUBCASE("no") { off = true; }
  f.options.mirror_tags = !off;
  auto ref = ImageRef::Parse("docker://reg.test/app:v1");
  REQUIRE(ref);
  auto source = OpenRegistrySource(*ref, SourceOptions{"linux/amd64", {}, nullptr}, f.options);
  REQUIRE(source);
  REQUIRE((*source)->Resolve());
  // The fake answers every host alike: what counts is where the tag was asked.
  std::vector<HttpRequest> requests = f.transport->requests();
  REQUIRE_FALSE(requests.empty());
  CHECK(requests[0].url.ends_with("/manifests/v1"));
  CHECK(requests[0].url.starts_with(off ? "http://reg.test/" : "http://mirror.test/"));
  bool config_from_mirror = false;
  for (const HttpRequest& r : requests) config_from_mirror |= r.url.starts_with("http://mirror.test/v2/app/blobs/");
  CHECK(config_from_mirror);  // a digest goes through the mirror either way
}

TEST_CASE("NewRegistryClient: --insecure-registry names also let a token realm be plain http") {
  // An https registry whose token server is on a host the user listed as insecure.
  auto transport = std::make_shared<FakeTransport>([](const HttpRequest& r) -> Result<HttpResponse> {
    if (r.url.starts_with("http://auth.test:9000/")) return MakeResponse(200, R"({"token":"t"})");
    if (RequestHeader(r, "Authorization") != "Bearer t") {
      return MakeResponse(401, "", {{"www-authenticate", R"(Bearer realm="http://auth.test:9000/token")"}});
    }
    return MakeResponse(200, "", {{"content-length", "5"}});
  });
  RegistryOptions options;
  options.transport = transport;
  options.search_auth_files = false;
  options.credentials = Credentials{"u", "p"};
  options.sleep = [](std::chrono::milliseconds) {};
  SUBCASE("listed") {
    options.insecure_registries = {"auth.test:9000"};
    auto client = NewRegistryClient("reg.test", options);
    REQUIRE(client);
    auto size = (*client)->HeadBlob("app", Sha256Of("x"));
    REQUIRE(size);
    CHECK(*size == 5u);
  }
  SUBCASE("not listed") {
    auto client = NewRegistryClient("reg.test", options);
    REQUIRE(client);
    auto size = (*client)->HeadBlob("app", Sha256Of("x"));
    REQUIRE_FALSE(size);
    CHECK(size.error().code() == ErrorCode::kPermission);
    CHECK(transport->count() == 1);
  }
}

TEST_CASE("CurlOptionsFor: the connect timeout is clamped to the read bound") {
  RegistryOptions options;
  options.connect_timeout = std::chrono::seconds(10);
  options.read_timeout = std::chrono::seconds(3);
  CHECK(CurlOptionsFor(options).connect_timeout == std::chrono::seconds(3));
  options.read_timeout = std::chrono::seconds(30);
  CHECK(CurlOptionsFor(options).connect_timeout == std::chrono::seconds(10));
  options.read_timeout = std::chrono::milliseconds(0);  // no bound
  CHECK(CurlOptionsFor(options).connect_timeout == std::chrono::seconds(10));
}

}  // namespace lazyfs::fetch
