// Downloading one wheel to a local file, verified against the sha256 the lock gives while it streams:
// the file appears under its final name only once every byte matched, so a truncated, substituted or
// hostile download leaves nothing behind. The registry client's retry and timeout rules apply.
//
// Thread safety: reentrant (the transport is thread-safe).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/result.h"
#include "fetch/http_retry.h"
#include "fetch/http_transport.h"

namespace lazyfs::pkg {

struct WheelDownloadOptions {
  fetch::RetryPolicy retry;
  std::chrono::milliseconds timeout{30 * 60'000};  // the whole download; big wheels on slow links take minutes
  uint64_t max_bytes = uint64_t{8} << 30;
};

// GETs `url` into `path` (its directory must exist). Returns the bytes written. kCorrupt when the bytes
// hash to something else than `sha256_hex` or exceed max_bytes; HTTP errors as fetch/ reports them; kIo
// for the local file. Errors name the URL (credentials removed).
Result<uint64_t> DownloadWheel(fetch::HttpTransport& transport, const std::string& url, const std::string& sha256_hex,
                               const std::string& path, const WheelDownloadOptions& options = {});

}  // namespace lazyfs::pkg
