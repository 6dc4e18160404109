// Helpers shared by every HttpTransport: header look-up on responses and ASCII lower-casing. Kept apart
// from curl_transport.cc so fake transports in tests need nothing from libcurl.
//
// Thread safety: pure functions on values.
#include "fetch/http_transport.h"

namespace lazyfs::fetch {

std::string RedactUrl(std::string_view url) {
  std::string_view rest = url;
  std::string out;
  if (size_t scheme = rest.find("://"); scheme != std::string_view::npos) {
    out.append(rest.substr(0, scheme + 3));
    rest.remove_prefix(scheme + 3);
  }
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    out.append("***@");
    rest.remove_prefix(at + 1);
  }
  size_t query = rest.find_first_of("?#");
  out.append(rest.substr(0, query));
  if (query != std::string_view::npos) out.append("?…");
  return out;
}

std::vector<Result<HttpResponse>> HttpTransport::PerformAll(std::span<const HttpRequest> requests) {
  std::vector<Result<HttpResponse>> out;
  out.reserve(requests.size());
  for (const HttpRequest& request : requests) out.push_back(Perform(request));
  return out;
}

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

std::vector<std::string> HttpResponse::HeaderValues(std::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [key, value] : headers) {
    if (key == name) values.push_back(value);
  }
  return values;
}

}  // namespace lazyfs::fetch
