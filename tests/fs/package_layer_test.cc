// Package layers: a tree packed as eStargz reads back as the same files in a fixed form (sorted, 0:0, one
// mtime), packs to the same blob twice, refuses whiteout names and special files; PlaceUnder moves a
// layer under a path and drops whiteouts; LoadComposed puts parts at their paths above a base image,
// reports paths two parts ship with different bytes, and caches the composed tree.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fs/image_loader.h"
#include "fs/package_layer.h"
#include "tests/fs/estargz_test_util.h"
#include "tests/test_support.h"

namespace lazyfs::fs {
namespace {

void WriteFile(const std::string& path, const std::string& data, mode_t mode = 0644) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
  ::chmod(path.c_str(), mode);
}

std::string Pack(const std::string& dir, EstargzLayerInfo* info = nullptr) {
  UniqueFd fd(memfd_create("package-layer-test", MFD_CLOEXEC));
  EstargzWriterOptions options;
  options.chunk_size = 64 << 10;
  EstargzLayerInfo written = PackTreeAsEstargz(dir, fd.get(), options).value();
  if (info) *info = written;
  uint64_t size = FileSize(fd.get(), "blob").value();
  return PreadExact(fd.get(), 0, size, "blob").value();
}

LayerIndex IndexOf(const std::string& blob) {
  uint64_t toc_offset = ParseEstargzFooter(std::string_view(blob).substr(blob.size() - kEstargzFooterSize)).value();
  std::string tar = test::GunzipAll(blob.substr(toc_offset, blob.size() - kEstargzFooterSize - toc_offset));
  // The TOC member is a tar whose one entry is the TOC JSON: its payload follows the 512-byte header.
  size_t size = std::stoul(tar.substr(124, 11), nullptr, 8);
  return ParseEstargzToc(tar.substr(512, size), toc_offset).value();
}

const LayerEntry* Find(const LayerIndex& index, const std::string& name) {
  for (const LayerEntry& e : index.entries) {
    if (e.name == name || e.name == name + "/") return &e;
  }
  return nullptr;
}

// A one-layer package artifact over `dir`.
void MakePart(test::FakeImageSource& source, const std::string& dir) {
  EstargzLayerInfo info;
  std::string blob = Pack(dir, &info);
  Sha256Digest digest = source.blob_reader.Add(blob);
  source.image.manifest_digest = Sha256Of("manifest of " + blob);
  source.image.manifest.layers = {test::LayerDescriptor(digest, blob, info.toc_digest)};
}

}  // namespace

TEST_CASE("PackTreeAsEstargz: the tree's files in a fixed form, the same blob twice") {
  testing::TempDir dir;
  std::string tree = dir.path + "/tree";
  std::string big = testing::PseudoRandomBytes(200 << 10, 3);
  WriteFile(tree + "/six.py", "import sys\n");
  WriteFile(tree + "/pkg/data/big.bin", big);
  WriteFile(tree + "/bin/tool", "#!/usr/bin/python3\n", 04755);  // the setuid bit does not survive
  std::filesystem::create_symlink("six.py", tree + "/alias.py");

  std::string blob = Pack(tree);
  CHECK(blob == Pack(tree));
  LayerIndex index = IndexOf(blob);
  std::vector<std::string> names;
  for (const LayerEntry& e : index.entries) names.push_back(e.name);
  std::string listed;
  for (const std::string& n : names) listed += n + " ";
  INFO(listed);
  CHECK(names == std::vector<std::string>{"alias.py", "bin/", "bin/tool", "pkg/", "pkg/data/", "pkg/data/big.bin",
                                          "six.py"});
  const LayerEntry* tool = Find(index, "bin/tool");
  REQUIRE(tool);
  CHECK(tool->mode == 0755);
  CHECK(tool->uid == 0);
  CHECK(tool->mtime_sec == kPackageLayerMtime);
  const LayerEntry* big_entry = Find(index, "pkg/data/big.bin");
  REQUIRE(big_entry);
  CHECK(big_entry->size == big.size());
  CHECK(big_entry->chunks.size() == 4);  // 64 KiB chunks
  const LayerEntry* alias = Find(index, "alias.py");
  REQUIRE(alias);
  CHECK(alias->type == EntryType::kSymlink);
  CHECK(alias->link_target == "six.py");
}

TEST_CASE("PackTreeAsEstargz: whiteout names and special files are refused, naming the path") {
  testing::TempDir dir;
  std::string tree = dir.path + "/tree";
  SUBCASE("whiteout") {
    WriteFile(tree + "/pkg/.wh.other.py", "");
    UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    Result<EstargzLayerInfo> r = PackTreeAsEstargz(tree, null.get(), {});
    REQUIRE(!r);
    CHECK(r.error().code() == ErrorCode::kCorrupt);
    CHECK(r.error().ToString().find("pkg/.wh.other.py") != std::string::npos);
  }
  SUBCASE("fifo") {
    std::filesystem::create_directories(tree);
    REQUIRE(::mkfifo((tree + "/pipe").c_str(), 0644) == 0);
    UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    Result<EstargzLayerInfo> r = PackTreeAsEstargz(tree, null.get(), {});
    REQUIRE(!r);
    CHECK(r.error().ToString().find("'pipe' is not a file, directory or symlink") != std::string::npos);
  }
}

TEST_CASE("PlaceUnder: names and hardlink targets move under the prefix, whiteouts are dropped") {
  auto entry = [](std::string name, EntryType type, std::string target = "") {
    LayerEntry e;
    e.name = std::move(name);
    e.type = type;
    e.link_target = std::move(target);
    return e;
  };
  LayerIndex index;
  index.entries = {entry("./", EntryType::kDirectory), entry("six.py", EntryType::kRegular),
                   entry("link.py", EntryType::kHardlink, "six.py"), entry("pkg/.wh.gone", EntryType::kRegular),
                   entry("pkg/.wh..wh..opq/", EntryType::kDirectory), entry("x/.wh.six/.", EntryType::kDirectory)};
  std::vector<std::string> skipped;
  LayerIndex placed = PlaceUnder(index, "packages/six==1.16.0/files", 3,
                                 [&](uint32_t layer, const std::string& name, const std::string&) {
                                   CHECK(layer == 3);
                                   skipped.push_back(name);
                                 });
  REQUIRE(placed.entries.size() == 3);
  CHECK(placed.entries[0].name == "packages/six==1.16.0/files");
  CHECK(placed.entries[1].name == "packages/six==1.16.0/files/six.py");
  CHECK(placed.entries[2].link_target == "packages/six==1.16.0/files/six.py");
  CHECK(skipped == std::vector<std::string>{"pkg/.wh.gone", "pkg/.wh..wh..opq/", "x/.wh.six/."});
}

TEST_CASE("LoadComposed: parts at their paths, one blob per part, conflicts reported, tree cached") {
  testing::TempDir dir;
  std::unique_ptr<cache::ChunkStore> store = test::OpenTestStore(dir.path + "/cache");
  WriteFile(dir.path + "/a/clash.py", "WHO = 'a'\n");
  WriteFile(dir.path + "/a/ns/a.py", "A = 1\n");
  WriteFile(dir.path + "/b/clash.py", "WHO = 'b'\n");
  WriteFile(dir.path + "/b/ns/b.py", "B = 1\n");
  WriteFile(dir.path + "/b/same.py", "same\n");
  WriteFile(dir.path + "/a/same.py", "same\n");
  test::FakeImageSource a;
  test::FakeImageSource b;
  MakePart(a, dir.path + "/a");
  MakePart(b, dir.path + "/b");
  std::vector<MountPart> parts = {{"a==1", &a, {"packages/a==1/files", "packages/site"}},
                                  {"b==2", &b, {"packages/b==2/files", "packages/site"}}};

  LoadedImage image = LoadComposed("test", nullptr, parts, *store).value();
  REQUIRE(image.layers.size() == 2);
  CHECK(image.layers[0].blobs == &a.blob_reader);
  CHECK(image.layers[1].blobs == &b.blob_reader);
  CHECK(image.conflicts == std::vector<std::string>{"packages/site/clash.py (a==1 and b==2)"});
  auto layer_at = [&](const std::string& path) {
    std::optional<uint64_t> ino = image.tree.Resolve(path);
    REQUIRE_MESSAGE(ino.has_value(), "no " << path);
    return image.tree.Find(*ino)->layer;
  };
  CHECK(layer_at("packages/a==1/files/ns/a.py") == 0);
  CHECK(layer_at("packages/b==2/files/ns/b.py") == 1);
  CHECK(layer_at("packages/site/ns/a.py") == 0);   // one namespace directory, both dists' modules
  CHECK(layer_at("packages/site/ns/b.py") == 1);
  CHECK(layer_at("packages/site/clash.py") == 1);  // the upper dist wins
  CHECK(!image.tree_from_cache);

  int reads = a.blob_reader.range_reads + b.blob_reader.range_reads;
  LoadedImage again = LoadComposed("test", nullptr, parts, *store).value();
  CHECK(again.tree_from_cache);
  CHECK(again.manifest_digest == image.manifest_digest);
  CHECK(again.conflicts == image.conflicts);
  CHECK(a.blob_reader.range_reads + b.blob_reader.range_reads == reads);

  // Other paths are another composition: another tree.
  parts[1].paths = {"packages/b==2/files"};
  LoadedImage other = LoadComposed("test", nullptr, parts, *store).value();
  CHECK(other.manifest_digest != image.manifest_digest);
  CHECK(other.conflicts.empty());
  CHECK(!other.tree.Resolve("packages/site/ns/b.py"));
}

}  // namespace lazyfs::fs
