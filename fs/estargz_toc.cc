// The eStargz TOC (stargz.index.json) parser: turns the JSON into a LayerIndex and validates it hard,
// because the TOC decides which blob ranges we fetch and which digests we trust. Accepts what the spec
// allows and what ctr-remote really writes (zero values omitted, mode with or without type bits, whole or
// fractional RFC 3339 seconds, base64 xattrs, empty files without offset, last chunk without chunkSize).
//
// Thread safety: pure function.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base64.h"
#include "common/log.h"
#include "fs/entry_name.h"
#include "fs/estargz.h"
#include "fs/estargz_internal.h"

namespace lazyfs::fs {
namespace {

using estargz_internal::IsFormatFile;
using Json = nlohmann::json;

constexpr uint64_t kMaxFileSize = uint64_t{1} << 50;
constexpr int64_t kMaxMode = 0177777;  // type bits are tolerated (the spec's example has them) and dropped

// One chunk as the TOC declares it, before coverage checks.
struct DeclaredChunk {
  size_t toc_index = 0;
  uint64_t offset = 0;
  uint64_t chunk_offset = 0;
  uint64_t chunk_size = 0;  // 0: absent (only the last chunk may omit it)
  Sha256Digest digest;
};

// A regular file with data, collecting its chunks: the `reg` entry's own and the following `chunk` entries.
struct PendingFile {
  size_t toc_index = 0;
  std::string name;
  uint64_t size = 0;
  std::optional<size_t> entry_index;  // into LayerIndex::entries; nullopt for dropped format files
  std::vector<DeclaredChunk> chunks;
};

// Builds "TOC entry 12 (\"usr/bin/x\"): why" messages.
class EntryContext {
 public:
  EntryContext(size_t index, std::string_view name) : index_(index), name_(name) {}
  Error Fail(std::string_view why) const { return Corrupt(fmt::format("TOC entry {} (\"{}\"): {}", index_, name_, why)); }

 private:
  size_t index_;
  std::string_view name_;
};

// Reads an optional integer field in [0, max]; absent is 0, as Go's encoder omits zero values.
Result<uint64_t> GetUint(const Json& j, const char* key, uint64_t max, const EntryContext& ctx) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return uint64_t{0};
  if (it->is_number_unsigned()) {
    uint64_t v = it->get<uint64_t>();
    if (v > max) return ctx.Fail(fmt::format("{} {} is out of range", key, v));
    return v;
  }
  if (it->is_number_integer()) return ctx.Fail(fmt::format("{} {} is negative", key, it->get<int64_t>()));
  return ctx.Fail(fmt::format("{} is not an integer", key));
}

Result<std::string> GetString(const Json& j, const char* key, const EntryContext& ctx) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return ctx.Fail(fmt::format("{} is not a string", key));
  return it->get<std::string>();
}

Result<std::optional<Sha256Digest>> GetDigest(const Json& j, const char* key, const EntryContext& ctx) {
  std::string text = LAZYFS_TRY(GetString(j, key, ctx));
  if (text.empty()) return std::optional<Sha256Digest>();
  std::optional<Sha256Digest> d = Sha256Digest::Parse(text);
  if (!d) return ctx.Fail(fmt::format("{} \"{}\" is not a sha256 digest", key, text));
  return d;
}

bool ParseDigits(std::string_view s, size_t pos, size_t count, int* out) {
  if (pos + count > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// RFC 3339: "2019-08-20T10:30:43Z", "2019-08-20T10:30:43.123456789+02:00". Returns false if malformed.
bool ParseRfc3339(std::string_view s, int64_t* sec, uint32_t* nsec) {
  int year, month, day, hour, minute, second;
  if (!ParseDigits(s, 0, 4, &year) || s.size() < 19 || s[4] != '-' || !ParseDigits(s, 5, 2, &month) || s[7] != '-' ||
      !ParseDigits(s, 8, 2, &day) || (s[10] != 'T' && s[10] != 't') || !ParseDigits(s, 11, 2, &hour) || s[13] != ':' ||
      !ParseDigits(s, 14, 2, &minute) || s[16] != ':' || !ParseDigits(s, 17, 2, &second)) {
    return false;
  }
  if (hour > 23 || minute > 59 || second > 60) return false;
  std::chrono::year_month_day ymd{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                                  std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) return false;
  size_t pos = 19;
  uint32_t fraction = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 9) fraction = fraction * 10 + static_cast<uint32_t>(s[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return false;
    for (size_t d = digits; d < 9; ++d) fraction *= 10;
  }
  int64_t zone_offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int zh, zm;
    if (!ParseDigits(s, pos + 1, 2, &zh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !ParseDigits(s, pos + 4, 2, &zm) || zh > 23 || zm > 59) {
      return false;
    }
    zone_offset = (s[pos] == '-' ? -1 : 1) * (int64_t{zh} * 3600 + zm * 60);
    pos += 6;
  } else {
    return false;
  }
  if (pos != s.size()) return false;
  int64_t days = std::chrono::sys_days(ymd).time_since_epoch().count();
  *sec = days * 86400 + hour * 3600 + minute * 60 + second - zone_offset;
  *nsec = fraction;
  return true;
}

Result<EntryType> ParseType(std::string_view type, const EntryContext& ctx) {
  if (type == "reg") return EntryType::kRegular;
  if (type == "dir") return EntryType::kDirectory;
  if (type == "symlink") return EntryType::kSymlink;
  if (type == "hardlink") return EntryType::kHardlink;
  if (type == "char") return EntryType::kCharDevice;
  if (type == "block") return EntryType::kBlockDevice;
  if (type == "fifo") return EntryType::kFifo;
  return ctx.Fail(fmt::format("unknown type \"{}\"", type));
}

// Everything a file entry states besides its chunks.
Result<LayerEntry> ParseFileEntry(const Json& j, std::string name, std::string_view type, const EntryContext& ctx) {
  LayerEntry e;
  e.name = std::move(name);
  e.type = LAZYFS_TRY(ParseType(type, ctx));
  e.mode = static_cast<uint32_t>(LAZYFS_TRY(GetUint(j, "mode", kMaxMode, ctx)) & 07777);
  e.uid = static_cast<uint32_t>(LAZYFS_TRY(GetUint(j, "uid", UINT32_MAX, ctx)));
  e.gid = static_cast<uint32_t>(LAZYFS_TRY(GetUint(j, "gid", UINT32_MAX, ctx)));
  std::string modtime = LAZYFS_TRY(GetString(j, "modtime", ctx));
  if (!modtime.empty() && !ParseRfc3339(modtime, &e.mtime_sec, &e.mtime_nsec)) {
    return ctx.Fail(fmt::format("modtime \"{}\" is not RFC 3339", modtime));
  }
  e.link_target = LAZYFS_TRY(GetString(j, "linkName", ctx));
  if ((e.type == EntryType::kSymlink || e.type == EntryType::kHardlink) && e.link_target.empty()) {
    return ctx.Fail("link without linkName");
  }
  if (e.type == EntryType::kCharDevice || e.type == EntryType::kBlockDevice) {
    e.dev_major = static_cast<uint32_t>(LAZYFS_TRY(GetUint(j, "devMajor", UINT32_MAX, ctx)));
    e.dev_minor = static_cast<uint32_t>(LAZYFS_TRY(GetUint(j, "devMinor", UINT32_MAX, ctx)));
  }
  if (e.type == EntryType::kRegular) e.size = LAZYFS_TRY(GetUint(j, "size", kMaxFileSize - 1, ctx));
  if (auto it = j.find("xattrs"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return ctx.Fail("xattrs is not an object");
    for (const auto& [key, value] : it->items()) {
      if (!value.is_string()) return ctx.Fail(fmt::format("xattr {} is not a base64 string", key));
      std::optional<std::string> raw = Base64Decode(value.get_ref<const std::string&>());
      if (!raw) return ctx.Fail(fmt::format("xattr {} is not valid base64", key));
      e.xattrs.emplace_back(key, std::move(*raw));
    }
  }
  return e;
}

// Reads the data-location fields shared by `reg` (non-empty) and `chunk` entries.
Result<DeclaredChunk> ParseChunkFields(const Json& j, size_t toc_index, uint64_t toc_offset, const EntryContext& ctx) {
  DeclaredChunk c;
  c.toc_index = toc_index;
  if (j.find("offset") == j.end()) return ctx.Fail("file data without offset");
  c.offset = LAZYFS_TRY(GetUint(j, "offset", UINT64_MAX, ctx));
  if (c.offset >= toc_offset) {
    return ctx.Fail(fmt::format("offset {} is not before the TOC at {}", c.offset, toc_offset));
  }
  c.chunk_offset = LAZYFS_TRY(GetUint(j, "chunkOffset", kMaxFileSize, ctx));
  c.chunk_size = LAZYFS_TRY(GetUint(j, "chunkSize", kMaxFileSize, ctx));
  std::optional<Sha256Digest> digest = LAZYFS_TRY(GetDigest(j, "chunkDigest", ctx));
  if (!digest) return ctx.Fail("file data without chunkDigest");
  c.digest = *digest;
  return c;
}

// Checks that a file's chunks are contiguous and cover [0, size) exactly, and turns them into ChunkRefs
// whose blob span runs to the next member start (`starts` is sorted and unique).
Result<std::vector<ChunkRef>> ResolveChunks(const PendingFile& file, const std::vector<uint64_t>& starts,
                                            uint64_t toc_offset) {
  std::vector<ChunkRef> refs;
  uint64_t expected = 0;
  for (size_t k = 0; k < file.chunks.size(); ++k) {
    const DeclaredChunk& c = file.chunks[k];
    EntryContext ctx(c.toc_index, file.name);
    if (c.chunk_offset != expected) {
      return ctx.Fail(fmt::format("chunk at file offset {} but the previous chunk ends at {} ({})", c.chunk_offset,
                                  expected, c.chunk_offset > expected ? "gap" : "overlap"));
    }
    if (c.chunk_offset >= file.size) {
      return ctx.Fail(fmt::format("chunk at file offset {} is past the file size {}", c.chunk_offset, file.size));
    }
    uint64_t size = c.chunk_size;
    if (size == 0) {
      if (k + 1 != file.chunks.size()) return ctx.Fail("chunk without chunkSize is not the file's last chunk");
      size = file.size - c.chunk_offset;
    }
    if (size > file.size - c.chunk_offset) {
      return ctx.Fail(fmt::format("chunk [{}, +{}) runs past the file size {}", c.chunk_offset, size, file.size));
    }
    if (size > kMaxEstargzChunkSize) {
      return ctx.Fail(fmt::format("chunk of {} bytes exceeds the {} byte limit", size, kMaxEstargzChunkSize));
    }
    auto next = std::upper_bound(starts.begin(), starts.end(), c.offset);
    uint64_t end = next == starts.end() ? toc_offset : *next;
    refs.push_back(ChunkRef{.file_offset = c.chunk_offset, .size = size, .digest = c.digest,
                            .blob_offset = c.offset, .blob_length = std::min(end - c.offset, MaxMemberSpan(size))});
    expected += size;
  }
  if (expected != file.size) {
    return EntryContext(file.toc_index, file.name)
        .Fail(fmt::format("chunks cover {} of the file's {} bytes", expected, file.size));
  }
  return refs;
}

}  // namespace

Result<LayerIndex> ParseEstargzToc(std::string_view toc_json, uint64_t toc_offset) {
  Json toc = Json::parse(toc_json, nullptr, /*allow_exceptions=*/false);
  if (toc.is_discarded()) return Corrupt("TOC is not valid JSON");
  if (!toc.is_object()) return Corrupt("TOC is not a JSON object");
  auto version = toc.find("version");
  if (version == toc.end() || !version->is_number_integer()) return Corrupt("TOC has no integer version");
  if (version->get<int64_t>() != 1) {
    return Unsupported(fmt::format("TOC version {} (only 1 is defined)", version->get<int64_t>()));
  }
  auto entries = toc.find("entries");
  if (entries == toc.end() || !entries->is_array()) return Corrupt("TOC has no entries array");

  LayerIndex index;
  std::vector<PendingFile> files;
  std::map<std::string, size_t, std::less<>> last_file_by_name;  // name -> index into files
  std::vector<uint64_t> starts;                                    // every member start a chunk names
  bool seen_prefetch_landmark = false;

  for (size_t i = 0; i < entries->size(); ++i) {
    const Json& j = (*entries)[i];
    if (!j.is_object()) return Corrupt(fmt::format("TOC entry {} is not an object", i));
    EntryContext unnamed(i, "");
    std::string name = LAZYFS_TRY(GetString(j, "name", unnamed));
    std::string type = LAZYFS_TRY(GetString(j, "type", unnamed));
    EntryContext ctx(i, name);
    if (name.empty()) return ctx.Fail("entry without name");
    if (type.empty()) return ctx.Fail("entry without type");

    if (type == "chunk") {
      auto it = last_file_by_name.find(name);
      if (it == last_file_by_name.end()) return ctx.Fail("chunk entry without a preceding non-empty reg entry");
      DeclaredChunk c = LAZYFS_TRY(ParseChunkFields(j, i, toc_offset, ctx));
      if (c.chunk_offset == 0) return ctx.Fail("chunk entry without chunkOffset");
      starts.push_back(c.offset);
      files[it->second].chunks.push_back(c);
      continue;
    }

    LayerEntry entry = LAZYFS_TRY(ParseFileEntry(j, name, type, ctx));
    // An unsafe name is no format file: it goes on to the union builder, which reports and drops it.
    std::optional<std::string> clean = NormalizeEntryName(name);
    bool format_file = clean && IsFormatFile(*clean);
    if (entry.type == EntryType::kRegular) {
      // A later reg of the same name starts a new file: chunks attach to the latest one.
      last_file_by_name.erase(name);
      if (entry.size > 0) {
        DeclaredChunk first = LAZYFS_TRY(ParseChunkFields(j, i, toc_offset, ctx));
        if (first.chunk_offset != 0) return ctx.Fail("reg entry with a non-zero chunkOffset");
        starts.push_back(first.offset);
        PendingFile file{.toc_index = i, .name = name, .size = entry.size, .entry_index = {}, .chunks = {first}};
        if (!format_file) file.entry_index = index.entries.size();
        last_file_by_name[name] = files.size();
        files.push_back(std::move(file));
      }
    }
    if (format_file) {
      if (*clean == kPrefetchLandmark && !seen_prefetch_landmark) {
        seen_prefetch_landmark = true;
        for (const LayerEntry& before : index.entries) index.prefetch.push_back(before.name);
      }
      continue;
    }
    index.entries.push_back(std::move(entry));
  }

  std::sort(starts.begin(), starts.end());
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  for (const PendingFile& file : files) {
    std::vector<ChunkRef> refs = LAZYFS_TRY(ResolveChunks(file, starts, toc_offset));
    if (file.entry_index) index.entries[*file.entry_index].chunks = std::move(refs);
  }
  index.lazy = true;
  return index;
}

}  // namespace lazyfs::fs
