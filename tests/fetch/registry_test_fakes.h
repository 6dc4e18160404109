// Test doubles for the registry client: a scripted HttpTransport that records every request and feeds
// 2xx bodies to the request's sink the way CurlTransport does (in small pieces).
//
// Thread safety: FakeTransport locks around its record; handlers run under no lock.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "fetch/http_transport.h"

namespace lazyfs::fetch::testing {

inline HttpResponse MakeResponse(int status, std::string body = "",
                                 std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  response.headers = std::move(headers);
  return response;
}

inline std::string RequestHeader(const HttpRequest& request, const std::string& name) {
  for (const auto& [key, value] : request.headers) {
    if (AsciiLower(key) == AsciiLower(name)) return value;
  }
  return "";
}

class FakeTransport : public HttpTransport {
 public:
  using Handler = std::function<Result<HttpResponse>(const HttpRequest&)>;
  explicit FakeTransport(Handler handler) : handler_(std::move(handler)) {}

  Result<HttpResponse> Perform(const HttpRequest& request) override {
    {
      std::lock_guard lock(mu_);
      requests_.push_back(request);
    }
    Result<HttpResponse> result = handler_(request);
    if (!result || !request.sink || result->status < 200 || result->status >= 300) return result;
    // Deliver in 3-byte pieces so sinks see split input, as from the network.
    std::string body = std::move(result->body);
    result->body.clear();
    for (size_t i = 0; i < body.size(); i += 3) {
      Status sunk = request.sink(result->status, std::string_view(body).substr(i, 3));
      if (!sunk) return std::move(sunk).error();
    }
    return result;
  }

  // Records the batch, then performs its requests one after another (HttpTransport's default).
  std::vector<Result<HttpResponse>> PerformAll(std::span<const HttpRequest> requests) override {
    {
      std::lock_guard lock(mu_);
      batch_sizes_.push_back(requests.size());
    }
    return HttpTransport::PerformAll(requests);
  }

  std::vector<HttpRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // The size of each PerformAll batch so far (a plain Perform is not a batch).
  std::vector<size_t> batch_sizes() const {
    std::lock_guard lock(mu_);
    return batch_sizes_;
  }
  size_t count() const {
    std::lock_guard lock(mu_);
    return requests_.size();
  }

 private:
  Handler handler_;
  mutable std::mutex mu_;
  std::vector<HttpRequest> requests_;
  std::vector<size_t> batch_sizes_;  // guarded by mu_
};

}  // namespace lazyfs::fetch::testing
