#include "fetch/oci_layout.h"

#include <doctest/doctest.h>
#include <fcntl.h>

#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "fetch/image_source.h"
#include "tests/test_support.h"

namespace lazyfs::fetch {
namespace {

using lazyfs::testing::TempDir;

std::string Bytes(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return s;
}

// Writes a one-layer image into `layout` and tags it; returns the manifest descriptor.
Descriptor WriteImage(const OciLayout& layout, const std::string& layer, const std::string& tag) {
  std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  Manifest m;
  m.media_type = std::string(kMediaTypeOciManifest);
  m.config.media_type = std::string(kMediaTypeOciConfig);
  m.config.digest = *layout.AddBlob(config);
  m.config.size = config.size();
  Descriptor l;
  l.media_type = std::string(kMediaTypeOciLayer);
  l.digest = *layout.AddBlob(layer);
  l.size = layer.size();
  m.layers.push_back(l);
  std::string json = ManifestToJson(m);
  Descriptor d;
  d.media_type = std::string(kMediaTypeOciManifest);
  d.digest = *layout.AddBlob(json);
  d.size = json.size();
  REQUIRE(layout.Tag(d, tag));
  return d;
}

TEST_CASE("OciLayout: Create, AddBlob, Tag, Resolve and read the blobs back") {
  TempDir dir;
  auto layout = OciLayout::Create(dir.path + "/layout");
  REQUIRE(layout);
  std::string layer = Bytes(3 * (1 << 20) + 12345);  // several Stream pieces
  Descriptor v1 = WriteImage(*layout, layer, "v1");

  auto reopened = OciLayout::Open(dir.path + "/layout");
  REQUIRE(reopened);
  auto resolved = reopened->Resolve("v1");
  REQUIRE(resolved);
  CHECK(resolved->digest == v1.digest);
  CHECK(resolved->Annotation(kAnnotationRefName) == "v1");
  // The only manifest is what an untagged reference means.
  CHECK(reopened->Resolve("")->digest == v1.digest);

  auto missing_tag = reopened->Resolve("v2");
  REQUIRE_FALSE(missing_tag);
  CHECK(missing_tag.error().code() == ErrorCode::kNotFound);
  CHECK(missing_tag.error().message().find("v1") != std::string::npos);  // lists the tags there are

  auto reader = reopened->NewBlobReader();
  Sha256Digest layer_digest = Sha256Of(layer);
  CHECK(reader->Describe() == "oci:" + dir.path + "/layout");
  CHECK(*reader->Size(layer_digest) == layer.size());
  CHECK(*reader->ReadRange(layer_digest, 0, 10) == layer.substr(0, 10));
  CHECK(*reader->ReadRange(layer_digest, 1 << 20, 4096) == layer.substr(1 << 20, 4096));
  CHECK(reader->ReadRange(layer_digest, layer.size(), 0)->empty());
  auto past = reader->ReadRange(layer_digest, layer.size() - 5, 10);
  REQUIRE_FALSE(past);
  CHECK(past.error().code() == ErrorCode::kCorrupt);
  CHECK(reader->ReadRange(layer_digest, ~uint64_t{0}, 2).error().code() == ErrorCode::kCorrupt);

  std::string streamed;
  int pieces = 0;
  REQUIRE(reader->Stream(layer_digest, [&](std::string_view piece) {
    streamed += piece;
    ++pieces;
    return Ok();
  }, BlobReader::StreamBound::kUnbounded));
  CHECK(streamed == layer);
  CHECK(pieces == 4);

  // The sink can stop the stream; its error comes back.
  auto stop = [](std::string_view) -> Status { return Internal("stop here"); };
  auto stopped = reader->Stream(layer_digest, stop, BlobReader::StreamBound::kUnbounded);
  REQUIRE_FALSE(stopped);
  CHECK(stopped.error().message() == "stop here");

  auto small = reader->ReadVerified(v1.digest, kMaxManifestSize);
  REQUIRE(small);
  CHECK(ParseManifest(*small));
  auto too_large = reader->ReadVerified(layer_digest, 1024);
  REQUIRE_FALSE(too_large);
  CHECK(too_large.error().code() == ErrorCode::kCorrupt);
  CHECK(too_large.error().message().find("too large") != std::string::npos);
}

TEST_CASE("OciLayout: re-tagging replaces the old entry and keeps other tags") {
  TempDir dir;
  auto layout = OciLayout::Create(dir.path);
  REQUIRE(layout);
  Descriptor a = WriteImage(*layout, "layer a", "a");
  Descriptor b1 = WriteImage(*layout, "layer b1", "b");
  Descriptor b2 = WriteImage(*layout, "layer b2", "b");
  CHECK(layout->Resolve("a")->digest == a.digest);
  CHECK(layout->Resolve("b")->digest == b2.digest);
  CHECK(b1.digest != b2.digest);
  auto index = ParseImageIndex(*ReadWholeFile(dir.path + "/index.json"));
  REQUIRE(index);
  CHECK(index->manifests.size() == 2);
  // Two images, none tagged latest: an untagged reference is ambiguous.
  auto ambiguous = layout->Resolve("");
  REQUIRE_FALSE(ambiguous);
  CHECK(ambiguous.error().code() == ErrorCode::kNotFound);
  Descriptor latest = WriteImage(*layout, "layer latest", "latest");
  CHECK(layout->Resolve("")->digest == latest.digest);
  CHECK(layout->Tag(a, "").error().code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("OciLayout: a tampered blob fails Stream and ReadVerified with kCorrupt") {
  TempDir dir;
  auto layout = OciLayout::Create(dir.path);
  REQUIRE(layout);
  std::string data = Bytes(5000);
  Sha256Digest digest = *layout->AddBlob(data);
  std::string tampered = data;
  tampered[4000] ^= 1;
  REQUIRE(WriteFileAtomic(layout->BlobPath(digest), tampered));

  auto reader = layout->NewBlobReader();
  auto streamed = reader->Stream(digest, [](std::string_view) { return Ok(); }, BlobReader::StreamBound::kUnbounded);
  REQUIRE_FALSE(streamed);
  CHECK(streamed.error().code() == ErrorCode::kCorrupt);
  CHECK(streamed.error().message().find(digest.ToString()) != std::string::npos);
  auto verified = reader->ReadVerified(digest, 1 << 20);
  REQUIRE_FALSE(verified);
  CHECK(verified.error().code() == ErrorCode::kCorrupt);
  // A range is not verifiable and reads fine.
  CHECK(*reader->ReadRange(digest, 4000, 1) == tampered.substr(4000, 1));
}

TEST_CASE("OciLayout: a missing blob is kNotFound naming the digest and the layout") {
  TempDir dir;
  auto layout = OciLayout::Create(dir.path);
  REQUIRE(layout);
  auto reader = layout->NewBlobReader();
  Sha256Digest absent = Sha256Of("absent");
  auto ignore = [](std::string_view) { return Ok(); };
  for (auto error : {reader->Size(absent).error(), reader->ReadRange(absent, 0, 1).error(),
                     reader->Stream(absent, ignore, BlobReader::StreamBound::kUnbounded).error()}) {
    CHECK(error.code() == ErrorCode::kNotFound);
    CHECK(error.message().find(absent.ToString()) != std::string::npos);
    CHECK(error.message().find(dir.path) != std::string::npos);
  }
  // Added later, it is found: absence is not cached.
  REQUIRE(layout->AddBlob("absent"));
  CHECK(*reader->Size(absent) == 6);
}

TEST_CASE("OciLayout: Open of a directory that is no layout is kNotFound") {
  TempDir dir;
  auto layout = OciLayout::Open(dir.path);
  REQUIRE_FALSE(layout);
  CHECK(layout.error().code() == ErrorCode::kNotFound);
}

TEST_CASE("OciLayout: AdoptBlobFile moves a written file into the store") {
  TempDir dir;
  auto layout = OciLayout::Create(dir.path);
  REQUIRE(layout);
  std::string tmp = dir.path + "/blobs/sha256/.upload";
  REQUIRE(WriteFileAtomic(tmp, "adopted"));
  REQUIRE(layout->AdoptBlobFile(tmp, Sha256Of("adopted")));
  CHECK(*ReadWholeFile(layout->BlobPath(Sha256Of("adopted"))) == "adopted");
  CHECK(layout->AdoptBlobFile(tmp, Sha256Of("adopted")).error().code() == ErrorCode::kNotFound);
}

TEST_CASE("OciLayoutBlobReader: concurrent readers of many blobs see the right bytes") {
  TempDir dir;
  auto layout = OciLayout::Create(dir.path);
  REQUIRE(layout);
  std::vector<std::string> blobs;
  for (int i = 0; i < 100; ++i) blobs.push_back("blob number " + std::to_string(i) + Bytes(100 + i));
  for (const auto& b : blobs) REQUIRE(layout->AddBlob(b));
  auto reader = layout->NewBlobReader();
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (const auto& b : blobs) {  // more blobs than the fd cache holds
          auto got = reader->ReadRange(Sha256Of(b), 1, b.size() - 1);
          if (!got || *got != b.substr(1)) ++failures[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) CHECK(f == 0);
}

TEST_CASE("OpenImageSource: oci resolves tag -> index -> platform manifest -> config") {
  TempDir dir;
  auto layout = OciLayout::Create(dir.path);
  REQUIRE(layout);
  Descriptor amd = WriteImage(*layout, "amd64 layer", "amd");
  Descriptor arm = WriteImage(*layout, "arm64 layer", "arm");
  amd.platform = Platform{"linux", "amd64", ""};
  arm.platform = Platform{"linux", "arm64", ""};
  // An image index (no mediaType in the tag's descriptor, as some tools write) pointing at both.
  std::string index = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)" +
                      DescriptorToJson(arm) + "," + DescriptorToJson(amd) + "]}";
  Descriptor multi;
  multi.digest = *layout->AddBlob(index);
  multi.size = index.size();
  REQUIRE(layout->Tag(multi, "multi"));

  for (const char* platform : {"linux/amd64", "linux/arm64"}) {
    CAPTURE(platform);
    auto source = OpenImageSource(*ImageRef::Parse("oci:" + dir.path + ":multi"), SourceOptions{platform, {}, nullptr});
    REQUIRE(source);
    auto resolved = (*source)->Resolve();
    REQUIRE(resolved);
    CHECK(resolved->manifest_digest == (std::string(platform) == "linux/amd64" ? amd.digest : arm.digest));
    CHECK(resolved->config_json.find("rootfs") != std::string::npos);
    REQUIRE(resolved->manifest.layers.size() == 1);
    auto layer = (*source)->blobs().ReadRange(resolved->manifest.layers[0].digest, 0, 5);
    REQUIRE(layer);
    CHECK(*layer == (std::string(platform) == "linux/amd64" ? "amd64" : "arm64"));
  }
  auto none = OpenImageSource(*ImageRef::Parse("oci:" + dir.path + ":multi"), SourceOptions{"linux/riscv64", {}, nullptr});
  REQUIRE(none);
  CHECK((*none)->Resolve().error().code() == ErrorCode::kNotFound);

  // docker:// opens a registry source; nothing is fetched until Resolve.
  SourceOptions registry_options;
  registry_options.registry.search_auth_files = false;
  auto docker = OpenImageSource(*ImageRef::Parse("docker://localhost:5000/app"), registry_options);
  REQUIRE(docker);
  CHECK((*docker)->Describe() == "docker://localhost:5000/app:latest");
}

TEST_CASE("OpenImageSource: a manifest whose descriptor size lies is kCorrupt") {
  TempDir dir;
  auto layout = OciLayout::Create(dir.path);
  REQUIRE(layout);
  Descriptor d = WriteImage(*layout, "layer", "v1");
  d.size += 1;
  REQUIRE(layout->Tag(d, "v1"));
  auto source = OpenImageSource(*ImageRef::Parse("oci:" + dir.path + ":v1"), SourceOptions{});
  REQUIRE(source);
  auto resolved = (*source)->Resolve();
  REQUIRE_FALSE(resolved);
  CHECK(resolved.error().code() == ErrorCode::kCorrupt);
}

}  // namespace
}  // namespace lazyfs::fetch
