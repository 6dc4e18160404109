#include "fetch/image.h"

#include <doctest/doctest.h>

#include <string>

namespace lazyfs::fetch {
namespace {

const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');
const std::string kDigestC = "sha256:" + std::string(64, 'c');

std::string OciManifest() {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + kDigestA + R"(","size":7023},
    "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" + kDigestB + R"(","size":32654,
      "annotations":{"containerd.io/snapshot/stargz/toc.digest":")" + kDigestC + R"(",
                     "io.containers.estargz.uncompressed-size":"80000"}}],
    "annotations":{"org.opencontainers.image.created":"2024-01-01T00:00:00Z"},
    "unknownField":{"ignored":true}})";
}

TEST_CASE("ParseManifest: an OCI manifest yields config, layers and annotations") {
  auto m = ParseManifest(OciManifest());
  REQUIRE(m);
  CHECK(m->media_type == kMediaTypeOciManifest);
  CHECK(m->config.digest.ToString() == kDigestA);
  CHECK(m->config.size == 7023);
  REQUIRE(m->layers.size() == 1);
  CHECK(m->layers[0].media_type == kMediaTypeOciLayerGzip);
  CHECK(m->layers[0].size == 32654);
  CHECK(m->layers[0].Annotation(kAnnotationTocDigest) == kDigestC);
  CHECK(m->layers[0].Annotation(kAnnotationUncompressedSize) == "80000");
  CHECK_FALSE(m->layers[0].Annotation("absent"));
  CHECK(m->annotations.at("org.opencontainers.image.created") == "2024-01-01T00:00:00Z");
}

TEST_CASE("ParseManifest: Docker schema2 and manifests without mediaType (eStargz tools) parse") {
  SUBCASE("docker schema2") {
    auto m = ParseManifest(R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
      "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":")" + kDigestA + R"(","size":1},
      "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":")" + kDigestB + R"(","size":2}]})");
    REQUIRE(m);
    CHECK(m->media_type == kMediaTypeDockerManifest);
    CHECK(m->layers.at(0).media_type == kMediaTypeDockerLayerGzip);
    // Re-emitted as OCI: the Docker types become their OCI equivalents.
    auto again = ParseManifest(ManifestToJson(*m));
    REQUIRE(again);
    CHECK(again->media_type == kMediaTypeOciManifest);
    CHECK(again->config.media_type == kMediaTypeOciConfig);
    CHECK(again->layers.at(0).media_type == kMediaTypeOciLayerGzip);
  }
  SUBCASE("no mediaType") {
    auto m = ParseManifest(R"({"schemaVersion":2,
      "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + kDigestA + R"(","size":1},
      "layers":[]})");
    REQUIRE(m);
    CHECK(m->media_type.empty());
    CHECK(m->layers.empty());
  }
}

TEST_CASE("ParseManifest: hostile documents are kCorrupt with a message, never an exception") {
  struct Case {
    const char* name;
    std::string json;
    ErrorCode code;
    const char* mentions;
  };
  const std::string layers = R"("layers":[])";
  const std::string config = R"("config":{"mediaType":"x","digest":")" + kDigestA + R"(","size":1})";
  Case cases[] = {
      {"not JSON", "{", ErrorCode::kCorrupt, "not valid JSON"},
      {"not an object", "[1,2]", ErrorCode::kCorrupt, "object"},
      {"missing config", "{" + layers + "}", ErrorCode::kCorrupt, "config"},
      {"missing layers", "{" + config + "}", ErrorCode::kCorrupt, "layers"},
      {"layers not an array", "{" + config + R"(,"layers":{}})", ErrorCode::kCorrupt, "array"},
      {"bad digest", R"({"config":{"mediaType":"x","digest":"sha256:abc","size":1},)" + layers + "}", ErrorCode::kCorrupt,
       "sha256:abc"},
      {"uppercase digest", R"({"config":{"mediaType":"x","digest":"sha256:)" + std::string(64, 'A') + R"(","size":1},)" +
                               layers + "}",
       ErrorCode::kCorrupt, "digest"},
      {"digest not a string", R"({"config":{"mediaType":"x","digest":5,"size":1},)" + layers + "}", ErrorCode::kCorrupt,
       "digest"},
      {"sha512 digest", R"({"config":{"mediaType":"x","digest":"sha512:)" + std::string(128, 'a') + R"(","size":1},)" +
                            layers + "}",
       ErrorCode::kUnsupported, "sha256"},
      {"negative size", R"({"config":{"mediaType":"x","digest":")" + kDigestA + R"(","size":-5},)" + layers + "}",
       ErrorCode::kCorrupt, "negative"},
      {"fractional size", R"({"config":{"mediaType":"x","digest":")" + kDigestA + R"(","size":1.5},)" + layers + "}",
       ErrorCode::kCorrupt, "size"},
      {"string size", R"({"config":{"mediaType":"x","digest":")" + kDigestA + R"(","size":"1"},)" + layers + "}",
       ErrorCode::kCorrupt, "size"},
      {"missing size", R"({"config":{"mediaType":"x","digest":")" + kDigestA + R"("},)" + layers + "}",
       ErrorCode::kCorrupt, "size"},
      {"config not an object", R"({"config":"x",)" + layers + "}", ErrorCode::kCorrupt, "object"},
      {"layer not an object", "{" + config + R"(,"layers":[7]})", ErrorCode::kCorrupt, "layer 0"},
      {"mediaType a number", "{" + config + R"(,"layers":[],"mediaType":3})", ErrorCode::kCorrupt, "mediaType"},
      {"annotation not a string", "{" + config + R"(,"layers":[],"annotations":{"a":1}})", ErrorCode::kCorrupt, "\"a\""},
      {"schema1", "{" + config + R"(,"layers":[],"schemaVersion":1})", ErrorCode::kUnsupported, "schemaVersion"},
      {"an index", R"({"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})", ErrorCode::kCorrupt,
       "index"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    auto m = ParseManifest(c.json);
    REQUIRE_FALSE(m);
    CHECK(m.error().code() == c.code);
    CHECK(m.error().message().find(c.mentions) != std::string::npos);
  }
}

std::string PlatformEntry(const std::string& digest, const std::string& os, const std::string& arch,
                          const std::string& variant = "") {
  std::string platform = R"({"os":")" + os + R"(","architecture":")" + arch + "\"";
  if (!variant.empty()) platform += R"(,"variant":")" + variant + "\"";
  platform += "}";
  return R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + digest + R"(","size":10,"platform":)" +
         platform + "}";
}

TEST_CASE("ParseImageIndex and SelectPlatform choose the manifest for a platform") {
  std::string arm = "sha256:" + std::string(64, '1');
  std::string arm7 = "sha256:" + std::string(64, '2');
  std::string amd = "sha256:" + std::string(64, '3');
  std::string attest = "sha256:" + std::string(64, '4');
  auto index = ParseImageIndex(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)" +
                               PlatformEntry(arm, "linux", "arm64", "v8") + "," + PlatformEntry(arm7, "linux", "arm", "v7") +
                               "," + PlatformEntry(amd, "linux", "amd64") + "," +
                               PlatformEntry(attest, "unknown", "unknown") + "]}");
  REQUIRE(index);
  REQUIRE(index->manifests.size() == 4);
  CHECK(index->manifests[1].platform->variant == "v7");

  auto pick = [&](std::string_view platform) -> std::string {
    auto d = SelectPlatform(*index, platform);
    return d ? d->digest.ToString() : "error: " + d.error().message();
  };
  CHECK(pick("linux/amd64") == amd);
  CHECK(pick("linux/x86_64") == amd);
  CHECK(pick("linux/arm64") == arm);
  CHECK(pick("linux/arm64/v8") == arm);
  CHECK(pick("linux/aarch64") == arm);
  CHECK(pick("linux/arm") == arm7);
  CHECK(pick("linux/arm/v7") == arm7);

  auto missing = SelectPlatform(*index, "linux/s390x");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == ErrorCode::kNotFound);
  CHECK(missing.error().message().find("linux/amd64") != std::string::npos);  // lists what is there
  CHECK(SelectPlatform(*index, "linux/arm/v6").error().code() == ErrorCode::kNotFound);

  for (std::string_view bad : {"linux", "", "linux/", "/amd64", "a/b/c/d", "linux/arm/"}) {
    CAPTURE(bad);
    auto d = SelectPlatform(*index, bad);
    REQUIRE_FALSE(d);
    CHECK(d.error().code() == ErrorCode::kInvalidArgument);
  }
}

TEST_CASE("SelectPlatform: a single manifest without platform is the image") {
  auto index = ParseImageIndex(R"({"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                               kDigestA + R"(","size":3}]})");
  REQUIRE(index);
  auto d = SelectPlatform(*index, "linux/amd64");
  REQUIRE(d);
  CHECK(d->digest.ToString() == kDigestA);
}

TEST_CASE("ParseImageIndex: Docker manifest lists parse; hostile indexes are kCorrupt") {
  auto list = ParseImageIndex(R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests":[)" + PlatformEntry(kDigestA, "linux", "amd64") + "]}");
  REQUIRE(list);
  CHECK(list->manifests.at(0).platform->os == "linux");

  for (std::string bad : {std::string("{}"), std::string(R"({"manifests":{}})"), std::string(R"({"manifests":[1]})"),
                          std::string(R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[]})"),
                          R"({"manifests":[{"digest":")" + kDigestA + R"(","size":1,"platform":{"os":"linux"}}]})",
                          std::string("null")}) {
    CAPTURE(bad);
    auto index = ParseImageIndex(bad);
    REQUIRE_FALSE(index);
    CHECK(index.error().code() == ErrorCode::kCorrupt);
  }
}

TEST_CASE("DescriptorToJson and ParseDescriptor round-trip") {
  Descriptor d;
  d.media_type = std::string(kMediaTypeOciManifest);
  d.digest = *Sha256Digest::Parse(kDigestB);
  d.size = uint64_t{1} << 40;
  d.annotations["org.opencontainers.image.ref.name"] = "v1";
  d.platform = Platform{"linux", "arm64", "v8"};
  auto back = ParseDescriptor(DescriptorToJson(d));
  REQUIRE(back);
  CHECK(back->media_type == d.media_type);
  CHECK(back->digest == d.digest);
  CHECK(back->size == d.size);
  CHECK(back->annotations == d.annotations);
  REQUIRE(back->platform);
  CHECK(back->platform->variant == "v8");
}

TEST_CASE("ManifestToJson emits a valid OCI manifest that parses back the same") {
  auto m = ParseManifest(OciManifest());
  REQUIRE(m);
  std::string json = ManifestToJson(*m);
  CHECK(json.find(R"("schemaVersion":2)") != std::string::npos);
  CHECK(json.find("unknownField") == std::string::npos);
  auto back = ParseManifest(json);
  REQUIRE(back);
  CHECK(back->media_type == kMediaTypeOciManifest);
  CHECK(back->config.digest == m->config.digest);
  CHECK(back->layers.at(0).annotations == m->layers.at(0).annotations);
  CHECK(back->annotations == m->annotations);
}

TEST_CASE("LayerCompressionOf maps OCI and Docker layer types; others are kUnsupported") {
  CHECK(LayerCompressionOf(kMediaTypeOciLayer) == LayerCompression::kNone);
  CHECK(LayerCompressionOf(kMediaTypeOciLayerGzip) == LayerCompression::kGzip);
  CHECK(LayerCompressionOf(kMediaTypeOciLayerZstd) == LayerCompression::kZstd);
  CHECK(LayerCompressionOf(kMediaTypeDockerLayerGzip) == LayerCompression::kGzip);
  auto other = LayerCompressionOf("application/vnd.cncf.helm.chart.content.v1.tar+gzip");
  REQUIRE_FALSE(other);
  CHECK(other.error().code() == ErrorCode::kUnsupported);
  CHECK(IsIndexMediaType(kMediaTypeOciIndex));
  CHECK(IsIndexMediaType(kMediaTypeDockerManifestList));
  CHECK_FALSE(IsIndexMediaType(kMediaTypeOciManifest));
}

TEST_CASE("SniffMediaType infers indexes and manifests that omit mediaType") {
  CHECK(SniffMediaType(R"({"manifests":[]})") == std::string(kMediaTypeOciIndex));
  CHECK(SniffMediaType(R"({"layers":[],"config":{}})") == std::string(kMediaTypeOciManifest));
  CHECK(SniffMediaType(R"({"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json"})") ==
        std::string(kMediaTypeDockerManifestList));
  CHECK(SniffMediaType("[]").error().code() == ErrorCode::kCorrupt);
}

}  // namespace
}  // namespace lazyfs::fetch
