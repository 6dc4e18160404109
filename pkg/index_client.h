// IndexClient: what a Python package index (PEP 503 HTML or PEP 691 JSON "simple" API, any number of
// them: --index-url then each --extra-index-url) offers for a project, and the core metadata of one of
// its files, read with as little transfer as the index allows:
//   1. a PEP 658/714 metadata file (`URL.metadata`), checked against the hash the page gives for it;
//   2. else, for a wheel, METADATA read lazily out of the zip with HTTP Range requests (its end, the central
//      directory, the one member), as pip's lazy wheel does, instead of downloading the wheel.
// The same retry and error rules as the registry client (fetch/http_retry.h); credentials from the URL
// (user:password@host) or a .netrc (the transport's); `--ca-file` through the transport.
//
// Cache (optional, an IndexCache so pkg/ stays free of cache/): project pages are kept with their HTTP
// validators and asked for again conditionally (a 304 costs no body); metadata files are kept by their
// hash and checked against it when read back; METADATA read out of a wheel is kept by the wheel's sha256
// (the zip's CRC-32 checked it; the wheel itself is verified against that sha256 when it is installed).
//
// Thread safety: one IndexClient may be used from several threads; its counters are atomic.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "fetch/http_retry.h"
#include "fetch/http_transport.h"
#include "pkg/index_page.h"
#include "pkg/package_source.h"

namespace lazyfs::pkg {

// Small documents kept between processes; best effort (a failed Put only costs a later request). Nothing
// read back is trusted further than its key says: callers re-check hashes.
class IndexCache {
 public:
  virtual ~IndexCache() = default;
  virtual std::optional<std::string> Get(std::string_view key) = 0;
  virtual void Put(std::string_view key, std::string_view value) = 0;
};

struct IndexClientOptions {
  std::vector<std::string> index_urls;  // searched in order, files of all of them merged (as pip does)
  fetch::RetryPolicy retry;
  std::chrono::milliseconds request_timeout{60'000};
  uint64_t max_page_bytes = 64 << 20;
  uint64_t max_metadata_bytes = 16 << 20;  // a metadata file or the METADATA member of a wheel
};

struct IndexCounters {
  std::atomic<uint64_t> requests{0};       // HTTP exchanges, retries included
  std::atomic<uint64_t> bytes{0};          // response bodies
  std::atomic<uint64_t> not_modified{0};   // pages answered 304 from the cache's validators
  std::atomic<uint64_t> cache_hits{0};     // metadata served from the cache without a request
};

class IndexClient : public PackageSource {
 public:
  IndexClient(std::shared_ptr<fetch::HttpTransport> transport, IndexClientOptions options,
              std::shared_ptr<IndexCache> cache = nullptr);

  // Every file every index lists for `project` (any spelling of its name), in index order. kNotFound
  // when no index knows the project; errors name the page URL and the cause.
  Result<std::vector<IndexFile>> ProjectFiles(std::string_view project) override;

  // The core metadata of `file` (a wheel, or any file with a metadata file). `project` is for messages.
  Result<FetchedMetadata> Metadata(const IndexFile& file, std::string_view project) override;

  const IndexCounters& counters() const { return counters_; }

 private:
  Result<std::vector<IndexFile>> PageFiles(const std::string& page_url, std::string_view project);
  Result<std::string> RangeRead(const IndexFile& file, uint64_t offset, uint64_t length);
  Result<uint64_t> FileSize(const IndexFile& file);
  Result<fetch::HttpResponse> Perform(const std::function<fetch::HttpRequest()>& make,
                                      const std::function<Status(fetch::HttpResponse&)>& check = nullptr);

  std::shared_ptr<fetch::HttpTransport> transport_;
  const IndexClientOptions options_;
  std::shared_ptr<IndexCache> cache_;
  IndexCounters counters_;
};

}  // namespace lazyfs::pkg
