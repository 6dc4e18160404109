// eStargz, the lazy layer format (see DESIGN.md and the public eStargz spec): reading a layer's footer and
// TOC into a LayerIndex, inflating one chunk's gzip member, and writing eStargz layers from tar streams.
//
// Thread safety: free functions, reentrant.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/result.h"
#include "fetch/blob_reader.h"
#include "fetch/image.h"
#include "fs/layer_index.h"

namespace lazyfs::fs {

inline constexpr uint64_t kEstargzFooterSize = 51;
inline constexpr std::string_view kTocName = "stargz.index.json";
inline constexpr std::string_view kPrefetchLandmark = ".prefetch.landmark";
inline constexpr std::string_view kNoPrefetchLandmark = ".no.prefetch.landmark";
// Upper bound for a TOC we are willing to fetch and parse (a hostile footer may point anywhere).
// Bytes read from the end of a layer in the first request: the footer and, for all but the biggest layers,
// the whole TOC. About one round trip's worth of transfer on a 100 Mbit/s, 20 ms link, so a bigger TOC
// costs nothing extra (the second request is that much shorter) and a smaller one saves a round trip.
inline constexpr uint64_t kEstargzTailRead = 256 << 10;
inline constexpr uint64_t kMaxTocCompressedSize = 256 << 20;

// Upper bound for one chunk's uncompressed size. A chunk is inflated, verified and stored whole, so this
// bounds the memory and the cache bytes one small read can cost (a valid 1 GiB chunk of zeros is about
// 1 MB compressed). Real producers use 4 MiB (ctr-remote) or our own chunk_size; a TOC with bigger chunks
// is unusable, and its layer takes the whole-layer path, which cuts chunks of its own size.
inline constexpr uint64_t kMaxEstargzChunkSize = uint64_t{16} << 20;

// The most blob bytes a chunk of `size` uncompressed bytes is read from: deflate's worst case (stored
// blocks, 5 bytes per 64 KiB) plus a gzip header and trailer, with room to spare. A chunk's span in the
// blob runs to the next member start, which a hostile TOC can put gigabytes away; one read must not fetch
// them.
inline constexpr uint64_t MaxMemberSpan(uint64_t size) { return size + size / 256 + (uint64_t{64} << 10); }

// Parses the 51-byte footer; returns the TOC's offset in the blob. kCorrupt if it is not an eStargz footer.
Result<uint64_t> ParseEstargzFooter(std::string_view footer);
// The 51-byte footer pointing at a TOC gzip member that starts at `toc_offset` (byte-identical to what
// the Go estargz writer emits).
std::string MakeEstargzFooter(uint64_t toc_offset);

// Parses the TOC JSON of a blob of `blob_size` bytes whose TOC gzip member starts at `toc_offset`.
// Validates every entry (types, offsets inside [0, toc_offset), chunk coverage of each file, sizes) and
// computes each chunk's blob span. Format files (the TOC itself, landmarks) are dropped; entries before
// .prefetch.landmark go to LayerIndex::prefetch.
Result<LayerIndex> ParseEstargzToc(std::string_view toc_json, uint64_t toc_offset);

// Reads the footer and TOC of `layer` through `blobs`, verifies the TOC digest against the layer's
// containerd.io/snapshot/stargz/toc.digest annotation when present, and parses it.
// kUnsupported if the blob is not eStargz (no valid footer), so callers can fall back to the tar path.
Result<LayerIndex> ReadEstargzIndex(fetch::BlobReader& blobs, const fetch::Descriptor& layer);

// Returns the first `size` uncompressed bytes of the gzip member at the start of `member` (which may
// extend past the member's end). kCorrupt if it inflates to fewer bytes or is not gzip.
Result<std::string> InflateChunk(std::string_view member, uint64_t size);

struct EstargzWriterOptions {
  uint64_t chunk_size = 1 << 20;  // uncompressed bytes per chunk (a file's last chunk may be shorter)
  int compression_level = 6;      // zlib level
  // Files (names as in the tar, normalized without "./") read at start-up: written first, followed by
  // .prefetch.landmark. Empty: a .no.prefetch.landmark is written, as other eStargz tools do.
  std::vector<std::string> prioritized_files;
  // Where the source is spooled when prioritized_files reorders entries (an unlinked temporary file).
  // Empty: TempRoot() (common/fd.h: $TMPDIR, else /var/tmp).
  std::string spool_dir;
};

struct EstargzLayerInfo {
  Sha256Digest blob_digest;    // sha256 of the written (compressed) blob
  uint64_t blob_size = 0;
  Sha256Digest diff_id;        // sha256 of the uncompressed tar stream (the config's rootfs.diff_ids)
  Sha256Digest toc_digest;     // sha256 of the TOC JSON (the toc.digest annotation)
  uint64_t toc_offset = 0;     // where the TOC member starts (the toc-offset annotation)
  uint64_t uncompressed_size = 0;
};

// Pulls the source layer's bytes: fills up to `capacity` bytes of `buffer`, returns how many; 0 at end.
using ReadCallback = std::function<Result<size_t>(char* buffer, size_t capacity)>;
// Called now and then with the source bytes consumed so far (progress for long conversions).
using ProgressCallback = std::function<void(uint64_t bytes_read)>;

// Converts one layer (a tar stream, uncompressed, gzip or zstd: detected) into an eStargz blob written
// to `out_fd` from its current position. Entries with unsafe names are rejected (kCorrupt).
Result<EstargzLayerInfo> WriteEstargzLayer(const ReadCallback& source, int out_fd, const EstargzWriterOptions& options,
                                           const ProgressCallback& progress = {});

}  // namespace lazyfs::fs
