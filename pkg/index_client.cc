#include "pkg/index_client.h"

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/digest.h"
#include "pkg/tags.h"
#include "pkg/zip_member.h"

namespace lazyfs::pkg {
namespace {

using fetch::HttpRequest;
using fetch::HttpResponse;

// Cache keys carry a format version so an upgraded lazyfs never misreads an older encoding.
std::string PageKey(const std::string& url) { return "pypi/page/v1/" + url; }
std::string MetadataFileKey(const std::string& sha256) { return "pypi/metadata/v1/sha256:" + sha256; }
std::string WheelMetadataKey(const std::string& sha256) { return "pypi/wheel-metadata/v1/sha256:" + sha256; }

struct CachedPage {
  std::string etag;
  std::string last_modified;
  std::string content_type;
  std::string base_url;  // the URL that answered (after redirects): relative links resolve against it
  std::string body;
};

std::optional<CachedPage> DecodePage(const std::string& stored) {
  nlohmann::json j = nlohmann::json::parse(stored, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  CachedPage page;
  for (auto [field, name] : {std::pair{&page.etag, "etag"}, {&page.last_modified, "last_modified"},
                             {&page.content_type, "content_type"}, {&page.base_url, "base_url"}, {&page.body, "body"}}) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    *field = it->get<std::string>();
  }
  return page;
}

std::string EncodePage(const CachedPage& page) {
  return nlohmann::json{{"etag", page.etag}, {"last_modified", page.last_modified}, {"content_type", page.content_type},
                        {"base_url", page.base_url}, {"body", page.body}}
      .dump();
}

std::optional<std::string> FileSha256(const IndexFile& file) {
  auto it = file.hashes.find("sha256");
  if (it == file.hashes.end()) return std::nullopt;
  return it->second;
}

}  // namespace

std::string_view MetadataSourceName(MetadataSource source) {
  switch (source) {
    case MetadataSource::kCache: return "cache";
    case MetadataSource::kMetadataFile: return "metadata file";
    case MetadataSource::kWheelRanges: return "range reads of the wheel";
  }
  return "?";
}

IndexClient::IndexClient(std::shared_ptr<fetch::HttpTransport> transport, IndexClientOptions options,
                         std::shared_ptr<IndexCache> cache)
    : transport_(std::move(transport)), options_(std::move(options)), cache_(std::move(cache)) {}

Result<HttpResponse> IndexClient::Perform(const std::function<HttpRequest()>& make,
                                          const std::function<Status(HttpResponse&)>& check) {
  auto counted = [&] {
    ++counters_.requests;
    HttpRequest request = make();
    if (request.timeout.count() == 0) request.timeout = options_.request_timeout;
    return request;
  };
  Result<HttpResponse> response = fetch::PerformWithRetries(*transport_, options_.retry, counted, check);
  if (response) counters_.bytes += response->body.size();
  return response;
}

Result<std::vector<IndexFile>> IndexClient::ProjectFiles(std::string_view project) {
  std::vector<IndexFile> files;
  bool found = false;
  for (const std::string& index : options_.index_urls) {
    std::string page_url = ProjectPageUrl(index, project);
    Result<std::vector<IndexFile>> page = PageFiles(page_url, project);
    if (!page) {
      if (page.error().code() == ErrorCode::kNotFound) continue;
      return std::move(page).error();
    }
    found = true;
    for (IndexFile& f : *page) files.push_back(std::move(f));
  }
  if (!found) {
    std::string where;
    for (const std::string& index : options_.index_urls) where += (where.empty() ? "" : ", ") + fetch::RedactUrl(index);
    return NotFound(fmt::format("project '{}' is on no index ({}); check its name and --index-url", project, where));
  }
  return files;
}

Result<std::vector<IndexFile>> IndexClient::PageFiles(const std::string& page_url, std::string_view project) {
  std::optional<CachedPage> cached;
  if (cache_) {
    if (std::optional<std::string> stored = cache_->Get(PageKey(page_url))) cached = DecodePage(*stored);
  }
  HttpResponse response = LAZYFS_TRY(Perform([&] {
    HttpRequest request;
    request.url = page_url;
    request.headers.emplace_back("Accept", std::string(IndexAccept()));
    if (cached && !cached->etag.empty()) request.headers.emplace_back("If-None-Match", cached->etag);
    if (cached && !cached->last_modified.empty()) request.headers.emplace_back("If-Modified-Since", cached->last_modified);
    request.max_body_bytes = options_.max_page_bytes;
    return request;
  }));
  std::string what = fmt::format("project '{}': index page {}", project, fetch::RedactUrl(page_url));
  CachedPage page;
  if (response.status == 304 && cached) {
    ++counters_.not_modified;
    page = std::move(*cached);
  } else if (fetch::Is2xx(response.status)) {
    page.etag = response.Header("etag").value_or("");
    page.last_modified = response.Header("last-modified").value_or("");
    page.content_type = response.Header("content-type").value_or("");
    page.base_url = response.effective_url.empty() ? page_url : response.effective_url;
    page.body = std::move(response.body);
  } else {
    return fetch::HttpStatusError(response, what);
  }
  std::optional<PageFormat> format = PageFormatOf(page.content_type);
  if (!format) {
    return Corrupt(fmt::format("{}: content type '{}' is not a simple-API page (HTML or application/vnd.pypi.simple.v1+json)",
                               what, page.content_type));
  }
  // Parsed before it is cached: a page that does not parse is never kept.
  ProjectPage parsed = LAZYFS_TRY(ParseProjectPage(page.body, *format, page.base_url, project));
  if (cache_ && response.status != 304 && (!page.etag.empty() || !page.last_modified.empty())) {
    cache_->Put(PageKey(page_url), EncodePage(page));
  }
  return std::move(parsed.files);
}

Result<FetchedMetadata> IndexClient::Metadata(const IndexFile& file, std::string_view project) {
  std::string what = fmt::format("project '{}' file {}", project, file.filename);
  std::optional<std::string> wheel_sha256 = FileSha256(file);
  if (cache_ && wheel_sha256) {
    if (std::optional<std::string> text = cache_->Get(WheelMetadataKey(*wheel_sha256))) {
      ++counters_.cache_hits;
      return FetchedMetadata{std::move(*text), MetadataSource::kCache};
    }
  }
  if (file.has_metadata) {
    auto hash = file.metadata_hashes.find("sha256");
    std::optional<std::string> want = hash == file.metadata_hashes.end() ? std::nullopt : std::optional(hash->second);
    if (cache_ && want) {
      if (std::optional<std::string> text = cache_->Get(MetadataFileKey(*want)); text && Sha256Of(*text).Hex() == *want) {
        ++counters_.cache_hits;
        return FetchedMetadata{std::move(*text), MetadataSource::kCache};
      }
    }
    std::string url = file.url + ".metadata";
    Result<HttpResponse> response = Perform(
        [&] {
          HttpRequest request;
          request.url = url;
          request.max_body_bytes = options_.max_metadata_bytes;
          return request;
        },
        [&](HttpResponse& r) -> Status {
          if (want && Sha256Of(r.body).Hex() != *want) {
            return Corrupt(fmt::format("{}: metadata file {} hashes to sha256:{}, the index says sha256:{}", what,
                                       fetch::RedactUrl(url), Sha256Of(r.body).Hex(), *want));
          }
          return Ok();
        });
    if (!response) {
      Error error = std::move(response).error();
      // The hash check names the project itself; a transport error (too large, refused) does not.
      if (error.message().find(what) == std::string::npos) error.Context(what);
      return error;
    }
    if (fetch::Is2xx(response->status)) {
      if (cache_ && want) cache_->Put(MetadataFileKey(*want), response->body);
      return FetchedMetadata{std::move(response->body), MetadataSource::kMetadataFile};
    }
    if (response->status != 404 || !file.filename.ends_with(".whl")) {
      return fetch::HttpStatusError(*response, what + ": metadata file " + fetch::RedactUrl(url));
    }
    LogWarn("{}: the index lists a metadata file but {} answers 404; reading METADATA out of the wheel", what,
            fetch::RedactUrl(url));
  }
  if (!file.filename.ends_with(".whl")) {
    return Unsupported(fmt::format("{}: no metadata file, and it is not a wheel (lazyfs never builds sdists)", what));
  }
  Result<WheelName> wheel = ParseWheelFilename(file.filename);
  if (!wheel) return std::move(wheel).error().Context(what);
  uint64_t size = LAZYFS_TRY(FileSize(file));
  ZipLimits limits;
  limits.max_member_bytes = options_.max_metadata_bytes;
  Result<ZipMemberRead> member =
      ReadWheelMetadata([&](uint64_t offset, uint64_t length) { return RangeRead(file, offset, length); }, size,
                        wheel->name + "-" + wheel->version + ".dist-info/METADATA", limits);
  if (!member) return std::move(member).error().Context(what);
  if (cache_ && wheel_sha256) cache_->Put(WheelMetadataKey(*wheel_sha256), member->data);
  return FetchedMetadata{std::move(member->data), MetadataSource::kWheelRanges};
}

Result<uint64_t> IndexClient::FileSize(const IndexFile& file) {
  if (file.size) return *file.size;
  HttpResponse response = LAZYFS_TRY(Perform([&] {
    HttpRequest request;
    request.method = "HEAD";
    request.url = file.url;
    return request;
  }));
  std::string what = "HEAD " + fetch::RedactUrl(file.url);
  if (!fetch::Is2xx(response.status)) return fetch::HttpStatusError(response, what);
  std::optional<std::string> length = response.Header("content-length");
  if (!length || length->empty() || length->size() > 19 || length->find_first_not_of("0123456789") != std::string::npos) {
    return Corrupt(what + ": no usable Content-Length, so the wheel cannot be read by ranges");
  }
  return std::stoull(*length);
}

Result<std::string> IndexClient::RangeRead(const IndexFile& file, uint64_t offset, uint64_t length) {
  std::string what = fmt::format("GET {} bytes {}-{}", fetch::RedactUrl(file.url), offset, offset + length - 1);
  HttpResponse response = LAZYFS_TRY(Perform([&] {
    HttpRequest request;
    request.url = file.url;
    request.range = HttpRequest::ByteRange{offset, length};
    request.max_body_bytes = length + 1;  // a server that ignores Range fails here instead of sending it all
    return request;
  }));
  if (response.status == 206) {
    if (response.body.size() != length) {
      return Corrupt(fmt::format("{}: {} bytes in the answer, {} asked for", what, response.body.size(), length));
    }
    std::optional<std::string> content_range = response.Header("content-range");
    std::string expected = fmt::format("bytes {}-{}/", offset, offset + length - 1);
    if (!content_range || !content_range->starts_with(expected)) {
      return Corrupt(fmt::format("{}: answered with Content-Range '{}'", what, content_range.value_or("")));
    }
    return std::move(response.body);
  }
  if (fetch::Is2xx(response.status)) return Unsupported(what + ": the server does not answer range requests");
  return fetch::HttpStatusError(response, what);
}

}  // namespace lazyfs::pkg
