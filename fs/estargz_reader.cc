// Reading eStargz layers: fetches the footer and the TOC gzip member through a BlobReader, pins the TOC to
// the layer descriptor's toc.digest annotation, and parses it; inflates single chunk members for reads.
//
// Thread safety: free functions, reentrant (BlobReader is thread-safe by contract).
#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <charconv>
#include <string>

#include "common/log.h"
#include "fs/entry_name.h"
#include "fs/estargz.h"
#include "fs/estargz_internal.h"

namespace lazyfs::fs {
namespace {

using estargz_internal::ArchiveErrorString;
using estargz_internal::ArchiveReadPtr;
using estargz_internal::GzipInflater;

// A TOC inflates to far more than its compressed size, but a gzip bomb must not exhaust memory.
constexpr int64_t kMaxTocJsonSize = int64_t{1} << 30;

// The TOC member is a gzip'd tar whose first entry is stargz.index.json (then the end-of-archive blocks).
Result<std::string> ExtractTocJson(std::string_view member) {
  ArchiveReadPtr a(archive_read_new());
  if (!a) return Internal("archive_read_new failed");
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_memory(a.get(), member.data(), member.size()) != ARCHIVE_OK) {
    return Corrupt("TOC member: " + ArchiveErrorString(a.get()));
  }
  archive_entry* entry = nullptr;
  int r = archive_read_next_header(a.get(), &entry);
  if (r == ARCHIVE_EOF) return Corrupt("TOC member holds no tar entry");
  if (r < ARCHIVE_WARN) return Corrupt("TOC member: " + ArchiveErrorString(a.get()));
  const char* name = archive_entry_pathname(entry);
  if (name == nullptr || NormalizeEntryName(name) != kTocName) {
    return Corrupt(fmt::format("TOC member's entry is \"{}\", not {}", name ? name : "", kTocName));
  }
  if (archive_entry_filetype(entry) != AE_IFREG) return Corrupt("TOC entry is not a regular file");
  int64_t size = archive_entry_size(entry);
  if (size < 0 || size > kMaxTocJsonSize) {
    return Corrupt(fmt::format("TOC JSON of {} bytes exceeds the {} byte limit", size, kMaxTocJsonSize));
  }
  std::string json(static_cast<size_t>(size), '\0');
  size_t got = 0;
  while (got < json.size()) {
    la_ssize_t n = archive_read_data(a.get(), json.data() + got, json.size() - got);
    if (n < 0) return Corrupt("TOC member: " + ArchiveErrorString(a.get()));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got != json.size()) return Corrupt(fmt::format("TOC JSON truncated: {} of {} bytes", got, json.size()));
  return json;
}

// The toc-offset annotation as a number, if present and well formed.
std::optional<uint64_t> TocOffsetHint(const fetch::Descriptor& layer) {
  std::optional<std::string> text = layer.Annotation(fetch::kAnnotationTocOffset);
  uint64_t offset = 0;
  if (!text) return std::nullopt;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), offset);
  if (ec != std::errc() || end != text->data() + text->size()) return std::nullopt;
  return offset;
}

}  // namespace

Result<LayerIndex> ReadEstargzIndex(fetch::BlobReader& blobs, const fetch::Descriptor& layer) {
  const std::string where = "eStargz layer " + layer.digest.ToString();
  uint64_t blob_size = LAZYFS_TRY(blobs.Size(layer.digest));
  if (blob_size < kEstargzFooterSize) return Unsupported(where + ": too small to hold an eStargz footer");
  // Nothing but the manifest's toc.digest annotation pins a TOC (and so the chunk digests it lists) to the
  // image: without it the layer is not trusted lazily and takes the verified whole-layer path instead.
  auto annotation = layer.annotations.find(std::string(fetch::kAnnotationTocDigest));
  bool pinned = annotation != layer.annotations.end();
  // One request for the footer and, usually, the whole TOC before it: the footer alone would cost a round
  // trip of its own before the TOC's (on a 20 ms link, a tenth of a small image's mount). With lazyfs
  // convert's toc-offset hint the request covers exactly the TOC, however big (a base layer's TOC is
  // ~0.5 MB); otherwise the last kEstargzTailRead bytes, and a TOC that started earlier costs a second
  // request. A layer whose TOC will not be used only needs its footer read, to tell eStargz from plain gzip.
  uint64_t tail_bytes = pinned ? std::max(kEstargzFooterSize, kEstargzTailRead) : kEstargzFooterSize;
  if (std::optional<uint64_t> hint = TocOffsetHint(layer); pinned && hint && *hint < blob_size - kEstargzFooterSize &&
                                                           blob_size - *hint <= kMaxTocCompressedSize + kEstargzFooterSize) {
    tail_bytes = blob_size - *hint;
  }
  uint64_t tail_offset = blob_size - std::min(blob_size, tail_bytes);
  std::string tail = LAZYFS_TRY(blobs.ReadRange(layer.digest, tail_offset, blob_size - tail_offset));
  Result<uint64_t> parsed = ParseEstargzFooter(std::string_view(tail).substr(tail.size() - kEstargzFooterSize));
  if (!parsed) return Unsupported(where + ": not eStargz (" + parsed.error().message() + ")");
  uint64_t toc_offset = *parsed;
  uint64_t toc_end = blob_size - kEstargzFooterSize;
  if (toc_offset >= toc_end) {
    return Corrupt(fmt::format("{}: footer points at TOC offset {} but the footer starts at {}", where, toc_offset,
                               toc_end));
  }
  if (toc_end - toc_offset > kMaxTocCompressedSize) {
    return Corrupt(fmt::format("{}: TOC member of {} bytes exceeds the {} byte limit", where, toc_end - toc_offset,
                               kMaxTocCompressedSize));
  }
  if (!pinned) {
    return Unsupported(fmt::format("{}: no {} annotation, so its TOC cannot be verified", where,
                                   fetch::kAnnotationTocDigest));
  }
  // The TOC member: what the tail holds of it, after what it does not.
  std::string member;
  if (toc_offset < tail_offset) {
    member = LAZYFS_TRY(blobs.ReadRange(layer.digest, toc_offset, tail_offset - toc_offset));
    member.append(tail, 0, toc_end - tail_offset);
  } else {
    member = tail.substr(toc_offset - tail_offset, toc_end - toc_offset);
  }
  Result<std::string> json = ExtractTocJson(member);
  if (!json) return std::move(json).error().Context(where);

  std::optional<Sha256Digest> want = Sha256Digest::Parse(annotation->second);
  if (!want) {
    return Corrupt(fmt::format("{}: toc.digest annotation \"{}\" is not a sha256 digest", where, annotation->second));
  }
  if (Sha256Digest got = Sha256Of(*json); got != *want) {
    return Corrupt(fmt::format("{}: TOC digest {} does not match the annotation {}", where, got.ToString(),
                               want->ToString()));
  }

  Result<LayerIndex> index = ParseEstargzToc(*json, toc_offset);
  if (!index) return std::move(index).error().Context(where);
  if (auto it = layer.annotations.find(std::string(fetch::kAnnotationUncompressedSize));
      it != layer.annotations.end()) {
    uint64_t size = 0;
    const std::string& text = it->second;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), size);
    if (ec == std::errc() && end == text.data() + text.size()) index->uncompressed_size = size;
  }
  return index;
}

Result<std::string> InflateChunk(std::string_view member, uint64_t size) {
  if (size > kMaxEstargzChunkSize) {
    return Corrupt(fmt::format("chunk of {} bytes exceeds the {} byte limit", size, kMaxEstargzChunkSize));
  }
  if (size == 0) return std::string();
  GzipInflater inflater;
  if (!inflater.ok()) return Internal("inflateInit2 failed");
  z_stream* z = inflater.stream();
  // Grow with the output instead of trusting `size` up front: a tiny garbage member must not cost a
  // gigabyte allocation.
  constexpr size_t kStep = 1 << 20;
  constexpr size_t kMaxFeed = 1 << 30;  // avail_in is 32 bits
  std::string out;
  size_t consumed = 0;
  for (;;) {
    if (z->avail_out == 0) {
      size_t produced = out.size();
      out.resize(std::min<uint64_t>(size, produced + kStep));
      z->next_out = reinterpret_cast<Bytef*>(out.data() + produced);
      z->avail_out = static_cast<uInt>(out.size() - produced);
    }
    if (z->avail_in == 0 && consumed < member.size()) {
      size_t take = std::min(member.size() - consumed, kMaxFeed);
      z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(member.data() + consumed));
      z->avail_in = static_cast<uInt>(take);
      consumed += take;
    }
    int r = inflate(z, Z_NO_FLUSH);
    size_t produced = out.size() - z->avail_out;
    if (produced == size) return out;  // the member may go on (tar padding, next headers): not ours
    if (r == Z_STREAM_END) {
      return Corrupt(fmt::format("chunk member inflates to {} bytes, want {}", produced, size));
    }
    if (r == Z_BUF_ERROR) {  // no progress possible: the input ran out
      return Corrupt(fmt::format("chunk member truncated after {} of {} bytes", produced, size));
    }
    if (r != Z_OK) {
      return Corrupt(fmt::format("chunk member is not valid gzip: {}", z->msg != nullptr ? z->msg : "zlib error"));
    }
  }
}

}  // namespace lazyfs::fs
