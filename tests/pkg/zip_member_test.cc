// ReadZipMember and ReadWheelMetadata: zips built here byte by byte (stored and deflate members, zip64
// records, comments, local extra fields that differ from the central ones) read through a recording
// range reader that counts the reads; a real wheel written by Python's zipfile; and hostile archives,
// each refused with an error naming the offset, plus byte-flip and truncation sweeps that must only
// ever produce errors or the right bytes.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "pkg/metadata.h"
#include "pkg/zip_member.h"
#include "tests/pkg/zip_builder.h"
#include "tests/test_support.h"

#ifndef LAZYFS_PKG_TEST_DATA
#error "LAZYFS_PKG_TEST_DATA must name tests/pkg/data (a compile definition from meson)"
#endif

namespace lazyfs::pkg {
namespace {

using testing::BuildZip;
using testing::BuiltZip;
using testing::GetLe;
using testing::SetLe;
using testing::Zip64;
using testing::ZipMemberSpec;

constexpr uint16_t kStored = testing::kZipStored;
constexpr uint16_t kDeflate = testing::kZipDeflate;
constexpr std::string_view kMetadataName = "tiny-1.0.dist-info/METADATA";

std::string MetadataText() {
  return "Metadata-Version: 2.1\nName: tiny\nVersion: 1.0\nRequires-Dist: packaging\n\n" + std::string(300, 'd');
}

std::vector<ZipMemberSpec> SmallWheel() {
  return {
      {"tiny/__init__.py", "from tiny.core import answer\n"},
      {"tiny/core.py", "def answer():\n    return 42\n", kStored},
      {std::string(kMetadataName), MetadataText()},
      {"tiny-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
      {"tiny-1.0.dist-info/RECORD", "tiny/__init__.py,,\ntiny/core.py,,\n"},
  };
}

// A remote zip that records the reads made of it.
struct Remote {
  std::string zip;
  std::vector<std::pair<uint64_t, uint64_t>> reads;  // offset, length

  RangeReader Reader() {
    return [this](uint64_t offset, uint64_t length) -> Result<std::string> {
      reads.emplace_back(offset, length);
      if (offset > zip.size() || length > zip.size() - offset) return InvalidArgument("range past the test zip");
      return zip.substr(offset, length);
    };
  }
};

auto Named(std::string_view name) {
  return [name = std::string(name)](std::string_view member) { return member == name; };
}

Result<ZipMemberRead> Read(Remote& remote, std::string_view name = kMetadataName, const ZipLimits& limits = {}) {
  remote.reads.clear();
  return ReadZipMember(remote.Reader(), remote.zip.size(), Named(name), limits);
}

// For a REQUIRE_MESSAGE on a result: doctest evaluates the message for passing checks too (with -s).
template <class T>
std::string ErrorText(const Result<T>& result) {
  return result ? std::string() : result.error().ToString();
}

// Every error names where it went wrong, an offset, except the one for a file too short to hold any.
void CheckError(const Result<ZipMemberRead>& got, ErrorCode code, std::string_view needle) {
  REQUIRE_MESSAGE(!got, "expected an error containing: " << needle);
  CHECK_MESSAGE(got.error().code() == code, got.error().ToString());
  CHECK_MESSAGE(got.error().message().find(needle) != std::string::npos, got.error().message());
  if (got.error().message().find("shorter than the 22-byte") == std::string::npos) {
    CHECK_MESSAGE(got.error().message().find("offset") != std::string::npos, got.error().message());
  }
}

// The error ReadZipMember gives for `zip` asking for kMetadataName (or `name`).
void CheckZipError(std::string zip, ErrorCode code, std::string_view needle, std::string_view name = kMetadataName,
                   const ZipLimits& limits = {}) {
  Remote remote{std::move(zip), {}};
  CheckError(Read(remote, name, limits), code, needle);
}

// A file of tests/pkg/data.
std::string ReadFixture(const std::string& name) { return ReadWholeFile(std::string(LAZYFS_PKG_TEST_DATA) + "/" + name).value(); }

}  // namespace

TEST_CASE("ReadZipMember: a small wheel is read whole in one range read") {
  Remote remote{BuildZip(SmallWheel()).bytes, {}};
  Result<ZipMemberRead> got = Read(remote);
  REQUIRE_MESSAGE(got, ErrorText(got));
  CHECK(got->name == kMetadataName);
  CHECK(got->data == MetadataText());
  CHECK(got->range_reads == 1);
  CHECK(got->bytes_read == remote.zip.size());
  REQUIRE(remote.reads.size() == 1);
  CHECK(remote.reads[0] == std::pair<uint64_t, uint64_t>{0, remote.zip.size()});

  SUBCASE("a stored member") {
    got = Read(remote, "tiny/core.py");
    REQUIRE(got);
    CHECK(got->data == "def answer():\n    return 42\n");
  }
  SUBCASE("the first of two members with the same name wins") {
    std::vector<ZipMemberSpec> members = SmallWheel();
    members.push_back({"tiny/core.py", "second"});
    remote.zip = BuildZip(members).bytes;
    got = Read(remote, "tiny/core.py");
    REQUIRE(got);
    CHECK(got->data == "def answer():\n    return 42\n");
  }
  SUBCASE("a predicate on names") {
    got = ReadZipMember(remote.Reader(), remote.zip.size(),
                        [](std::string_view name) { return name.ends_with("/WHEEL"); });
    REQUIRE(got);
    CHECK(got->name == "tiny-1.0.dist-info/WHEEL");
  }
  SUBCASE("a member nobody asked for is not found") {
    CheckError(Read(remote, "tiny/missing.py"), ErrorCode::kNotFound, "none of the 5 members");
  }
}

TEST_CASE("ReadZipMember: stored, deflated and empty members") {
  const std::string text = "hello, zip\n" + lazyfs::testing::PseudoRandomBytes(5000, 1) + std::string(5000, 'z');
  for (uint16_t method : {kStored, kDeflate}) {
    for (const std::string& data : {text, std::string()}) {
      CAPTURE(method);
      CAPTURE(data.size());
      Remote remote{BuildZip({{"a", "first"}, {"member", data, method}, {"z", "last", kStored}}).bytes, {}};
      Result<ZipMemberRead> got = Read(remote, "member");
      REQUIRE_MESSAGE(got, ErrorText(got));
      CHECK(got->data == data);
    }
  }
  SUBCASE("a streamed member, its CRC and sizes in a data descriptor") {
    for (uint16_t method : {kStored, kDeflate}) {
      ZipMemberSpec streamed("member", text, method);
      streamed.data_descriptor = true;
      Remote remote{BuildZip({{"a", "first"}, streamed, {"z", "last"}}).bytes, {}};
      Result<ZipMemberRead> got = Read(remote, "member");
      REQUIRE_MESSAGE(got, ErrorText(got));
      CHECK(got->data == text);
    }
  }
  SUBCASE("a directory entry reads as empty") {
    Remote remote{BuildZip({{"tiny/", "", kStored}, {"tiny/a.py", "x"}}).bytes, {}};
    Result<ZipMemberRead> got = Read(remote, "tiny/");
    REQUIRE(got);
    CHECK(got->data.empty());
  }
}

// A wheel whose METADATA comes before a 5 MiB member, as if the dist-info were written first.
std::vector<ZipMemberSpec> BigWheel(int small_files = 0) {
  std::vector<ZipMemberSpec> members = {
      {std::string(kMetadataName), MetadataText()},
      {"tiny/_big.so", lazyfs::testing::PseudoRandomBytes(5 << 20, 7), kStored},
  };
  for (int i = 0; i < small_files; ++i) {
    members.push_back({fmt::format("tiny/data/a_rather_long_directory_name/file_number_{:05}.txt", i), "x", kStored});
  }
  members.push_back({"tiny-1.0.dist-info/RECORD", "tiny/_big.so,,\n"});
  return members;
}

TEST_CASE("ReadZipMember: a wheel's METADATA in two reads past a 5 MiB member") {
  const BuiltZip zip = BuildZip(BigWheel());
  Remote remote{zip.bytes, {}};
  Result<ZipMemberRead> got = Read(remote);
  REQUIRE_MESSAGE(got, ErrorText(got));
  CHECK(got->data == MetadataText());
  CHECK(got->range_reads == 2);
  REQUIRE(remote.reads.size() == 2);
  const uint64_t size = remote.zip.size();
  CHECK(remote.reads[0] == std::pair<uint64_t, uint64_t>{size - (64 << 10), 64 << 10});
  CHECK(remote.reads[1].first == 0);  // the local header, its data and the slack
  const uint64_t member_end = zip.local[1];
  CHECK(remote.reads[1].second == member_end + 1024);
  CHECK(got->bytes_read == (64 << 10) + member_end + 1024);
  CHECK(got->bytes_read * 50 < size);
}

TEST_CASE("ReadZipMember: a central directory larger than the tail costs one more read") {
  const BuiltZip zip = BuildZip(BigWheel(1500));
  const uint64_t size = zip.bytes.size();
  REQUIRE(size - zip.cd_offset > (64 << 10));
  Remote remote{zip.bytes, {}};
  Result<ZipMemberRead> got = Read(remote);
  REQUIRE_MESSAGE(got, ErrorText(got));
  CHECK(got->data == MetadataText());
  REQUIRE(got->range_reads == 3);
  CHECK(remote.reads[0] == std::pair<uint64_t, uint64_t>{size - (64 << 10), 64 << 10});
  CHECK(remote.reads[1] == std::pair<uint64_t, uint64_t>{zip.cd_offset, size - (64 << 10) - zip.cd_offset});
  CHECK(remote.reads[2].first == 0);
  CHECK(got->bytes_read * 20 < size);
  CHECK(got->bytes_read == (size - zip.cd_offset) + zip.local[1] + 1024);

  SUBCASE("a member just before the held directory reads only up to it") {
    std::vector<ZipMemberSpec> members = BigWheel(1500);
    std::rotate(members.begin(), members.begin() + 1, members.end());  // METADATA last
    const BuiltZip last = BuildZip(members);
    remote.zip = last.bytes;
    got = Read(remote);
    REQUIRE_MESSAGE(got, ErrorText(got));
    CHECK(got->data == MetadataText());
    REQUIRE(got->range_reads == 3);
    CHECK(remote.reads[2] == std::pair<uint64_t, uint64_t>{last.local.back(), last.cd_offset - last.local.back()});
  }
}

TEST_CASE("ReadZipMember: a member inside the tail costs no read of its own") {
  std::vector<ZipMemberSpec> members = BigWheel();
  std::rotate(members.begin(), members.begin() + 1, members.end());
  Remote remote{BuildZip(members).bytes, {}};
  Result<ZipMemberRead> got = Read(remote);
  REQUIRE_MESSAGE(got, ErrorText(got));
  CHECK(got->data == MetadataText());
  CHECK(got->range_reads == 1);
  CHECK(got->bytes_read == 64 << 10);
}

TEST_CASE("ReadZipMember: a local extra field that differs from the central one") {
  std::vector<ZipMemberSpec> members = BigWheel();
  SUBCASE("a few bytes longer: the slack covers it") {
    members[0].local_extra = std::string("UT\x09\x00\x03", 5) + std::string(9, '\x01');
    members[0].central_extra = std::string("UT\x05\x00\x03", 5) + std::string(5, '\x01');
    Remote remote{BuildZip(members).bytes, {}};
    Result<ZipMemberRead> got = Read(remote);
    REQUIRE_MESSAGE(got, ErrorText(got));
    CHECK(got->data == MetadataText());
    CHECK(got->range_reads == 2);
  }
  SUBCASE("much longer: the rest is read") {
    members[0].local_extra = std::string("\xfe\xca\xfc\x0f", 4) + std::string(0x0ffc, '\0');
    const BuiltZip zip = BuildZip(members);
    Remote remote{zip.bytes, {}};
    Result<ZipMemberRead> got = Read(remote);
    REQUIRE_MESSAGE(got, ErrorText(got));
    CHECK(got->data == MetadataText());
    REQUIRE(got->range_reads == 3);
    // The first read covered the local header; the second takes the data alone, not the extra field.
    const uint64_t data_at = zip.local[0] + 30 + kMetadataName.size() + 0x1000;
    CHECK(remote.reads[2] == std::pair<uint64_t, uint64_t>{data_at, zip.local[1] - data_at});
  }
  SUBCASE("shorter") {
    members[0].central_extra = std::string("\xfe\xca\x10\x00", 4) + std::string(16, '\0');
    Remote remote{BuildZip(members).bytes, {}};
    Result<ZipMemberRead> got = Read(remote);
    REQUIRE_MESSAGE(got, ErrorText(got));
    CHECK(got->data == MetadataText());
    CHECK(got->range_reads == 2);
  }
}

TEST_CASE("ReadZipMember: zip64 end records and extra fields") {
  for (int escape : {7, 4, 3, 0}) {
    CAPTURE(escape);
    Remote remote{BuildZip(SmallWheel(), Zip64(escape)).bytes, {}};
    Result<ZipMemberRead> got = Read(remote);
    REQUIRE_MESSAGE(got, ErrorText(got));
    CHECK(got->data == MetadataText());
    CHECK(got->range_reads == 1);
  }
  SUBCASE("a big zip64 wheel still takes two reads") {
    Remote remote{BuildZip(BigWheel(), Zip64()).bytes, {}};
    Result<ZipMemberRead> got = Read(remote);
    REQUIRE_MESSAGE(got, ErrorText(got));
    CHECK(got->data == MetadataText());
    CHECK(got->range_reads == 2);
  }
}

TEST_CASE("ReadZipMember: archive comments") {
  SUBCASE("a short comment") {
    Remote remote{BuildZip(SmallWheel(), {.comment = "made by a test"}).bytes, {}};
    Result<ZipMemberRead> got = Read(remote);
    REQUIRE_MESSAGE(got, ErrorText(got));
    CHECK(got->data == MetadataText());
  }
  SUBCASE("bytes after the end record, which Python's zipfile accepts") {
    Remote remote{BuildZip(SmallWheel()).bytes + "appended", {}};
    Result<ZipMemberRead> got = Read(remote);
    REQUIRE_MESSAGE(got, ErrorText(got));
    CHECK(got->data == MetadataText());
  }
  SUBCASE("a comment holding an end record signature") {
    // A whole zip, its own end record included, then text: that record's comment does not reach the end.
    // (A comment ending in a zip is ambiguous; Python's zipfile too reads the inner one.)
    std::string fake = BuildZip({{"other", "other"}}).bytes + " was here";
    Remote remote{BuildZip(SmallWheel(), {.comment = fake}).bytes, {}};
    Result<ZipMemberRead> got = Read(remote);
    REQUIRE_MESSAGE(got, ErrorText(got));
    CHECK(got->data == MetadataText());
  }
  SUBCASE("the longest comment, past the tail: one more read finds the end record") {
    std::vector<ZipMemberSpec> members = BigWheel();
    std::rotate(members.begin(), members.begin() + 1, members.end());
    Remote remote{BuildZip(members, {.comment = std::string(65535, 'c')}).bytes, {}};
    Result<ZipMemberRead> got = Read(remote);
    REQUIRE_MESSAGE(got, ErrorText(got));
    CHECK(got->data == MetadataText());
    // The tail, the rest of the comment window, the directory (which the tail missed), the member.
    CHECK(got->range_reads == 4);
  }
}

TEST_CASE("ReadZipMember: a tail guess shorter than the end record") {
  for (uint64_t tail : {0, 22, 30, 100}) {
    CAPTURE(tail);
    for (bool zip64 : {false, true}) {
      Remote remote{BuildZip(SmallWheel(), {.comment = "c", .zip64 = zip64}).bytes, {}};
      Result<ZipMemberRead> got = Read(remote, kMetadataName, {.tail_guess = tail});
      REQUIRE_MESSAGE(got, ErrorText(got));
      CHECK(got->data == MetadataText());
      CHECK(got->bytes_read <= remote.zip.size());
    }
  }
}

TEST_CASE("ReadWheelMetadata: the exact name, else the single top-level .dist-info/METADATA") {
  SUBCASE("exact") {
    std::vector<ZipMemberSpec> members = SmallWheel();
    members.insert(members.begin(), {"other-2.0.dist-info/METADATA", "other"});
    Remote remote{BuildZip(members).bytes, {}};
    Result<ZipMemberRead> got = ReadWheelMetadata(remote.Reader(), remote.zip.size(), kMetadataName);
    REQUIRE_MESSAGE(got, ErrorText(got));
    CHECK(got->name == kMetadataName);
    CHECK(got->data == MetadataText());
  }
  SUBCASE("the one candidate, as a wheel whose name was normalised differently") {
    Remote remote{BuildZip(SmallWheel()).bytes, {}};
    Result<ZipMemberRead> got = ReadWheelMetadata(remote.Reader(), remote.zip.size(), "Tiny-1.0.dist-info/METADATA");
    REQUIRE_MESSAGE(got, ErrorText(got));
    CHECK(got->name == kMetadataName);
  }
  SUBCASE("several candidates") {
    std::vector<ZipMemberSpec> members = SmallWheel();
    members.push_back({"other-2.0.dist-info/METADATA", "other"});
    members.push_back({"nested/x-1.dist-info/METADATA", "not top level"});
    Remote remote{BuildZip(members).bytes, {}};
    Result<ZipMemberRead> got = ReadWheelMetadata(remote.Reader(), remote.zip.size(), "tiny-2.0.dist-info/METADATA");
    CheckError(got, ErrorCode::kCorrupt, "2 top-level .dist-info/METADATA members");
    CHECK(got.error().message().find("'other-2.0.dist-info/METADATA'") != std::string::npos);
    CHECK(got.error().message().find("nested") == std::string::npos);
  }
  SUBCASE("none") {
    Remote remote{BuildZip({{"nested/x-1.dist-info/METADATA", "x"}, {".dist-info/METADATA", "x"}}).bytes, {}};
    CheckError(ReadWheelMetadata(remote.Reader(), remote.zip.size(), kMetadataName), ErrorCode::kNotFound,
               "no 'tiny-1.0.dist-info/METADATA'");
  }
}

TEST_CASE("ReadWheelMetadata: a real wheel written by Python's zipfile") {
  Remote remote{ReadFixture("tiny-1.0-py3-none-any.whl"), {}};
  Result<ZipMemberRead> got = ReadWheelMetadata(remote.Reader(), remote.zip.size(), kMetadataName);
  REQUIRE_MESSAGE(got, ErrorText(got));
  CHECK(got->range_reads == 1);
  Result<CoreMetadata> metadata = ParseCoreMetadata(got->data, got->name);
  REQUIRE_MESSAGE(metadata, ErrorText(metadata));
  CHECK(metadata->name == "tiny");
  CHECK(metadata->version == "1.0");
  CHECK(metadata->requires_dist ==
        std::vector<std::string>{"packaging (>=21)", "tomli ; python_version < \"3.11\"", "pytest ; extra == 'test'"});
  Result<ZipMemberRead> core = Read(remote, "tiny/core.py");
  REQUIRE_MESSAGE(core, ErrorText(core));
  CHECK(core->data.starts_with("def answer():\n    return 42\n"));
  CHECK(core->data.size() == 810);
}

TEST_CASE("ReadZipMember: hostile end records and central directories") {
  const BuiltZip z = BuildZip(SmallWheel());
  const uint64_t size = z.bytes.size();
  std::string zip = z.bytes;
  auto set_end = [&](int field, uint64_t v, int bytes) { SetLe(zip, z.end_offset + field, v, bytes); };

  SUBCASE("shorter than an end record") {
    for (size_t n : {0, 1, 21}) CheckZipError(z.bytes.substr(0, n), ErrorCode::kCorrupt, "shorter than the 22-byte");
  }
  SUBCASE("no end record") {
    CheckZipError(lazyfs::testing::PseudoRandomBytes(100000, 3), ErrorCode::kCorrupt,
                  "no end of central directory record");
  }
  SUBCASE("directory offset past the end") {
    set_end(16, size + 1000, 4);
    CheckZipError(zip, ErrorCode::kCorrupt, fmt::format("runs past the end of the file (size {})", size));
  }
  SUBCASE("directory size past the end") {
    set_end(12, 0xfffffff0, 4);
    CheckZipError(zip, ErrorCode::kCorrupt, "runs past the end of the file");
  }
  SUBCASE("directory overlapping the end record") {
    set_end(12, GetLe(zip, z.end_offset + 12, 4) + 10, 4);
    CheckZipError(zip, ErrorCode::kCorrupt, fmt::format("overlaps the end record at offset {}", z.end_offset));
  }
  SUBCASE("a directory over the limit") {
    CheckZipError(zip, ErrorCode::kUnsupported, "over the limit of 100", kMetadataName,
                  {.max_central_directory_bytes = 100});
  }
  SUBCASE("more entries than the directory's bytes can hold") {
    set_end(8, 60000, 2);
    set_end(10, 60000, 2);
    CheckZipError(zip, ErrorCode::kCorrupt, "declares 60000 entries");
  }
  SUBCASE("one entry more than there are") {
    set_end(8, 6, 2);
    set_end(10, 6, 2);
    CheckZipError(zip, ErrorCode::kCorrupt, "after 5 of its 6 declared entries", "missing");
  }
  SUBCASE("one entry fewer than there are") {
    set_end(8, 4, 2);
    set_end(10, 4, 2);
    CheckZipError(zip, ErrorCode::kCorrupt, "after its 4 declared entries", "missing");
  }
  SUBCASE("a spanned archive") {
    set_end(4, 1, 2);
    CheckZipError(zip, ErrorCode::kUnsupported, "spanned archive");
  }
  SUBCASE("a name running past the directory") {
    SetLe(zip, z.central.back() + 28, 0xffff, 2);
    CheckZipError(zip, ErrorCode::kCorrupt, "run past the end of the directory", "missing");
  }
  SUBCASE("an entry without its signature") {
    SetLe(zip, z.central[1], 0x12345678, 4);
    CheckZipError(zip, ErrorCode::kCorrupt, fmt::format("entry 1 at offset {} does not start", z.central[1]));
  }
}

TEST_CASE("ReadZipMember: hostile zip64 records") {
  const BuiltZip z = BuildZip(SmallWheel(), Zip64());
  std::string zip = z.bytes;
  SUBCASE("a locator pointing past itself") {
    SetLe(zip, z.zip64_locator_offset + 8, z.zip64_locator_offset + 1000, 8);
    CheckZipError(zip, ErrorCode::kCorrupt, "leaves no room");
  }
  SUBCASE("a locator pointing at the wrong place") {
    SetLe(zip, z.zip64_locator_offset + 8, z.cd_offset, 8);
    CheckZipError(zip, ErrorCode::kCorrupt, "no zip64 end of central directory record at offset");
  }
  SUBCASE("a record declaring a huge size") {
    SetLe(zip, z.zip64_end_offset + 4, uint64_t{1} << 62, 8);
    CheckZipError(zip, ErrorCode::kCorrupt, "declares a size of");
  }
  SUBCASE("a directory offset near 2^64") {
    SetLe(zip, z.zip64_end_offset + 48, ~uint64_t{0} - 5, 8);
    CheckZipError(zip, ErrorCode::kCorrupt, "runs past the end of the file");
  }
  SUBCASE("an entry count near 2^64") {
    SetLe(zip, z.zip64_end_offset + 24, ~uint64_t{0}, 8);
    SetLe(zip, z.zip64_end_offset + 32, ~uint64_t{0}, 8);
    CheckZipError(zip, ErrorCode::kCorrupt, "can hold at most");
  }
  SUBCASE("escaped fields without a zip64 extra field") {
    SetLe(zip, z.central[2] + 46 + kMetadataName.size(), 0x9999, 2);
    CheckZipError(zip, ErrorCode::kCorrupt, fmt::format("entry at offset {} has 32-bit fields", z.central[2]));
  }
  SUBCASE("a zip64 extra field too short for what it must hold") {
    SetLe(zip, z.central[2] + 46 + kMetadataName.size() + 2, 8, 2);
    CheckZipError(zip, ErrorCode::kCorrupt, "holds 8 bytes, its entry needs 24");
  }
  SUBCASE("a 64-bit local header offset past the directory") {
    SetLe(zip, z.central[2] + 46 + kMetadataName.size() + 4 + 16, uint64_t{1} << 40, 8);
    CheckZipError(zip, ErrorCode::kCorrupt, "is not before the central directory");
  }
}

TEST_CASE("ReadZipMember: hostile members") {
  const BuiltZip z = BuildZip(SmallWheel());
  const uint64_t entry = z.central[2];  // METADATA, deflated
  const uint64_t local = z.local[2];
  const uint64_t csize = GetLe(z.bytes, entry + 20, 4);
  const uint64_t usize = GetLe(z.bytes, entry + 24, 4);
  std::string zip = z.bytes;
  const std::string where = fmt::format("(central directory entry at offset {})", entry);

  SUBCASE("encrypted") {
    SetLe(zip, entry + 8, 1, 2);
    CheckZipError(zip, ErrorCode::kUnsupported, where + " is encrypted");
  }
  SUBCASE("encrypted, says the local header") {
    SetLe(zip, local + 6, 1, 2);
    CheckZipError(zip, ErrorCode::kUnsupported, "says it is encrypted");
  }
  SUBCASE("bzip2") {
    SetLe(zip, entry + 10, 12, 2);
    CheckZipError(zip, ErrorCode::kUnsupported, "compression method 12 (bzip2)");
  }
  SUBCASE("declared bigger than the limit: refused before reading it") {
    SetLe(zip, entry + 24, 17 << 20, 4);
    Remote remote{zip, {}};
    CheckError(Read(remote), ErrorCode::kUnsupported, "over the limit of 16777216");
    CHECK(remote.reads.size() == 1);
  }
  SUBCASE("a compressed size past the end of the file") {
    SetLe(zip, entry + 20, zip.size() + 10, 4);
    CheckZipError(zip, ErrorCode::kCorrupt, fmt::format("run past the end of the file (size {})", zip.size()));
  }
  SUBCASE("a compressed size running into the directory") {
    SetLe(zip, entry + 20, z.cd_offset - local, 4);
    CheckZipError(zip, ErrorCode::kCorrupt, fmt::format("the start of the central directory at offset {}", z.cd_offset));
  }
  SUBCASE("a local header offset inside the directory") {
    SetLe(zip, entry + 42, z.cd_offset, 4);
    CheckZipError(zip, ErrorCode::kCorrupt, "is not before the central directory");
  }
  SUBCASE("no local header where the entry points") {
    SetLe(zip, entry + 42, local + 1, 4);
    CheckZipError(zip, ErrorCode::kCorrupt, fmt::format("no local header signature at offset {}", local + 1));
  }
  SUBCASE("a local header naming another file") {
    zip[local + 30] = 'T';
    CheckZipError(zip, ErrorCode::kCorrupt, "names 'Tiny-1.0.dist-info/METADATA'");
  }
  SUBCASE("a local name of another length") {
    SetLe(zip, local + 26, kMetadataName.size() - 1, 2);
    CheckZipError(zip, ErrorCode::kCorrupt, "names 'tiny-1.0.dist-info/METADAT'");
  }
  SUBCASE("a local extra field running into the directory") {
    SetLe(zip, local + 28, 0xffff, 2);
    CheckZipError(zip, ErrorCode::kCorrupt, "runs into the central directory");
  }
  SUBCASE("inflating to more than declared") {
    SetLe(zip, entry + 24, usize - 10, 4);
    CheckZipError(zip, ErrorCode::kCorrupt, fmt::format("more than the declared {} bytes", usize - 10));
  }
  SUBCASE("inflating to less than declared") {
    SetLe(zip, entry + 24, usize + 10, 4);
    CheckZipError(zip, ErrorCode::kCorrupt, fmt::format("inflates to {} bytes, the central directory says {}", usize,
                                                        usize + 10));
  }
  SUBCASE("a truncated deflate stream") {
    SetLe(zip, entry + 20, csize - 5, 4);
    CheckZipError(zip, ErrorCode::kCorrupt, fmt::format("deflate data ends after {} compressed bytes", csize - 5));
  }
  SUBCASE("an invalid deflate stream") {
    zip[local + 30 + kMetadataName.size()] = '\xff';
    CheckZipError(zip, ErrorCode::kCorrupt, "deflate data is invalid");
  }
  SUBCASE("a CRC mismatch") {
    SetLe(zip, entry + 16, GetLe(zip, entry + 16, 4) ^ 1, 4);
    CheckZipError(zip, ErrorCode::kCorrupt, "the central directory says");
  }
  SUBCASE("a stored member whose sizes differ") {
    SetLe(zip, z.central[1] + 20, GetLe(zip, z.central[1] + 20, 4) - 1, 4);
    CheckZipError(zip, ErrorCode::kCorrupt, "is stored but declares", "tiny/core.py");
  }
  SUBCASE("a zip bomb declaring a small size stops at it") {
    ZipMemberSpec bomb{"bomb", std::string(50 << 20, '\0')};
    BuiltZip b = BuildZip({bomb});
    SetLe(b.bytes, b.central[0] + 24, 1000, 4);
    CheckZipError(b.bytes, ErrorCode::kCorrupt, "more than the declared 1000 bytes", "bomb");
  }
  SUBCASE("a control byte in a name is quoted") {
    std::vector<ZipMemberSpec> members = {{"bad\nname", "x"}};
    BuiltZip b = BuildZip(members);
    SetLe(b.bytes, b.central[0] + 16, 0, 4);
    CheckZipError(b.bytes, ErrorCode::kCorrupt, "zip member 'bad\\x0aname'", "bad\nname");
  }
}

TEST_CASE("ReadZipMember: a range reader that fails or returns the wrong length") {
  const BuiltZip z = BuildZip(BigWheel());
  const std::string& zip = z.bytes;
  SUBCASE("short") {
    RangeReader shorted = [&](uint64_t offset, uint64_t length) -> Result<std::string> {
      return zip.substr(offset, offset == 0 ? length - 1 : length);
    };
    const uint64_t asked = z.local[1] + 1024;
    CheckError(ReadZipMember(shorted, zip.size(), Named(kMetadataName)), ErrorCode::kCorrupt,
               fmt::format("zip range read at offset 0 returned {} bytes, asked for {}", asked - 1, asked));
  }
  SUBCASE("long") {
    RangeReader longer = [&](uint64_t offset, uint64_t length) -> Result<std::string> {
      return zip.substr(offset, length) + "x";
    };
    CheckError(ReadZipMember(longer, zip.size(), Named(kMetadataName)), ErrorCode::kCorrupt,
               fmt::format("zip range read at offset {} returned 65537 bytes, asked for 65536", zip.size() - 65536));
  }
  SUBCASE("an error passes through, still retryable") {
    RangeReader failing = [&](uint64_t, uint64_t) -> Result<std::string> {
      return Error(ErrorCode::kNetwork, "HTTP 503", true);
    };
    Result<ZipMemberRead> got = ReadZipMember(failing, zip.size(), Named(kMetadataName));
    CheckError(got, ErrorCode::kNetwork, "HTTP 503");
    CHECK(got.error().retryable());
    CHECK(got.error().message().starts_with(fmt::format("zip range read at offset {}", zip.size() - 65536)));
  }
}

// Every byte of the directory and end records (and of the member's local header and data) set to a few
// values, and every truncation: the read must end in an error or the right bytes, never a crash or
// over-read (run under -fsanitize=address,undefined).
TEST_CASE("ReadZipMember: byte flips and truncations give errors or the right bytes") {
  for (bool zip64 : {false, true}) {
    const BuiltZip z = BuildZip(SmallWheel(), {.comment = "ok", .zip64 = zip64});
    int errors = 0;
    int successes = 0;
    auto run = [&](const std::string& zip) {
      Remote remote{zip, {}};
      Result<ZipMemberRead> got = Read(remote, kMetadataName, {.tail_guess = 64});
      if (!got) {
        ++errors;
        return;
      }
      ++successes;
      CHECK(got->data == MetadataText());
    };
    for (uint64_t at = z.local[2]; at < z.bytes.size(); ++at) {
      if (at == z.local[3]) at = z.cd_offset;  // skip members that are not read
      const auto old = static_cast<uint8_t>(z.bytes[at]);
      for (uint8_t v : {uint8_t{0}, uint8_t{0xff}, static_cast<uint8_t>(old ^ 1), static_cast<uint8_t>(old ^ 0x80)}) {
        if (v == old) continue;
        std::string zip = z.bytes;
        zip[at] = static_cast<char>(v);
        run(zip);
      }
    }
    for (size_t n = 0; n < z.bytes.size(); ++n) run(z.bytes.substr(0, n));
    CAPTURE(zip64);
    CHECK(errors > 1000);
    CHECK(successes > 0);  // flips in attributes, times and the comment's text are harmless
  }
}

}  // namespace lazyfs::pkg
