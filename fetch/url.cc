#include "fetch/url.h"

#include <curl/curl.h>

#include <memory>
#include <optional>

#include "fetch/http_transport.h"

namespace lazyfs::fetch {
namespace {

struct CurlUrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
using CurlUrl = std::unique_ptr<CURLU, CurlUrlDeleter>;

Result<CurlUrl> Parse(std::string_view text) {
  CurlUrl url(curl_url());
  if (!url) return Internal("curl_url failed");
  if (curl_url_set(url.get(), CURLUPART_URL, std::string(text).c_str(), 0) != CURLUE_OK) {
    return InvalidArgument("not an absolute URL: " + RedactUrl(text));
  }
  return url;
}

// One part of a parsed URL, or nullopt when libcurl has none to give.
std::optional<std::string> UrlPart(CURLU* url, CURLUPart part, unsigned int flags) {
  char* value = nullptr;
  if (curl_url_get(url, part, &value, flags) != CURLUE_OK || value == nullptr) return std::nullopt;
  std::string out(value);
  curl_free(value);
  return out;
}

}  // namespace

Result<UrlOrigin> ParseUrlOrigin(std::string_view url) {
  CurlUrl parsed = LAZYFS_TRY(Parse(url));
  std::optional<std::string> scheme = UrlPart(parsed.get(), CURLUPART_SCHEME, 0);
  std::optional<std::string> host = UrlPart(parsed.get(), CURLUPART_HOST, 0);
  std::optional<std::string> port = UrlPart(parsed.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  if (!scheme || !host || host->empty() || !port) return InvalidArgument("URL without scheme, host or port: " + RedactUrl(url));
  return UrlOrigin{AsciiLower(*scheme), AsciiLower(*host), *port};
}

bool OriginNamedIn(const UrlOrigin& origin, const std::vector<std::string>& hosts) {
  for (const std::string& host : hosts) {
    // The entry borrows the origin's scheme so that a bare HOST means that scheme's default port.
    Result<UrlOrigin> named = ParseUrlOrigin(origin.scheme + "://" + host);
    if (named && named->host == origin.host && named->port == origin.port) return true;
  }
  return false;
}

Result<std::string> ResolveUrl(std::string_view base, std::string_view reference) {
  CurlUrl url = LAZYFS_TRY(Parse(base));
  // Setting a URL on a handle that holds one resolves it as a reference against the held URL.
  if (curl_url_set(url.get(), CURLUPART_URL, std::string(reference).c_str(), 0) != CURLUE_OK) {
    return InvalidArgument(RedactUrl(reference) + " does not resolve against " + RedactUrl(base));
  }
  std::optional<std::string> out = UrlPart(url.get(), CURLUPART_URL, 0);
  if (!out) return InvalidArgument(RedactUrl(reference) + " does not resolve against " + RedactUrl(base));
  return *out;
}

Result<std::string> WithQuery(std::string_view url, const std::vector<std::pair<std::string, std::string>>& params) {
  CurlUrl parsed = LAZYFS_TRY(Parse(url));
  for (const auto& [name, value] : params) {
    // URLENCODE escapes the value (libcurl writes lower-case hex, which RFC 3986 makes equivalent) and,
    // with APPENDQUERY, leaves the first '=' alone and adds the '&'. Names are plain tokens.
    std::string pair = name + "=" + value;
    if (curl_url_set(parsed.get(), CURLUPART_QUERY, pair.c_str(), CURLU_APPENDQUERY | CURLU_URLENCODE) != CURLUE_OK) {
      return InvalidArgument("cannot add query parameter " + name + " to " + RedactUrl(url));
    }
  }
  std::optional<std::string> out = UrlPart(parsed.get(), CURLUPART_URL, 0);
  if (!out) return InvalidArgument("cannot add a query to " + RedactUrl(url));
  return *out;
}

}  // namespace lazyfs::fetch
