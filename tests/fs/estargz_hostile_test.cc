// eStargz reader on hostile and unusual input: every malformed footer, TOC or chunk is an error value
// naming what is wrong, never a crash; and TOCs as ctr-remote really writes them are accepted.
#include <doctest/doctest.h>

#include <string>

#include "fs/estargz.h"
#include "tests/fs/estargz_test_util.h"

namespace lazyfs::fs {
namespace {

const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');

std::string Toc(const std::string& entries) { return R"({"version":1,"entries":[)" + entries + "]}"; }

ErrorCode TocError(const std::string& entries, uint64_t toc_offset = 10000) {
  Result<LayerIndex> index = ParseEstargzToc(Toc(entries), toc_offset);
  REQUIRE_FALSE_MESSAGE(index.has_value(), entries);
  return index.error().code();
}

TEST_CASE("eStargz: a TOC as ctr-remote writes it is accepted") {
  std::string toc = Toc(
      R"({"name":".no.prefetch.landmark","type":"reg","size":1,"offset":10,"digest":")" + kDigestA +
      R"(","chunkDigest":")" + kDigestA + R"("},)"
      R"({"name":"./","type":"dir","modtime":"2019-08-20T10:30:43Z","mode":493},)"
      R"({"name":"bin/","type":"dir","mode":16877,"uid":1,"gid":2},)"
      R"({"name":"bin/empty","type":"reg","digest":")" + kDigestA + R"("},)"
      R"({"name":"bin/big","type":"reg","size":10,"offset":100,"chunkSize":4,"chunkDigest":")" + kDigestA +
      R"(","digest":")" + kDigestB + R"(","modtime":"2021-01-02T03:04:05.5+01:00"},)"
      R"({"name":"bin/big","type":"chunk","offset":200,"chunkOffset":4,"chunkSize":4,"chunkDigest":")" + kDigestB +
      R"("},)"
      R"({"name":"bin/big","type":"chunk","offset":300,"chunkOffset":8,"chunkDigest":")" + kDigestA + R"("},)"
      R"({"name":"bin/sh","type":"symlink","linkName":"busybox","NumLink":0,"userName":"root"},)"
      R"({"name":"bin/x","type":"hardlink","linkName":"bin/big"},)"
      R"({"name":"dev/null","type":"char","devMajor":1,"devMinor":3,"xattrs":{"user.a":"AAH/AA==","user.e":""}})");
  Result<LayerIndex> index = ParseEstargzToc(toc, 400);
  REQUIRE_MESSAGE(index.has_value(), index.error().ToString());
  REQUIRE(index->entries.size() == 7);
  const LayerEntry& root = index->entries[0];
  CHECK(root.name == "./");
  CHECK(root.mode == 0755);
  CHECK(root.mtime_sec == 1566297043);
  const LayerEntry& bin = index->entries[1];
  CHECK(bin.mode == 0755);  // type bits dropped
  CHECK(bin.uid == 1);
  CHECK(bin.gid == 2);
  CHECK(index->entries[2].chunks.empty());
  const LayerEntry& big = index->entries[3];
  CHECK(big.mtime_sec == 1609553045);
  CHECK(big.mtime_nsec == 500000000);
  REQUIRE(big.chunks.size() == 3);
  CHECK(big.chunks[0].blob_offset == 100);
  CHECK(big.chunks[0].blob_length == 100);
  CHECK(big.chunks[2].file_offset == 8);
  CHECK(big.chunks[2].size == 2);
  CHECK(big.chunks[2].blob_length == 100);  // runs to the TOC
  CHECK(index->entries[4].link_target == "busybox");
  CHECK(index->entries[5].type == EntryType::kHardlink);
  const LayerEntry& null_dev = index->entries[6];
  CHECK(null_dev.dev_major == 1);
  CHECK(null_dev.dev_minor == 3);
  REQUIRE(null_dev.xattrs.size() == 2);
  CHECK(null_dev.xattrs[0].second == std::string("\x00\x01\xff\x00", 4));
  CHECK(null_dev.xattrs[1].second.empty());
}

TEST_CASE("eStargz: a hostile TOC is rejected with the entry and the reason") {
  const std::string chunk = R"(,"chunkDigest":")" + kDigestA + R"(")";
  SUBCASE("offset past the TOC") {
    Result<LayerIndex> index = ParseEstargzToc(Toc(R"({"name":"f","type":"reg","size":5,"offset":20000)" + chunk + "}"), 10000);
    REQUIRE_FALSE(index.has_value());
    CHECK(index.error().code() == ErrorCode::kCorrupt);
    CHECK(index.error().message().find("\"f\"") != std::string::npos);
  }
  SUBCASE("chunk gap") {
    CHECK(TocError(R"({"name":"f","type":"reg","size":10,"offset":1,"chunkSize":4)" + chunk + R"(},)" +
                   R"({"name":"f","type":"chunk","offset":2,"chunkOffset":5)" + chunk + "}") == ErrorCode::kCorrupt);
  }
  SUBCASE("chunk overlap") {
    CHECK(TocError(R"({"name":"f","type":"reg","size":10,"offset":1,"chunkSize":4)" + chunk + R"(},)" +
                   R"({"name":"f","type":"chunk","offset":2,"chunkOffset":3)" + chunk + "}") == ErrorCode::kCorrupt);
  }
  SUBCASE("chunks that do not cover the file") {
    CHECK(TocError(R"({"name":"f","type":"reg","size":10,"offset":1,"chunkSize":4)" + chunk + "}") ==
          ErrorCode::kCorrupt);
  }
  SUBCASE("chunk past the file end") {
    CHECK(TocError(R"({"name":"f","type":"reg","size":10,"offset":1,"chunkSize":40)" + chunk + "}") ==
          ErrorCode::kCorrupt);
  }
  SUBCASE("chunk without chunkSize before the last") {
    CHECK(TocError(R"({"name":"f","type":"reg","size":10,"offset":1)" + chunk + R"(},)" +
                   R"({"name":"f","type":"chunk","offset":2,"chunkOffset":5)" + chunk + "}") == ErrorCode::kCorrupt);
  }
  SUBCASE("absurd size") {
    CHECK(TocError(R"({"name":"f","type":"reg","size":1125899906842624,"offset":1)" + chunk + "}") ==
          ErrorCode::kCorrupt);
  }
  SUBCASE("huge chunk") {
    CHECK(TocError(R"({"name":"f","type":"reg","size":4294967296,"offset":1)" + chunk + "}") == ErrorCode::kCorrupt);
  }
  SUBCASE("unknown type") { CHECK(TocError(R"({"name":"f","type":"socket"})") == ErrorCode::kCorrupt); }
  SUBCASE("chunk without a reg") {
    CHECK(TocError(R"({"name":"f","type":"chunk","offset":2,"chunkOffset":5)" + chunk + "}") == ErrorCode::kCorrupt);
  }
  SUBCASE("chunk of an empty file") {
    CHECK(TocError(R"({"name":"f","type":"reg"},{"name":"f","type":"chunk","offset":2,"chunkOffset":5)" + chunk +
                   "}") == ErrorCode::kCorrupt);
  }
  SUBCASE("non-base64 xattr") {
    CHECK(TocError(R"({"name":"f","type":"dir","xattrs":{"user.a":"not base64!"}})") == ErrorCode::kCorrupt);
  }
  SUBCASE("missing chunkDigest") {
    CHECK(TocError(R"({"name":"f","type":"reg","size":5,"offset":1})") == ErrorCode::kCorrupt);
  }
  SUBCASE("bad chunkDigest") {
    CHECK(TocError(R"({"name":"f","type":"reg","size":5,"offset":1,"chunkDigest":"md5:00"})") == ErrorCode::kCorrupt);
  }
  SUBCASE("missing offset") { CHECK(TocError(R"({"name":"f","type":"reg","size":5)" + chunk + "}") == ErrorCode::kCorrupt); }
  SUBCASE("negative uid") { CHECK(TocError(R"({"name":"f","type":"dir","uid":-1})") == ErrorCode::kCorrupt); }
  SUBCASE("nonsense mode") { CHECK(TocError(R"({"name":"f","type":"dir","mode":1048576})") == ErrorCode::kCorrupt); }
  SUBCASE("string mode") { CHECK(TocError(R"({"name":"f","type":"dir","mode":"0755"})") == ErrorCode::kCorrupt); }
  SUBCASE("bad modtime") { CHECK(TocError(R"({"name":"f","type":"dir","modtime":"2019-02-30T00:00:00Z"})") == ErrorCode::kCorrupt); }
  SUBCASE("symlink without target") { CHECK(TocError(R"({"name":"f","type":"symlink"})") == ErrorCode::kCorrupt); }
  SUBCASE("entry without name") { CHECK(TocError(R"({"type":"dir"})") == ErrorCode::kCorrupt); }
  SUBCASE("entry not an object") { CHECK(TocError(R"(42)") == ErrorCode::kCorrupt); }
  SUBCASE("not JSON") {
    Result<LayerIndex> index = ParseEstargzToc("{\"version\":1,", 100);
    REQUIRE_FALSE(index.has_value());
    CHECK(index.error().code() == ErrorCode::kCorrupt);
  }
  SUBCASE("unknown version") {
    Result<LayerIndex> index = ParseEstargzToc(R"({"version":2,"entries":[]})", 100);
    REQUIRE_FALSE(index.has_value());
    CHECK(index.error().code() == ErrorCode::kUnsupported);
  }
}

TEST_CASE("eStargz: a chunk's blob span is bounded by its size, however far the next member starts") {
  // The span runs to the next member start, which a hostile TOC can put a terabyte away: one small read
  // must not fetch (and hold) that much.
  uint64_t toc_offset = uint64_t{1} << 40;
  Result<LayerIndex> index = ParseEstargzToc(
      Toc(R"({"name":"f","type":"reg","size":5,"offset":100,"chunkDigest":")" + kDigestA + R"("})"), toc_offset);
  REQUIRE_MESSAGE(index.has_value(), index.error().ToString());
  const ChunkRef& chunk = index->entries[0].chunks[0];
  CHECK(chunk.blob_offset == 100);
  CHECK(chunk.blob_length == MaxMemberSpan(5));
  CHECK(chunk.blob_length < (uint64_t{1} << 20));
}

TEST_CASE("eStargz: a chunk past the size limit makes the TOC unusable") {
  uint64_t size = kMaxEstargzChunkSize + 1;
  Result<LayerIndex> index = ParseEstargzToc(
      Toc(R"({"name":"f","type":"reg","size":)" + std::to_string(size) + R"(,"offset":100,"chunkDigest":")" +
          kDigestA + R"("})"),
      uint64_t{1} << 40);
  REQUIRE_FALSE(index);
  CHECK(index.error().code() == ErrorCode::kCorrupt);
  CHECK(index.error().ToString().find("exceeds the") != std::string::npos);
  CHECK(InflateChunk("anything", size).error().code() == ErrorCode::kCorrupt);
}

TEST_CASE("eStargz: a bad footer is an error, and no footer means not eStargz") {
  std::string footer = MakeEstargzFooter(1234);
  CHECK(ParseEstargzFooter(footer.substr(0, 50)).error().code() == ErrorCode::kCorrupt);
  std::string wrong_magic = footer;
  wrong_magic[12 + 4 + 16] = 'X';
  CHECK(ParseEstargzFooter(wrong_magic).error().code() == ErrorCode::kCorrupt);
  std::string bad_hex = footer;
  bad_hex[12 + 4] = 'g';
  CHECK(ParseEstargzFooter(bad_hex).error().code() == ErrorCode::kCorrupt);
  std::string not_gzip = footer;
  not_gzip[0] = 0;
  CHECK(ParseEstargzFooter(not_gzip).error().code() == ErrorCode::kCorrupt);

  test::FakeBlobReader blobs;
  std::string plain = test::Gzip(test::TarBuilder().File("a", "a").Finish());
  Sha256Digest digest = blobs.Add(plain);
  Result<LayerIndex> index = ReadEstargzIndex(blobs, test::LayerDescriptor(digest, plain, std::nullopt));
  REQUIRE_FALSE(index.has_value());
  CHECK(index.error().code() == ErrorCode::kUnsupported);

  Sha256Digest tiny = blobs.Add("tiny");
  index = ReadEstargzIndex(blobs, test::LayerDescriptor(tiny, "tiny", std::nullopt));
  REQUIRE_FALSE(index.has_value());
  CHECK(index.error().code() == ErrorCode::kUnsupported);
}

TEST_CASE("eStargz: a footer or TOC that does not fit the blob is kCorrupt") {
  auto converted = test::Convert(test::TarBuilder().File("a", "hello").Finish());
  REQUIRE(converted.has_value());
  const auto& [blob, info] = *converted;
  std::string body = blob.substr(0, blob.size() - kEstargzFooterSize);
  test::FakeBlobReader blobs;

  SUBCASE("TOC offset past the end") {
    std::string bad = body + MakeEstargzFooter(blob.size() + 100);
    Sha256Digest d = blobs.Add(bad);
    Result<LayerIndex> index = ReadEstargzIndex(blobs, test::LayerDescriptor(d, bad, info.toc_digest));
    REQUIRE_FALSE(index.has_value());
    CHECK(index.error().code() == ErrorCode::kCorrupt);
  }
  SUBCASE("TOC offset at a non-TOC member") {
    std::string bad = body + MakeEstargzFooter(0);
    Sha256Digest d = blobs.Add(bad);
    Result<LayerIndex> index = ReadEstargzIndex(blobs, test::LayerDescriptor(d, bad, info.toc_digest));
    REQUIRE_FALSE(index.has_value());
    CHECK(index.error().code() == ErrorCode::kCorrupt);
  }
  SUBCASE("TOC digest mismatch") {
    Sha256Digest d = blobs.Add(blob);
    Result<LayerIndex> index = ReadEstargzIndex(blobs, test::LayerDescriptor(d, blob, Sha256Of("other")));
    REQUIRE_FALSE(index.has_value());
    CHECK(index.error().code() == ErrorCode::kCorrupt);
    CHECK(index.error().message().find("TOC digest") != std::string::npos);
  }
  SUBCASE("no annotation: not trusted lazily (kUnsupported sends it down the verified whole-layer path)") {
    Sha256Digest d = blobs.Add(blob);
    Result<LayerIndex> index = ReadEstargzIndex(blobs, test::LayerDescriptor(d, blob, std::nullopt));
    REQUIRE_FALSE(index.has_value());
    CHECK(index.error().code() == ErrorCode::kUnsupported);
  }
  SUBCASE("garbage TOC member") {
    std::string bad = body.substr(0, 100) + std::string(300, 'x');
    bad += MakeEstargzFooter(100);
    Sha256Digest d = blobs.Add(bad);
    Result<LayerIndex> index = ReadEstargzIndex(blobs, test::LayerDescriptor(d, bad, info.toc_digest));
    REQUIRE_FALSE(index.has_value());
    CHECK(index.error().code() == ErrorCode::kCorrupt);
  }
}

TEST_CASE("eStargz: InflateChunk rejects garbage and short members") {
  std::string member = test::Gzip("0123456789");
  CHECK(*InflateChunk(member + "trailing bytes of the next member", 10) == "0123456789");
  CHECK(*InflateChunk(member, 4) == "0123");
  CHECK(InflateChunk(member, 11).error().code() == ErrorCode::kCorrupt);
  CHECK(InflateChunk(member.substr(0, member.size() / 2), 10).error().code() == ErrorCode::kCorrupt);
  CHECK(InflateChunk("this is not gzip at all", 5).error().code() == ErrorCode::kCorrupt);
  CHECK(InflateChunk("", 5).error().code() == ErrorCode::kCorrupt);
  CHECK(InflateChunk(member, uint64_t{1} << 40).error().code() == ErrorCode::kCorrupt);
}

TEST_CASE("eStargz: the writer rejects unsafe entry names") {
  for (const char* name : {"../evil", "a/../../evil", "/etc/passwd"}) {
    auto converted = test::Convert(test::TarBuilder().File("ok", "x").File(name, "x").Finish());
    REQUIRE_FALSE(converted.has_value());
    CHECK(converted.error().code() == ErrorCode::kCorrupt);
    CHECK(converted.error().message().find(name) != std::string::npos);
  }
  auto converted = test::Convert(test::TarBuilder().File("ok", "x").Hardlink("l", "../../x").Finish());
  REQUIRE_FALSE(converted.has_value());
  CHECK(converted.error().code() == ErrorCode::kCorrupt);
}

TEST_CASE("eStargz: the writer refuses names a JSON TOC cannot carry") {
  auto converted = test::Convert(test::TarBuilder().File("latin1-\xe9", "x").Finish());
  REQUIRE_FALSE(converted.has_value());
  CHECK(converted.error().code() == ErrorCode::kUnsupported);
}

TEST_CASE("eStargz: the writer turns a truncated or non-tar source into an error") {
  std::string tar = test::TarBuilder().File("a", std::string(5000, 'a')).Finish();
  auto truncated = test::Convert(tar.substr(0, 1500));
  REQUIRE_FALSE(truncated.has_value());
  CHECK(truncated.error().code() == ErrorCode::kCorrupt);
  auto garbage = test::Convert(std::string(4096, 'z'));
  REQUIRE_FALSE(garbage.has_value());
  CHECK(garbage.error().code() == ErrorCode::kCorrupt);
}

}  // namespace
}  // namespace lazyfs::fs
