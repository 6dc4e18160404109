// `lazyfs stats`: asks running mounts for their counters over the control socket and prints the
// amplification report (a table, or JSON with --json). StatsJson builds the daemon's side of it.
//
// JSON schema (version 2; version 1's fields are unchanged), one object per mount (`--all`: an array):
//   {"version":2, "mountpoint":str, "image":str, "manifest_digest":str, "pid":int,
//    "image_bytes_compressed":int      sum of the layer blob sizes,
//    "image_bytes_uncompressed":int    sum of the layers' uncompressed tar sizes (0 when unknown),
//    "files_bytes":int                 bytes in the regular files of the merged view,
//    "inodes":int,
//    "reads":int, "bytes_read":int     FUSE reads served and their bytes,
//    "bytes_needed":int                unique bytes read: 4 KiB pages touched, clamped to file sizes,
//    "needed_percent":float            bytes_needed / files_bytes * 100,
//    "chunk_hits":int, "chunk_misses":int   foreground chunk lookups (a miss waited on a fetch),
//    "cache_hit_ratio":float           hits / (hits + misses), 0 when there were none,
//    "fetches":int                     chunks fetched from blob readers (incl. prefetch),
//    "requests":int                    blob reads on the wire (nearby chunks merged into one count once),
//    "bytes_fetched":int               compressed bytes on the wire (incl. prefetch),
//    "amplification":float             bytes_fetched / bytes_needed (0 when nothing was needed),
//    "read_errors":int,
//    "fetch_latency_us": {"count":int, "p50":int, "p99":int, "buckets":[int...]}
//        per request; bucket 0 is < 1 µs, bucket i is [2^(i-1), 2^i) µs; p50/p99 are the upper
//        bound of the bucket holding the quantile,
//    "layers":[{"digest":str, "size":int, "uncompressed_size":int, "lazy":bool, "reads":int,
//               "bytes_read":int, "bytes_needed":int, "chunk_hits":int, "chunk_misses":int,
//               "requests":int, "bytes_fetched":int}],
//    "not_lazy_layers":[str]           digests of layers that had to be streamed whole,
//    "top_files":[{"path":str, "size":int, "layer":int, "reads":int, "bytes_read":int,
//                  "bytes_needed":int, "chunk_hits":int, "chunk_misses":int}]   up to 10, most needed first,
//    "trace": null | {"file":str, "records_written":int},
//    "prefetch": null | {"source":str, "trace_records":int, "missing_paths":int, "planned_chunks":int,
//                        "done_chunks":int, "fetched_chunks":int, "cached_chunks":int, "errors":int,
//                        "yields":int, "finished":bool, "elapsed_ms":int},
//    "idle": null | {"timeout_s":float, "users":int, "idle_s":float|null, "unmounts_in_s":float|null}
//        a `lazyfs run` image mount with --idle-timeout (tools/idle_watch.h); added by the daemon}
//        source: the --prefetch trace file, or for --prefetch auto the artifact's docker://HOST/NAME:TAG
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "fs/chunk_reader.h"
#include "fs/image_loader.h"

namespace lazyfs::tools {

class MountObservability;

// `observability` may be null (then only the ChunkReader totals are reported, zeros elsewhere).
nlohmann::json StatsJson(const std::string& mountpoint, const fs::LoadedImage& image, const fs::ReadCounters& counters,
                         const MountObservability* observability = nullptr);

int RunStats(const std::string& mountpoint, bool all, bool json);

}  // namespace lazyfs::tools
