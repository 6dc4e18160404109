#include "fetch/docker_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/fd.h"
#include "tests/test_support.h"

namespace lazyfs::fetch {
namespace {

using lazyfs::testing::TempDir;

struct TarEntry {
  std::string name;
  std::string data;
  std::string symlink;  // non-empty: a symlink to this target instead of a file
};

// Writes `entries` as a pax tar to `path` (gzip-compressed when asked), the way `docker save` would.
void WriteTar(const std::string& path, const std::vector<TarEntry>& entries, bool gzip = false) {
  archive* a = archive_write_new();
  REQUIRE(a != nullptr);
  REQUIRE(archive_write_set_format_pax_restricted(a) == ARCHIVE_OK);
  if (gzip) REQUIRE(archive_write_add_filter_gzip(a) == ARCHIVE_OK);
  REQUIRE(archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK);
  for (const TarEntry& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_mtime(entry, 1700000000, 0);
    if (e.symlink.empty()) {
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_perm(entry, 0644);
      archive_entry_set_size(entry, static_cast<la_int64_t>(e.data.size()));
    } else {
      archive_entry_set_filetype(entry, AE_IFLNK);
      archive_entry_set_perm(entry, 0777);
      archive_entry_set_symlink(entry, e.symlink.c_str());
    }
    REQUIRE(archive_write_header(a, entry) == ARCHIVE_OK);
    if (!e.data.empty()) {
      REQUIRE(archive_write_data(a, e.data.data(), e.data.size()) == static_cast<la_ssize_t>(e.data.size()));
    }
    archive_entry_free(entry);
  }
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
}

// A small layer tar, as bytes.
std::string LayerTar(const std::string& dir, const std::string& file_name, const std::string& content) {
  TempDir tmp;
  std::string path = tmp.path + "/layer.tar";
  WriteTar(path, {{dir + "/", "", ""}, {dir + "/" + file_name, content, ""}});
  return *ReadWholeFile(path);
}

const std::string kConfig =
    R"({"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":[]}})";

void CheckServes(ImageSource& source, const Descriptor& d, const std::string& expected) {
  CHECK(d.digest == Sha256Of(expected));
  CHECK(d.size == expected.size());
  BlobReader& blobs = source.blobs();
  CHECK(*blobs.Size(d.digest) == expected.size());
  CHECK(*blobs.ReadRange(d.digest, 0, expected.size()) == expected);
  CHECK(*blobs.ReadRange(d.digest, 100, 50) == expected.substr(100, 50));
  std::string streamed;
  REQUIRE(blobs.Stream(d.digest, [&](std::string_view piece) {
    streamed += piece;
    return Ok();
  }, BlobReader::StreamBound::kUnbounded));
  CHECK(streamed == expected);
}

TEST_CASE("DockerArchive: a classic docker save tarball resolves to an OCI manifest over its files") {
  TempDir dir;
  std::string layer1 = LayerTar("etc", "hostname", "sandbox\n");
  std::string layer2 = LayerTar("app", "big.bin", std::string(3 << 20, 'x'));  // spans several 1 MiB pieces
  std::string config_name = Sha256Of(kConfig).Hex() + ".json";
  // A long directory name forces a pax extended header in front of the entry: offsets must still be right.
  std::string long_dir = std::string(120, 'd');
  std::string manifest = R"([{"Config":")" + config_name + R"(","RepoTags":["app:latest"],"Layers":["aaa/layer.tar",")" +
                         long_dir + R"(/layer.tar","dup/layer.tar"]}])";
  std::string path = dir.path + "/image.tar";
  WriteTar(path, {
                     {"aaa/", "", ""},
                     {"aaa/VERSION", "1.0", ""},
                     {"aaa/layer.tar", layer1, ""},
                     {long_dir + "/layer.tar", layer2, ""},
                     {"dup/layer.tar", "", "../aaa/layer.tar"},  // docker save writes duplicate layers as symlinks
                     {config_name, kConfig, ""},
                     {"manifest.json", manifest, ""},
                     {"repositories", R"({"app":{"latest":"aaa"}})", ""},
                 });

  auto ref = ImageRef::Parse("docker-archive:" + path);
  REQUIRE(ref);
  auto source = OpenImageSource(*ref, SourceOptions{});
  REQUIRE(source);
  CHECK((*source)->Describe() == "docker-archive:" + path);
  auto resolved = (*source)->Resolve();
  REQUIRE(resolved);
  CHECK(resolved->config_json == kConfig);
  const Manifest& m = resolved->manifest;
  CHECK(m.media_type == kMediaTypeOciManifest);
  CHECK(m.config.media_type == kMediaTypeOciConfig);
  CHECK(m.config.digest == Sha256Of(kConfig));
  REQUIRE(m.layers.size() == 3);
  for (const Descriptor& d : m.layers) CHECK(d.media_type == kMediaTypeOciLayer);
  CheckServes(**source, m.layers[0], layer1);
  CheckServes(**source, m.layers[1], layer2);
  CHECK(m.layers[2].digest == m.layers[0].digest);

  // The synthesized manifest is itself a verifiable blob, and the config too.
  auto manifest_json = (*source)->blobs().ReadVerified(resolved->manifest_digest, kMaxManifestSize);
  REQUIRE(manifest_json);
  auto parsed = ParseManifest(*manifest_json);
  REQUIRE(parsed);
  CHECK(parsed->layers.size() == 3);
  CHECK(*(*source)->blobs().ReadVerified(m.config.digest, kMaxConfigSize) == kConfig);
  CHECK((*source)->blobs().Size(Sha256Of("nope")).error().code() == ErrorCode::kNotFound);
}

TEST_CASE("DockerArchive: newer saves name blobs as blobs/sha256/HEX or sha256:HEX; compressed layers are sniffed") {
  TempDir dir;
  std::string layer = LayerTar("bin", "sh", "#!/bin/true\n");
  // A gzip'd layer (containerd image store saves): the magic bytes decide the media type.
  std::string gz_path = dir.path + "/gz.tar.gz";
  WriteTar(gz_path, {{"x", "y", ""}}, /*gzip=*/true);
  std::string gz_layer = *ReadWholeFile(gz_path);
  std::string manifest = R"([{"Config":"blobs/sha256/)" + Sha256Of(kConfig).Hex() + R"(","Layers":["sha256:)" +
                         Sha256Of(layer).Hex() + R"(","./blobs/sha256/)" + Sha256Of(gz_layer).Hex() + R"("]}])";
  std::string path = dir.path + "/image.tar";
  WriteTar(path, {
                     {"blobs/", "", ""},
                     {"blobs/sha256/", "", ""},
                     {"blobs/sha256/" + Sha256Of(kConfig).Hex(), kConfig, ""},
                     {"blobs/sha256/" + Sha256Of(layer).Hex(), layer, ""},
                     {"blobs/sha256/" + Sha256Of(gz_layer).Hex(), gz_layer, ""},
                     {"index.json", "{}", ""},
                     {"oci-layout", R"({"imageLayoutVersion":"1.0.0"})", ""},
                     {"manifest.json", manifest, ""},
                 });
  auto source = OpenImageSource(*ImageRef::Parse("docker-archive:" + path), SourceOptions{});
  REQUIRE(source);
  auto resolved = (*source)->Resolve();
  REQUIRE(resolved);
  REQUIRE(resolved->manifest.layers.size() == 2);
  CHECK(resolved->manifest.layers[0].digest == Sha256Of(layer));
  CHECK(resolved->manifest.layers[0].media_type == kMediaTypeOciLayer);
  CHECK(resolved->manifest.layers[1].digest == Sha256Of(gz_layer));
  CHECK(resolved->manifest.layers[1].media_type == kMediaTypeOciLayerGzip);
  CHECK(*(*source)->blobs().ReadRange(Sha256Of(gz_layer), 0, gz_layer.size()) == gz_layer);
}

TEST_CASE("DockerArchive: unusable archives fail with errors that say why") {
  TempDir dir;
  std::string good_manifest = R"([{"Config":"c.json","Layers":["l.tar"]}])";
  SUBCASE("compressed tarball") {
    std::string path = dir.path + "/image.tar.gz";
    WriteTar(path, {{"manifest.json", good_manifest, ""}, {"c.json", kConfig, ""}, {"l.tar", "x", ""}}, true);
    auto source = OpenDockerArchive(path);
    REQUIRE_FALSE(source);
    CHECK(source.error().code() == ErrorCode::kUnsupported);
    CHECK(source.error().message().find("uncompressed") != std::string::npos);
  }
  SUBCASE("missing file") {
    auto source = OpenDockerArchive(dir.path + "/absent.tar");
    REQUIRE_FALSE(source);
    CHECK(source.error().code() == ErrorCode::kNotFound);
  }
  SUBCASE("not a tar") {
    std::string path = dir.path + "/junk.tar";
    REQUIRE(WriteFileAtomic(path, std::string(4096, 'j')));
    auto source = OpenDockerArchive(path);
    REQUIRE_FALSE(source);
    CHECK(source.error().code() == ErrorCode::kCorrupt);
  }
  SUBCASE("no manifest.json") {
    std::string path = dir.path + "/image.tar";
    WriteTar(path, {{"c.json", kConfig, ""}});
    auto source = OpenDockerArchive(path);
    REQUIRE_FALSE(source);
    CHECK(source.error().code() == ErrorCode::kCorrupt);
    CHECK(source.error().message().find("manifest.json") != std::string::npos);
  }
  SUBCASE("layer named but absent") {
    std::string path = dir.path + "/image.tar";
    WriteTar(path, {{"manifest.json", good_manifest, ""}, {"c.json", kConfig, ""}});
    auto source = OpenDockerArchive(path);
    REQUIRE_FALSE(source);
    CHECK(source.error().code() == ErrorCode::kNotFound);
    CHECK(source.error().message().find("l.tar") != std::string::npos);
  }
  SUBCASE("several images") {
    std::string path = dir.path + "/image.tar";
    WriteTar(path, {{"manifest.json", R"([{"Config":"c.json","Layers":[]},{"Config":"c.json","Layers":[]}])", ""},
                    {"c.json", kConfig, ""}});
    auto source = OpenDockerArchive(path);
    REQUIRE_FALSE(source);
    CHECK(source.error().code() == ErrorCode::kUnsupported);
  }
  SUBCASE("hostile manifest.json") {
    for (std::string bad : {"{", "{}", "[]", R"([{"Config":1,"Layers":[]}])", R"([{"Config":"c.json","Layers":"l"}])",
                            R"([{"Config":"c.json","Layers":[1]}])", R"([{"Config":"../../etc/passwd","Layers":[]}])"}) {
      CAPTURE(bad);
      std::string path = dir.path + "/image.tar";
      WriteTar(path, {{"manifest.json", bad, ""}, {"c.json", kConfig, ""}});
      auto source = OpenDockerArchive(path);
      REQUIRE_FALSE(source);
      CHECK(source.error().code() == ErrorCode::kCorrupt);
    }
  }
}

}  // namespace
}  // namespace lazyfs::fetch
