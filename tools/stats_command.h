// `lazyfs stats`: asks running mounts for their counters over the control socket and prints the
// amplification report (a table, or JSON with --json). StatsJson builds the daemon's side of it.
//
// JSON schema (version 1), one object per mount:
//   {"version":1, "mountpoint":str, "image":str, "manifest_digest":str, "pid":int,
//    "image_bytes_compressed":int, "image_bytes_uncompressed":int, "files_bytes":int, "inodes":int,
//    "layers":[{"digest":str, "size":int, "lazy":bool}],
//    "reads":int, "bytes_read":int, "chunk_hits":int, "chunk_misses":int,
//    "fetches":int, "bytes_fetched":int, "read_errors":int}
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "fs/chunk_reader.h"
#include "fs/image_loader.h"

namespace lazyfs::tools {

nlohmann::json StatsJson(const std::string& mountpoint, const fs::LoadedImage& image, const fs::ReadCounters& counters);

int RunStats(const std::string& mountpoint, bool all, bool json);

}  // namespace lazyfs::tools
