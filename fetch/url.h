// URLs, through libcurl's URL API (the parser the transport itself uses): origins, resolving a reference
// against a base, and appending query parameters with their escaping. Nothing here builds URL syntax by
// hand, so the registry client, its auth and the package index client agree with curl on every URL.
//
// Thread safety: pure functions on values.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace lazyfs::fetch {

// The origin of a URL (RFC 6454): scheme and host lower-cased, the port always explicit (the scheme's
// default when the URL names none), so "https://Reg.example/v2/" and "https://reg.example:443" compare
// equal.
struct UrlOrigin {
  std::string scheme;
  std::string host;
  std::string port;

  bool operator==(const UrlOrigin&) const = default;
  std::string ToString() const { return scheme + "://" + host + ":" + port; }
};

// kInvalidArgument when `url` is not an absolute URL libcurl accepts.
Result<UrlOrigin> ParseUrlOrigin(std::string_view url);

// Whether `origin` is one of `hosts` ("HOST[:PORT]" as given to --insecure-registry; a missing port is
// the default port of `origin`'s scheme).
bool OriginNamedIn(const UrlOrigin& origin, const std::vector<std::string>& hosts);

// `reference` (absolute, absolute-path or relative, RFC 3986 section 5) resolved against the absolute URL
// `base`. kInvalidArgument when either does not parse.
Result<std::string> ResolveUrl(std::string_view base, std::string_view reference);

// `url` with `name=value` pairs appended to its query (after any query it has), each name and value
// percent-encoded. kInvalidArgument when `url` does not parse.
Result<std::string> WithQuery(std::string_view url, const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace lazyfs::fetch
