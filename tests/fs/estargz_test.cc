// eStargz writer -> reader round trips: the blob is a valid gzip'd tar, the TOC describes it exactly, and
// every chunk inflates from its own member to bytes matching its digest.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fs/estargz.h"
#include "tests/fs/estargz_test_util.h"

namespace lazyfs::fs {
namespace {

using test::TarBuilder;

struct ListedEntry {
  std::string name;
  mode_t type = 0;
  std::string data;
  std::string link;
  std::map<std::string, std::string> xattrs;
};

std::vector<ListedEntry> ListTar(const std::string& tar) {
  std::vector<ListedEntry> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  REQUIRE(archive_read_open_memory(a, tar.data(), tar.size()) == ARCHIVE_OK);
  archive_entry* e = nullptr;
  int r;
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    ListedEntry l;
    l.name = archive_entry_pathname(e);
    l.type = archive_entry_filetype(e);
    if (archive_entry_hardlink(e) != nullptr) l.link = archive_entry_hardlink(e);
    if (archive_entry_symlink(e) != nullptr) l.link = archive_entry_symlink(e);
    const char* name;
    const void* value;
    size_t size;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      l.xattrs[name] = std::string(static_cast<const char*>(value), size);
    }
    char buffer[8192];
    la_ssize_t n;
    while ((n = archive_read_data(a, buffer, sizeof buffer)) > 0) l.data.append(buffer, static_cast<size_t>(n));
    out.push_back(std::move(l));
  }
  CHECK(r == ARCHIVE_EOF);
  archive_read_free(a);
  return out;
}

std::string Pattern(size_t size, int seed) {
  std::string s(size, '\0');
  uint32_t x = static_cast<uint32_t>(seed) * 2654435761u + 1;
  for (char& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

const LayerEntry* Find(const LayerIndex& index, std::string_view name) {
  for (const LayerEntry& e : index.entries) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

// Reassembles a file from its chunks, checking each chunk's digest on the way.
std::string ReadFile(const std::string& blob, const LayerEntry& e) {
  std::string out;
  for (const ChunkRef& c : e.chunks) {
    REQUIRE(c.blob_offset + c.blob_length <= blob.size());
    Result<std::string> bytes = InflateChunk(std::string_view(blob).substr(c.blob_offset, c.blob_length), c.size);
    REQUIRE_MESSAGE(bytes.has_value(), e.name);
    CHECK(Sha256Of(*bytes) == c.digest);
    CHECK(c.file_offset == out.size());
    out += *bytes;
  }
  return out;
}

std::string LongName() { return "long/" + std::string(255, 'n'); }

std::string SampleTar() {
  TarBuilder t;
  t.Dir("./");
  t.Dir("etc/", {.mode = 0750, .uid = 10, .gid = 20});
  t.File("etc/hello", "hello world\n", {.mode = 04755, .uid = 1000, .gid = 1000, .mtime = 1600000000, .mtime_nsec = 123456789});
  t.File("etc/empty", "");
  t.File("etc/.wh.gone", "");
  t.File("big", Pattern(3500, 1));         // 4 chunks of 1000, the last 500
  t.File("exact", Pattern(2000, 2));       // 2 chunks, the last exactly full
  t.File("zeros", std::string(3000, '\0'));  // chunks of zeros share a digest
  t.File("xattr", "x", {.xattrs = {{"user.text", "value"}, {"security.capability", std::string("\x01\x00\xff\x00", 4)}}});
  t.Symlink("etc/link", "hello");
  t.Hardlink("etc/hard", "etc/hello");
  t.Fifo("fifo");
  t.Device("null", AE_IFCHR, 1, 3);
  t.Device("disk", AE_IFBLK, 8, 0);
  t.Dir("long/");
  t.File(LongName(), "long name");
  t.File("ünïcødé/日本語.txt", "unicode");
  return t.Finish();
}

EstargzWriterOptions SmallChunks() {
  EstargzWriterOptions options;
  options.chunk_size = 1000;
  return options;
}

TEST_CASE("eStargz: writer output round-trips through the reader") {
  std::string tar = SampleTar();
  SUBCASE("uncompressed source") {}
  SUBCASE("gzip source") { tar = test::Gzip(tar); }
  auto converted = test::Convert(tar, SmallChunks());
  REQUIRE_MESSAGE(converted.has_value(), converted.error().ToString());
  const auto& [blob, info] = *converted;
  CHECK(info.blob_size == blob.size());
  CHECK(info.blob_digest == Sha256Of(blob));

  test::FakeBlobReader blobs;
  Sha256Digest digest = blobs.Add(blob);
  Result<LayerIndex> index = ReadEstargzIndex(blobs, test::LayerDescriptor(digest, blob, info.toc_digest));
  REQUIRE_MESSAGE(index.has_value(), index.error().ToString());
  CHECK(index->lazy);
  CHECK(index->prefetch.empty());

  for (const LayerEntry& e : index->entries) {
    CHECK(e.name != ".no.prefetch.landmark");
    CHECK(e.name != "stargz.index.json");
  }
  const LayerEntry* hello = Find(*index, "etc/hello");
  REQUIRE(hello != nullptr);
  CHECK(hello->type == EntryType::kRegular);
  CHECK(hello->mode == 04755);
  CHECK(hello->uid == 1000);
  CHECK(hello->gid == 1000);
  CHECK(hello->mtime_sec == 1600000000);
  CHECK(hello->mtime_nsec == 123456789);
  CHECK(hello->size == 12);
  CHECK(ReadFile(blob, *hello) == "hello world\n");

  const LayerEntry* etc = Find(*index, "etc/");
  REQUIRE(etc != nullptr);
  CHECK(etc->type == EntryType::kDirectory);
  CHECK(etc->mode == 0750);
  CHECK(etc->uid == 10);
  CHECK(etc->gid == 20);
  CHECK(Find(*index, "./") != nullptr);

  for (const char* name : {"etc/empty", "etc/.wh.gone"}) {
    const LayerEntry* e = Find(*index, name);
    REQUIRE(e != nullptr);
    CHECK(e->type == EntryType::kRegular);
    CHECK(e->size == 0);
    CHECK(e->chunks.empty());
  }

  const LayerEntry* big = Find(*index, "big");
  REQUIRE(big != nullptr);
  CHECK(big->chunks.size() == 4);
  CHECK(big->chunks.back().size == 500);
  CHECK(ReadFile(blob, *big) == Pattern(3500, 1));
  const LayerEntry* exact = Find(*index, "exact");
  REQUIRE(exact != nullptr);
  CHECK(exact->chunks.size() == 2);
  CHECK(ReadFile(blob, *exact) == Pattern(2000, 2));
  const LayerEntry* zeros = Find(*index, "zeros");
  REQUIRE(zeros != nullptr);
  REQUIRE(zeros->chunks.size() == 3);
  CHECK(zeros->chunks[0].digest == zeros->chunks[2].digest);
  CHECK(ReadFile(blob, *zeros) == std::string(3000, '\0'));

  const LayerEntry* xattr = Find(*index, "xattr");
  REQUIRE(xattr != nullptr);
  std::map<std::string, std::string> xattrs(xattr->xattrs.begin(), xattr->xattrs.end());
  CHECK(xattrs["user.text"] == "value");
  CHECK(xattrs["security.capability"] == std::string("\x01\x00\xff\x00", 4));

  const LayerEntry* link = Find(*index, "etc/link");
  REQUIRE(link != nullptr);
  CHECK(link->type == EntryType::kSymlink);
  CHECK(link->link_target == "hello");
  const LayerEntry* hard = Find(*index, "etc/hard");
  REQUIRE(hard != nullptr);
  CHECK(hard->type == EntryType::kHardlink);
  CHECK(hard->link_target == "etc/hello");
  const LayerEntry* fifo = Find(*index, "fifo");
  REQUIRE(fifo != nullptr);
  CHECK(fifo->type == EntryType::kFifo);
  const LayerEntry* null_dev = Find(*index, "null");
  REQUIRE(null_dev != nullptr);
  CHECK(null_dev->type == EntryType::kCharDevice);
  CHECK(null_dev->dev_major == 1);
  CHECK(null_dev->dev_minor == 3);
  const LayerEntry* disk = Find(*index, "disk");
  REQUIRE(disk != nullptr);
  CHECK(disk->type == EntryType::kBlockDevice);
  CHECK(disk->dev_major == 8);
  CHECK(disk->dev_minor == 0);

  const LayerEntry* long_name = Find(*index, LongName());
  REQUIRE(long_name != nullptr);
  CHECK(ReadFile(blob, *long_name) == "long name");
  const LayerEntry* unicode = Find(*index, "ünïcødé/日本語.txt");
  REQUIRE(unicode != nullptr);
  CHECK(ReadFile(blob, *unicode) == "unicode");
}

TEST_CASE("eStargz: the blob gunzips to a tar with the same entries, hashing to diff_id") {
  std::string tar = SampleTar();
  auto converted = test::Convert(tar, SmallChunks());
  REQUIRE_MESSAGE(converted.has_value(), converted.error().ToString());
  const auto& [blob, info] = *converted;
  std::string out_tar = test::GunzipAll(blob);
  CHECK(out_tar.size() == info.uncompressed_size);
  CHECK(Sha256Of(out_tar) == info.diff_id);

  std::vector<ListedEntry> source = ListTar(tar);
  std::vector<ListedEntry> written = ListTar(out_tar);
  REQUIRE(written.size() == source.size() + 2);
  CHECK(written.front().name == ".no.prefetch.landmark");
  CHECK(written.front().data == "\x0f");
  CHECK(written.back().name == "stargz.index.json");
  CHECK(Sha256Of(written.back().data) == info.toc_digest);
  for (size_t i = 0; i < source.size(); ++i) {
    const ListedEntry& s = source[i];
    const ListedEntry& w = written[i + 1];
    CHECK(w.name == s.name);
    CHECK(w.type == s.type);
    CHECK(w.data == s.data);
    CHECK(w.link == s.link);
    CHECK(w.xattrs == s.xattrs);
  }

  // The footer points at the TOC member, whose gzip header is where the TOC's tar header starts.
  Result<uint64_t> toc_offset = ParseEstargzFooter(std::string_view(blob).substr(blob.size() - kEstargzFooterSize));
  REQUIRE(toc_offset.has_value());
  CHECK(static_cast<uint8_t>(blob[*toc_offset]) == 0x1f);
  CHECK(static_cast<uint8_t>(blob[*toc_offset + 1]) == 0x8b);
  std::string toc_tar = test::GunzipAll(blob.substr(*toc_offset, blob.size() - kEstargzFooterSize - *toc_offset));
  CHECK(toc_tar.substr(0, 17) == "stargz.index.json");
  CHECK(out_tar.ends_with(std::string(1024, '\0')));
}

// Regression (found by tests/integration/test_ctr_remote.py): the writer meant to keep Go's TOCEntry field
// order but put `digest` before `offset` and xattrs in tar order; ctr-remote writes `offset` before
// `xattrs` and `digest`, and xattr names sorted (Go's encoder sorts map keys).
TEST_CASE("eStargz: TOC entries use Go's field order and sorted xattr names, like ctr-remote") {
  TarBuilder t;
  t.File("f", "data", {.uid = 5, .gid = 6, .xattrs = {{"user.z", "1"}, {"security.capability", "2"}, {"user.a", "3"}}});
  t.File("big", Pattern(2500, 3));
  t.Device("null", AE_IFCHR, 1, 3);
  auto converted = test::Convert(t.Finish(), SmallChunks());
  REQUIRE_MESSAGE(converted.has_value(), converted.error().ToString());
  std::vector<ListedEntry> written = ListTar(test::GunzipAll(converted->first));
  REQUIRE(written.back().name == "stargz.index.json");
  auto toc = nlohmann::ordered_json::parse(written.back().data);
  auto keys = [](const nlohmann::ordered_json& j) {
    std::vector<std::string> out;
    for (const auto& [key, value] : j.items()) out.push_back(key);
    return out;
  };
  std::map<std::string, std::vector<std::vector<std::string>>> by_name;
  for (const auto& e : toc["entries"]) by_name[e["name"].get<std::string>()].push_back(keys(e));
  using Keys = std::vector<std::string>;
  CHECK(by_name["f"] == std::vector<Keys>{{"name", "type", "size", "modtime", "mode", "uid", "gid", "offset", "xattrs",
                                           "digest", "chunkDigest"}});
  CHECK(by_name["big"] == std::vector<Keys>{
                              {"name", "type", "size", "modtime", "mode", "offset", "digest", "chunkSize", "chunkDigest"},
                              {"name", "type", "offset", "chunkOffset", "chunkSize", "chunkDigest"},
                              {"name", "type", "offset", "chunkOffset", "chunkDigest"}});
  CHECK(by_name["null"] == std::vector<Keys>{{"name", "type", "modtime", "mode", "devMajor", "devMinor"}});
  for (const auto& e : toc["entries"]) {
    if (e["name"] == "f") CHECK(keys(e["xattrs"]) == Keys{"security.capability", "user.a", "user.z"});
  }
}

TEST_CASE("eStargz: prioritized files come first with their parents, then .prefetch.landmark") {
  TarBuilder t;
  t.Dir("usr/");
  t.Dir("usr/lib/");
  t.File("usr/lib/libc.so", "libc");
  t.Dir("usr/bin/");
  t.File("usr/bin/other", "other");
  t.File("usr/bin/tool", "tool");
  t.Hardlink("usr/bin/tool-link", "usr/lib/libc.so");
  std::string tar = t.Finish();

  EstargzWriterOptions options;
  options.prioritized_files = {"usr/bin/tool", "./usr/bin/tool-link", "missing/file"};
  auto converted = test::Convert(tar, options);
  REQUIRE_MESSAGE(converted.has_value(), converted.error().ToString());
  const auto& [blob, info] = *converted;

  std::vector<std::string> names;
  for (const ListedEntry& e : ListTar(test::GunzipAll(blob))) names.push_back(e.name);
  std::vector<std::string> want = {"usr/", "usr/bin/", "usr/bin/tool", "usr/lib/", "usr/lib/libc.so",
                                   "usr/bin/tool-link", ".prefetch.landmark", "usr/bin/other", "stargz.index.json"};
  CHECK(names == want);

  test::FakeBlobReader blobs;
  Sha256Digest digest = blobs.Add(blob);
  Result<LayerIndex> index = ReadEstargzIndex(blobs, test::LayerDescriptor(digest, blob, info.toc_digest));
  REQUIRE_MESSAGE(index.has_value(), index.error().ToString());
  std::vector<std::string> prefetch = {"usr/", "usr/bin/", "usr/bin/tool", "usr/lib/", "usr/lib/libc.so",
                                       "usr/bin/tool-link"};
  CHECK(index->prefetch == prefetch);
  CHECK(index->entries.size() == 7);
  const LayerEntry* libc = Find(*index, "usr/lib/libc.so");
  REQUIRE(libc != nullptr);
  CHECK(ReadFile(blob, *libc) == "libc");
}

TEST_CASE("eStargz: converting an eStargz layer again drops its old TOC and landmark") {
  auto first = test::Convert(SampleTar());
  REQUIRE(first.has_value());
  auto second = test::Convert(first->first);
  REQUIRE_MESSAGE(second.has_value(), second.error().ToString());
  std::vector<ListedEntry> a = ListTar(test::GunzipAll(first->first));
  std::vector<ListedEntry> b = ListTar(test::GunzipAll(second->first));
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i + 1 < a.size(); ++i) CHECK(a[i].name == b[i].name);
}

TEST_CASE("eStargz: the toc-offset hint reads footer and a big TOC in one request; a wrong hint costs one more") {
  // Thousands of files with distinct contents: a TOC member bigger than the default tail read.
  TarBuilder t;
  for (int i = 0; i < 5000; ++i) t.File(fmt::format("d{}/file-{}", i % 50, i), Pattern(100, i) + std::to_string(i));
  auto converted = test::Convert(t.Finish(), SmallChunks());
  REQUIRE_MESSAGE(converted.has_value(), converted.error().ToString());
  const auto& [blob, info] = *converted;
  Result<uint64_t> footer = ParseEstargzFooter(std::string_view(blob).substr(blob.size() - kEstargzFooterSize));
  REQUIRE(footer);
  CHECK(info.toc_offset == *footer);
  REQUIRE(blob.size() - info.toc_offset > kEstargzTailRead);

  test::FakeBlobReader blobs;
  Sha256Digest digest = blobs.Add(blob);
  fetch::Descriptor layer = test::LayerDescriptor(digest, blob, info.toc_digest);
  int want_reads = 2;
  SUBCASE("no hint") {}
  SUBCASE("the converter's hint") {
    layer.annotations[std::string(fetch::kAnnotationTocOffset)] = std::to_string(info.toc_offset);
    want_reads = 1;
  }
  SUBCASE("a hint past the TOC start") {
    layer.annotations[std::string(fetch::kAnnotationTocOffset)] = std::to_string(info.toc_offset + 1000);
  }
  SUBCASE("a hint before the TOC start") {
    layer.annotations[std::string(fetch::kAnnotationTocOffset)] = std::to_string(info.toc_offset - 1000);
    want_reads = 1;
  }
  SUBCASE("garbage") { layer.annotations[std::string(fetch::kAnnotationTocOffset)] = "12x"; }
  SUBCASE("past the end") { layer.annotations[std::string(fetch::kAnnotationTocOffset)] = std::to_string(blob.size()); }
  Result<LayerIndex> index = ReadEstargzIndex(blobs, layer);
  REQUIRE_MESSAGE(index.has_value(), index.error().ToString());
  CHECK(blobs.range_reads == want_reads);
  CHECK(index->entries.size() >= 5000);
}

TEST_CASE("eStargz: the footer writer and parser agree") {
  for (uint64_t offset : {uint64_t{0}, uint64_t{126}, uint64_t{0xdeadbeef12}}) {
    std::string footer = MakeEstargzFooter(offset);
    CHECK(footer.size() == kEstargzFooterSize);
    Result<uint64_t> parsed = ParseEstargzFooter(footer);
    REQUIRE(parsed.has_value());
    CHECK(*parsed == offset);
    // It is an empty gzip member.
    CHECK(test::GunzipAll(footer).empty());
  }
}

TEST_CASE("eStargz: the writer reports progress and rejects bad options") {
  std::string tar = TarBuilder().File("a", Pattern(9 << 20, 3)).Finish();
  UniqueFd fd(memfd_create("estargz-test", MFD_CLOEXEC));
  size_t pos = 0;
  ReadCallback source = [&](char* buffer, size_t capacity) -> Result<size_t> {
    size_t n = std::min(capacity, tar.size() - pos);
    std::copy_n(tar.data() + pos, n, buffer);
    pos += n;
    return n;
  };
  std::vector<uint64_t> reports;
  auto info = WriteEstargzLayer(source, fd.get(), {}, [&](uint64_t n) { reports.push_back(n); });
  REQUIRE(info.has_value());
  CHECK(reports.size() >= 2);
  CHECK(reports.back() == tar.size());

  EstargzWriterOptions zero;
  zero.chunk_size = 0;
  auto bad = WriteEstargzLayer(source, fd.get(), zero);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code() == ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace lazyfs::fs
