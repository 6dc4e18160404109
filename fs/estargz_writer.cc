// Writing eStargz layers (`lazyfs convert`): reads a tar layer with libarchive and writes a blob that is
// at once a valid gzip'd tar (what Docker, containerd, podman and umoci unpack) and an eStargz layer:
// libarchive's pax writer produces the tar bytes into a sink we control, and we cut gzip members exactly
// where the spec wants gzip headers: at the start of the blob, at every chunk of every non-empty regular
// file (so a chunk's `offset` is its member's start), at the TOC's tar header, and the footer.
//
// Entry order follows ctr-remote (estargz/build.go): without prioritized files .no.prefetch.landmark comes
// first; with them, each prioritized file in the given order, preceded by its parent directory entries and
// (for a hardlink) its target, then .prefetch.landmark, then everything else in source order. A tar cannot
// be re-read, so that case spools the raw source to an unlinked temporary file and makes three passes
// (scan names, stash the moved entries, stream the rest).
//
// Thread safety: WriteEstargzLayer is reentrant; each call owns all its state.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/base64.h"
#include "common/fd.h"
#include "common/log.h"
#include "fs/entry_name.h"
#include "fs/estargz.h"
#include "fs/estargz_gzip_writer.h"
#include "fs/estargz_internal.h"

namespace lazyfs::fs {
namespace {

using estargz_internal::ArchiveEntryPtr;
using estargz_internal::ArchiveErrorString;
using estargz_internal::ArchiveReadPtr;
using estargz_internal::ArchiveWritePtr;
using estargz_internal::IsFormatFile;
using estargz_internal::MemberWriter;
using TocJson = nlohmann::ordered_json;  // keeps Go's field order, for TOCs that read like ctr-remote's

constexpr size_t kSourceBufferSize = 1 << 20;
constexpr uint64_t kProgressInterval = 4 << 20;
constexpr char kLandmarkContents = 0xf;  // the spec's "4 bits contents 0xf", as one byte like ctr-remote

// Pulls bytes of one entry's payload: up to `capacity` into `buffer`; 0 at its end.
using PayloadReader = std::function<Result<size_t>(char* buffer, size_t capacity)>;

// UTC RFC 3339 with the fraction only when there is one (Go's RFC3339Nano trims zeros). nullopt for zero
// (Go omits an unset modtime) and for years RFC 3339 cannot spell.
std::optional<std::string> FormatModtime(int64_t sec, long nsec) {
  if (sec == 0 && nsec == 0) return std::nullopt;
  using namespace std::chrono;
  sys_seconds t{seconds(sec)};
  sys_days day = floor<days>(t);
  year_month_day ymd(day);
  if (int(ymd.year()) < 0 || int(ymd.year()) > 9999) return std::nullopt;
  hh_mm_ss<seconds> hms(t - day);
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", int(ymd.year()), unsigned(ymd.month()),
                                unsigned(ymd.day()), hms.hours().count(), hms.minutes().count(), hms.seconds().count());
  if (nsec > 0) {
    std::string fraction = fmt::format("{:09}", nsec);
    while (fraction.back() == '0') fraction.pop_back();
    out += "." + fraction;
  }
  return out + "Z";
}

// Names a layer must not carry: absolute paths and ".." components would escape the extraction root.
bool UnsafeName(std::string_view name) { return name.empty() || !NormalizeEntryName(name); }

Result<UniqueFd> OpenSpool(const std::string& dir_option) {
  std::string dir = dir_option.empty() ? TempRoot() : dir_option;
  int fd = ::open(dir.c_str(), O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
  if (fd >= 0) return UniqueFd(fd);
  // Filesystems without O_TMPFILE: a named file, unlinked at once.
  std::string path = dir + "/lazyfs-estargz-XXXXXX";
  fd = ::mkstemp(path.data());
  if (fd < 0) return PosixError(errno, "create spool file in " + dir);
  ::unlink(path.c_str());
  return UniqueFd(fd);
}

// Feeds libarchive from the caller's ReadCallback (optionally copying the raw bytes into a spool file) and
// reports progress. Remembers the callback's own error so it is returned instead of libarchive's echo.
struct SourceFeed {
  const ReadCallback* source = nullptr;
  const ProgressCallback* progress = nullptr;
  int tee_fd = -1;  // a fresh spool file, appended to in order: its offsets are `consumed`
  std::vector<char> buffer = std::vector<char>(kSourceBufferSize);
  uint64_t consumed = 0;
  uint64_t next_report = kProgressInterval;
  std::optional<Error> error = std::nullopt;

  static la_ssize_t Read(archive* a, void* client, const void** out) {
    auto* self = static_cast<SourceFeed*>(client);
    Result<size_t> n = (*self->source)(self->buffer.data(), self->buffer.size());
    if (n && *n > self->buffer.size()) n = Internal("source read callback overran its buffer");
    if (n && self->tee_fd >= 0) {
      Status s = WriteAll(self->tee_fd, {self->buffer.data(), *n}, "spool file");
      if (!s) n = s.error();
    }
    if (!n) {
      self->error = n.error();
      archive_set_error(a, EIO, "%s", n.error().message().c_str());
      return -1;
    }
    self->consumed += *n;
    if (self->progress != nullptr && *self->progress && self->consumed >= self->next_report) {
      (*self->progress)(self->consumed);
      self->next_report = self->consumed + kProgressInterval;
    }
    *out = self->buffer.data();
    return static_cast<la_ssize_t>(*n);
  }
};

ArchiveReadPtr NewTarReader() {
  ArchiveReadPtr a(archive_read_new());
  if (a) {
    archive_read_support_filter_all(a.get());  // uncompressed, gzip, zstd, ...: detected
    archive_read_support_format_tar(a.get());  // ustar, pax, GNU
    archive_read_support_format_empty(a.get());
  }
  return a;
}

// Opens a tar reader on the caller's source.
Result<ArchiveReadPtr> OpenSourceReader(SourceFeed* feed) {
  ArchiveReadPtr a = NewTarReader();
  if (!a) return Internal("archive_read_new failed");
  if (archive_read_open(a.get(), feed, nullptr, &SourceFeed::Read, nullptr) != ARCHIVE_OK) {
    if (feed->error) return *feed->error;
    return Corrupt("source layer: " + ArchiveErrorString(a.get()));
  }
  return a;
}

// Opens a tar reader on the spool file, from its start.
Result<ArchiveReadPtr> OpenSpoolReader(int fd) {
  if (::lseek(fd, 0, SEEK_SET) < 0) return PosixError(errno, "seek spool file");
  ArchiveReadPtr a = NewTarReader();
  if (!a) return Internal("archive_read_new failed");
  if (archive_read_open_fd(a.get(), fd, kSourceBufferSize) != ARCHIVE_OK) {
    return Corrupt("source layer: " + ArchiveErrorString(a.get()));
  }
  return a;
}

// The next header, or nullptr at the end.
Result<archive_entry*> NextHeader(archive* a, const SourceFeed* feed, uint64_t index) {
  archive_entry* entry = nullptr;
  int r = archive_read_next_header(a, &entry);
  if (r == ARCHIVE_EOF) return static_cast<archive_entry*>(nullptr);
  if (r < ARCHIVE_WARN) {
    if (feed != nullptr && feed->error) return *feed->error;
    return Corrupt(fmt::format("source layer, entry {}: {}", index, ArchiveErrorString(a)));
  }
  if (r == ARCHIVE_WARN) LogDebug("source layer, entry {}: {}", index, ArchiveErrorString(a));
  return entry;
}

PayloadReader ArchivePayload(archive* a) {
  return [a](char* buffer, size_t capacity) -> Result<size_t> {
    la_ssize_t n = archive_read_data(a, buffer, capacity);
    if (n < 0) return Corrupt("source layer: " + ArchiveErrorString(a));
    return static_cast<size_t>(n);
  };
}

// What the first pass learns about each source entry, to decide the order.
struct ScannedEntry {
  std::optional<std::string> clean_name;  // nullopt: an unsafe name, which Emit refuses
  std::string hardlink_target;  // cleaned; empty unless a (safe) hardlink
  bool format_file = false;     // dropped: an old TOC or landmark from an earlier conversion
};

// Computes ctr-remote's prioritized order (estargz/build.go moveRec) as indices into the scanned entries.
class PriorityOrder {
 public:
  explicit PriorityOrder(const std::vector<ScannedEntry>& scanned) : scanned_(scanned), moved_(scanned.size()) {
    for (size_t i = 0; i < scanned.size(); ++i) {
      if (!scanned[i].format_file && scanned[i].clean_name) by_name_[*scanned[i].clean_name].push_back(i);
    }
  }

  // Moves `name` (with its parents and hardlink target) forward. False if the layer has no such entry.
  // A leading "/" names the same file (a path as the container sees it); a name with ".." is never found.
  bool Move(std::string_view name, int depth = 0) {
    // A hostile hardlink cycle must not recurse forever; real chains are one step long.
    if (depth > 64) return false;
    while (name.starts_with('/')) name.remove_prefix(1);
    std::optional<std::string> normalized = NormalizeEntryName(name);
    if (!normalized) return false;
    const std::string& clean = *normalized;
    auto it = by_name_.find(clean);
    if (!clean.empty()) {
      if (it == by_name_.end()) return false;
      size_t slash = clean.rfind('/');
      // A missing parent entry is fine: extraction tools create parent directories themselves.
      Move(slash == std::string::npos ? std::string() : clean.substr(0, slash), depth + 1);
    }
    if (it == by_name_.end()) return false;
    for (size_t i : it->second) {
      if (!moved_[i] && !scanned_[i].hardlink_target.empty()) Move(scanned_[i].hardlink_target, depth + 1);
    }
    for (size_t i : it->second) {
      if (!moved_[i]) {
        moved_[i] = true;
        order_.push_back(i);
      }
    }
    return true;
  }

  const std::vector<size_t>& order() const { return order_; }
  bool moved(size_t i) const { return moved_[i]; }

 private:
  const std::vector<ScannedEntry>& scanned_;
  std::unordered_map<std::string, std::vector<size_t>> by_name_;
  std::vector<bool> moved_;
  std::vector<size_t> order_;
};

// One conversion: the tar writer, the member cutter and the TOC being built.
class Converter {
 public:
  Converter(int out_fd, const EstargzWriterOptions& options)
      : options_(options), out_(out_fd, options.compression_level), chunk_buffer_(options.chunk_size, '\0') {}
  ~Converter() {
    // archive_write_free closes an unfinished archive, writing its end blocks: after a failure they must
    // not reach the blob.
    discard_ = true;
    tar_.reset();
  }
  Converter(const Converter&) = delete;
  Converter& operator=(const Converter&) = delete;

  Status Open() {
    LAZYFS_TRY(out_.Init());
    tar_.reset(archive_write_new());
    if (!tar_) return Internal("archive_write_new failed");
    // Full pax (not restricted) so sub-second mtimes reach the tar as they reach the TOC; it still adds an
    // extended header only to entries that need one.
    if (archive_write_set_format_pax(tar_.get()) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(tar_.get(), 0) != ARCHIVE_OK ||
        archive_write_open(tar_.get(), this, nullptr, &Converter::TarSink, nullptr) != ARCHIVE_OK) {
      return Internal("tar writer: " + ArchiveErrorString(tar_.get()));
    }
    return Ok();
  }

  // Writes one entry (header, payload cut into chunk members, TOC entries). Format files of an earlier
  // conversion are dropped, as ctr-remote does.
  Status Emit(archive_entry* entry, const PayloadReader& payload) {
    const char* raw_name = archive_entry_pathname(entry);
    std::string name = raw_name != nullptr ? raw_name : "";
    ++emitted_;
    if (UnsafeName(name)) return Corrupt(fmt::format("source entry {} (\"{}\"): unsafe name", emitted_, name));
    if (IsFormatFile(*NormalizeEntryName(name))) return Ok();  // safe, so it has a normal form
    return EmitChecked(entry, name, payload);
  }

  Status EmitLandmark(std::string_view name) {
    ArchiveEntryPtr entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), std::string(name).c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_size(entry.get(), 1);
    bool done = false;
    return EmitChecked(entry.get(), std::string(name), [&done](char* buffer, size_t capacity) -> Result<size_t> {
      if (done || capacity == 0) return size_t{0};
      buffer[0] = kLandmarkContents;
      done = true;
      return size_t{1};
    });
  }

  // Writes the TOC member (its tar entry and the end-of-archive blocks) and the footer.
  Result<EstargzLayerInfo> Finish() {
    LAZYFS_TRY(out_.CloseMember());
    uint64_t toc_offset = out_.offset();
    TocJson toc;
    toc["version"] = 1;
    toc["entries"] = std::move(toc_entries_);
    std::string json = toc.dump();
    ArchiveEntryPtr entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), std::string(kTocName).c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(json.size()));
    LAZYFS_TRY(TarCall(archive_write_header(tar_.get(), entry.get()), "TOC header"));
    la_ssize_t n = archive_write_data(tar_.get(), json.data(), json.size());
    if (n != static_cast<la_ssize_t>(json.size())) LAZYFS_TRY(TarCall(ARCHIVE_FATAL, "TOC data"));
    LAZYFS_TRY(TarCall(archive_write_close(tar_.get()), "end of archive"));
    LAZYFS_TRY(out_.CloseMember());
    LAZYFS_TRY(out_.WriteRaw(MakeEstargzFooter(toc_offset)));
    LAZYFS_TRY(out_.Flush());
    EstargzLayerInfo info;
    info.blob_size = out_.offset();
    info.blob_digest = out_.FinishDigest();
    info.diff_id = diff_hasher_.Finish();
    info.toc_digest = Sha256Of(json);
    info.toc_offset = toc_offset;
    info.uncompressed_size = uncompressed_size_;
    return info;
  }

 private:
  static la_ssize_t TarSink(archive* a, void* client, const void* buffer, size_t length) {
    auto* self = static_cast<Converter*>(client);
    if (self->discard_) return static_cast<la_ssize_t>(length);
    std::string_view bytes(static_cast<const char*>(buffer), length);
    Status s = self->out_.Write(bytes);
    if (!s) {
      self->sink_error_ = s.error();
      archive_set_error(a, EIO, "%s", s.error().message().c_str());
      return -1;
    }
    self->diff_hasher_.Update(bytes);
    self->uncompressed_size_ += length;
    return static_cast<la_ssize_t>(length);
  }

  Status TarCall(int r, std::string_view what) {
    if (r >= ARCHIVE_WARN) return Ok();
    if (sink_error_) return *sink_error_;
    return Internal(fmt::format("tar writer, {}: {}", what, ArchiveErrorString(tar_.get())));
  }

  Status EmitChecked(archive_entry* entry, const std::string& name, const PayloadReader& payload) {
    auto fail = [&](std::string_view why) {
      return Corrupt(fmt::format("source entry {} (\"{}\"): {}", emitted_, name, why));
    };
    TocJson j;
    j["name"] = name;
    const char* hardlink = archive_entry_hardlink(entry);
    mode_t type = archive_entry_filetype(entry);
    uint64_t size = 0;
    std::string type_name;
    std::string link;
    if (hardlink != nullptr) {
      if (UnsafeName(hardlink)) return fail(fmt::format("unsafe hardlink target \"{}\"", hardlink));
      type_name = "hardlink";
      link = hardlink;
    } else if (type == AE_IFREG) {
      type_name = "reg";
      if (archive_entry_size(entry) < 0) return fail("negative size");
      size = static_cast<uint64_t>(archive_entry_size(entry));
    } else if (type == AE_IFDIR) {
      type_name = "dir";
      // The tar writer spells directories with a trailing slash; the TOC names what the tar holds.
      if (!name.ends_with('/')) j["name"] = name + "/";
    } else if (type == AE_IFLNK) {
      type_name = "symlink";
      const char* target = archive_entry_symlink(entry);
      link = target != nullptr ? target : "";
      if (link.empty()) return fail("symlink without a target");
    } else if (type == AE_IFCHR) {
      type_name = "char";
    } else if (type == AE_IFBLK) {
      type_name = "block";
    } else if (type == AE_IFIFO) {
      type_name = "fifo";
    } else {
      return Unsupported(fmt::format("source entry {} (\"{}\"): file type {:o} has no eStargz form", emitted_, name,
                                     static_cast<unsigned>(type)));
    }
    j["type"] = type_name;
    if (size > 0) j["size"] = size;
    if (archive_entry_mtime_is_set(entry)) {
      if (auto t = FormatModtime(archive_entry_mtime(entry), archive_entry_mtime_nsec(entry))) j["modtime"] = *t;
    }
    if (!link.empty()) j["linkName"] = link;
    if (unsigned perm = archive_entry_perm(entry) & 07777; perm != 0) j["mode"] = perm;
    if (la_int64_t uid = archive_entry_uid(entry); uid != 0) j["uid"] = uid;
    if (la_int64_t gid = archive_entry_gid(entry); gid != 0) j["gid"] = gid;
    if (type_name == "char" || type_name == "block") {
      if (unsigned major = archive_entry_rdevmajor(entry); major != 0) j["devMajor"] = major;
      if (unsigned minor = archive_entry_rdevminor(entry); minor != 0) j["devMinor"] = minor;
    }
    // Go's field order (TOCEntry: ... gid, offset, devMajor, devMinor, xattrs, digest, chunkOffset, chunkSize,
    // chunkDigest): a file with data gets its `offset` here, set once the chunk's member starts.
    if (type_name == "reg" && size > 0) j["offset"] = 0;
    if (archive_entry_xattr_reset(entry) > 0) {
      // Go's encoder writes map keys sorted, so xattrs are collected sorted rather than in tar order.
      std::map<std::string, std::string> sorted;
      const char* xname = nullptr;
      const void* value = nullptr;
      size_t value_size = 0;
      while (archive_entry_xattr_next(entry, &xname, &value, &value_size) == ARCHIVE_OK) {
        sorted[xname] = Base64Encode({static_cast<const char*>(value), value_size});
      }
      TocJson xattrs = TocJson::object();
      for (auto& [key, encoded] : sorted) xattrs[key] = std::move(encoded);
      j["xattrs"] = std::move(xattrs);
    }

    // JSON strings are UTF-8; Go's encoder would silently replace bad bytes, making the TOC name a file
    // the tar does not hold. Refuse instead.
    try {
      (void)j.dump();
    } catch (const nlohmann::json::exception&) {
      return Unsupported(fmt::format("source entry {} (\"{}\"): name, link or xattr is not valid UTF-8, which a "
                                     "TOC cannot carry", emitted_, name));
    }

    // The tar gets what the TOC says: no sparse map (holes are written as zeros, which chunk dedupe
    // absorbs), no payload on links and special files, no times the TOC cannot carry.
    archive_entry_sparse_clear(entry);
    archive_entry_unset_atime(entry);
    archive_entry_unset_ctime(entry);
    archive_entry_unset_birthtime(entry);
    if (type_name != "reg") archive_entry_set_size(entry, 0);
    if (size >= (uint64_t{1} << 50)) return fail(fmt::format("size {} is beyond what eStargz readers accept", size));
    LAZYFS_TRY(TarCall(archive_write_header(tar_.get(), entry), "header of " + name));

    if (type_name != "reg") {
      toc_entries_.push_back(std::move(j));
      return TarCall(archive_write_finish_entry(tar_.get()), "end of " + name);
    }
    j["digest"] = "";  // filled in below; placed here to keep Go's field order
    size_t file_toc_index = toc_entries_.size();
    Sha256Hasher file_hasher;
    for (uint64_t written = 0; written < size;) {
      uint64_t chunk_size = std::min<uint64_t>(options_.chunk_size, size - written);
      // Each chunk starts its own gzip member, so its offset is where a reader starts inflating.
      LAZYFS_TRY(out_.CloseMember());
      if (written > 0) {
        j = TocJson();
        j["name"] = name;
        j["type"] = "chunk";
      }
      j["offset"] = out_.offset();
      if (written > 0) j["chunkOffset"] = written;
      if (written + chunk_size < size) j["chunkSize"] = chunk_size;  // the spec: the last chunk says zero
      std::string_view chunk(chunk_buffer_.data(), chunk_size);
      for (size_t got = 0; got < chunk_size;) {
        size_t n = LAZYFS_TRY(payload(chunk_buffer_.data() + got, chunk_size - got));
        if (n == 0) return fail(fmt::format("payload ends at {} of {} bytes", written + got, size));
        got += n;
      }
      file_hasher.Update(chunk);
      j["chunkDigest"] = Sha256Of(chunk).ToString();
      if (archive_write_data(tar_.get(), chunk.data(), chunk.size()) != static_cast<la_ssize_t>(chunk.size())) {
        LAZYFS_TRY(TarCall(ARCHIVE_FATAL, "data of " + name));
      }
      toc_entries_.push_back(std::move(j));
      written += chunk_size;
    }
    if (size == 0) toc_entries_.push_back(std::move(j));
    toc_entries_[file_toc_index]["digest"] = file_hasher.Finish().ToString();
    // The tar padding lands in the file's last member, like ctr-remote's.
    return TarCall(archive_write_finish_entry(tar_.get()), "end of " + name);
  }

  const EstargzWriterOptions& options_;
  MemberWriter out_;
  Sha256Hasher diff_hasher_;
  uint64_t uncompressed_size_ = 0;
  std::string chunk_buffer_;
  TocJson toc_entries_ = TocJson::array();
  uint64_t emitted_ = 0;
  std::optional<Error> sink_error_;
  bool discard_ = false;
  ArchiveWritePtr tar_;  // last: destroyed first, while the sink's state is alive
};

// Streams every source entry in order.
Status EmitAll(archive* a, const SourceFeed* feed, Converter& converter, const std::vector<bool>* skip) {
  for (uint64_t index = 0;; ++index) {
    archive_entry* entry = LAZYFS_TRY(NextHeader(a, feed, index));
    if (entry == nullptr) return Ok();
    if (skip != nullptr && index < skip->size() && (*skip)[index]) continue;
    LAZYFS_TRY(converter.Emit(entry, ArchivePayload(a)));
  }
}

// A prioritized entry held back while the spool is read in source order: its header and where its
// payload was copied in the stash file.
struct StashedEntry {
  ArchiveEntryPtr entry;
  uint64_t stash_offset = 0;
  uint64_t size = 0;
};

Status WritePrioritized(const ReadCallback& source, const ProgressCallback& progress,
                        const EstargzWriterOptions& options, Converter& converter) {
  // Pass 1: spool the raw source while learning its entry names.
  UniqueFd spool = LAZYFS_TRY(OpenSpool(options.spool_dir));
  std::vector<ScannedEntry> scanned;
  {
    SourceFeed feed{.source = &source, .progress = &progress, .tee_fd = spool.get()};
    ArchiveReadPtr a = LAZYFS_TRY(OpenSourceReader(&feed));
    for (;;) {
      archive_entry* entry = LAZYFS_TRY(NextHeader(a.get(), &feed, scanned.size()));
      if (entry == nullptr) break;
      const char* name = archive_entry_pathname(entry);
      const char* hardlink = archive_entry_hardlink(entry);
      ScannedEntry s;
      s.clean_name = NormalizeEntryName(name != nullptr ? name : "");
      s.format_file = s.clean_name && IsFormatFile(*s.clean_name);
      if (hardlink != nullptr) s.hardlink_target = NormalizeEntryName(hardlink).value_or("");
      scanned.push_back(std::move(s));
    }
    if (progress) progress(feed.consumed);
  }
  PriorityOrder order(scanned);
  for (const std::string& name : options.prioritized_files) {
    if (!order.Move(name)) LogWarn("eStargz: prioritized file {} is not in the layer", name);
  }

  // Pass 2: stash the moved entries' headers and payloads.
  UniqueFd stash = LAZYFS_TRY(OpenSpool(options.spool_dir));
  std::vector<StashedEntry> stashed(scanned.size());
  std::vector<bool> moved(scanned.size());
  {
    ArchiveReadPtr a = LAZYFS_TRY(OpenSpoolReader(spool.get()));
    uint64_t stash_end = 0;  // the stash is only appended to, so this is also its file offset
    std::string buffer(kSourceBufferSize, '\0');
    for (size_t index = 0; index < scanned.size(); ++index) {
      archive_entry* entry = LAZYFS_TRY(NextHeader(a.get(), nullptr, index));
      if (entry == nullptr) return Corrupt("source layer changed between passes");
      if (!order.moved(index)) continue;
      moved[index] = true;
      StashedEntry& s = stashed[index];
      s.entry.reset(archive_entry_clone(entry));
      if (!s.entry) return Internal("archive_entry_clone failed");
      s.stash_offset = stash_end;
      for (;;) {
        la_ssize_t n = archive_read_data(a.get(), buffer.data(), buffer.size());
        if (n < 0) return Corrupt("source layer: " + ArchiveErrorString(a.get()));
        if (n == 0) break;
        LAZYFS_TRY(WriteAll(stash.get(), {buffer.data(), static_cast<size_t>(n)}, "stash file"));
        stash_end += static_cast<uint64_t>(n);
      }
      s.size = stash_end - s.stash_offset;
    }
  }

  // Output: the prioritized entries in order, the landmark, then the rest (pass 3).
  for (size_t index : order.order()) {
    StashedEntry& s = stashed[index];
    uint64_t read = 0;
    int fd = stash.get();
    PayloadReader payload = [&s, &read, fd](char* buffer, size_t capacity) -> Result<size_t> {
      uint64_t n = std::min<uint64_t>(capacity, s.size - read);
      if (n == 0) return size_t{0};
      std::string bytes = LAZYFS_TRY(PreadExact(fd, s.stash_offset + read, n, "stash file"));
      std::memcpy(buffer, bytes.data(), bytes.size());
      read += n;
      return static_cast<size_t>(n);
    };
    LAZYFS_TRY(converter.Emit(s.entry.get(), payload));
    s.entry.reset();
  }
  LAZYFS_TRY(converter.EmitLandmark(kPrefetchLandmark));
  ArchiveReadPtr a = LAZYFS_TRY(OpenSpoolReader(spool.get()));
  return EmitAll(a.get(), nullptr, converter, &moved);
}

}  // namespace

Result<EstargzLayerInfo> WriteEstargzLayer(const ReadCallback& source, int out_fd, const EstargzWriterOptions& options,
                                           const ProgressCallback& progress) {
  if (options.chunk_size == 0 || options.chunk_size > kMaxEstargzChunkSize) {
    return InvalidArgument(fmt::format("eStargz chunk size {} is not in [1, {}]", options.chunk_size,
                                       kMaxEstargzChunkSize));
  }
  if (options.compression_level < 0 || options.compression_level > 9) {
    return InvalidArgument(fmt::format("gzip level {} is not in [0, 9]", options.compression_level));
  }
  Converter converter(out_fd, options);
  LAZYFS_TRY(converter.Open());
  if (options.prioritized_files.empty()) {
    LAZYFS_TRY(converter.EmitLandmark(kNoPrefetchLandmark));
    SourceFeed feed{.source = &source, .progress = &progress};
    ArchiveReadPtr a = LAZYFS_TRY(OpenSourceReader(&feed));
    LAZYFS_TRY(EmitAll(a.get(), &feed, converter, nullptr));
    if (progress) progress(feed.consumed);
  } else {
    LAZYFS_TRY(WritePrioritized(source, progress, options, converter));
  }
  return converter.Finish();
}

}  // namespace lazyfs::fs
