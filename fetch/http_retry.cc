#include "fetch/http_retry.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/log.h"

namespace lazyfs::fetch {

std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int attempt) {
  double delay = static_cast<double>(policy.base_backoff.count()) * std::pow(2.0, attempt - 1);
  delay = std::min(delay, static_cast<double>(policy.max_backoff.count()));
  // Jitter spreads the retries of many FUSE threads (and many hosts) that failed together.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  std::uniform_real_distribution<double> factor(1.0 - jitter, 1.0 + jitter);
  return std::chrono::milliseconds(static_cast<int64_t>(delay * factor(rng)));
}

std::optional<std::chrono::milliseconds> RetryAfter(const HttpResponse& response) {
  std::optional<std::string> value = response.Header("retry-after");
  if (!value || value->empty()) return std::nullopt;
  if (value->find_first_not_of("0123456789") == std::string::npos && value->size() < 10) {
    return std::chrono::seconds(std::stoll(*value));
  }
  time_t when = curl_getdate(value->c_str(), nullptr);
  if (when < 0) return std::nullopt;
  time_t now = std::time(nullptr);
  return std::chrono::seconds(when > now ? when - now : 0);
}

Error HttpStatusError(const HttpResponse& response, const std::string& what) {
  std::string detail;
  nlohmann::json doc = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded() && doc.is_object()) {
    auto errors = doc.find("errors");
    if (errors != doc.end() && errors->is_array() && !errors->empty() && (*errors)[0].is_object()) {
      const nlohmann::json& first = (*errors)[0];
      detail = first.value("code", std::string()) + ": " + first.value("message", std::string());
    }
  }
  std::string message = fmt::format("{}: HTTP {}{}", what, response.status, detail.empty() ? "" : " (" + detail + ")");
  int status = response.status;
  if (status == 404) return Error(ErrorCode::kNotFound, message);
  if (status == 401 || status == 403) return Error(ErrorCode::kPermission, message);
  if (status == 416) return Error(ErrorCode::kCorrupt, message + ": range beyond the end of the blob");
  if (status == 429 || status >= 500) return Error(ErrorCode::kNetwork, message, /*retryable=*/true);
  return Error(ErrorCode::kNetwork, message);
}

std::chrono::milliseconds AttemptBudget(std::chrono::milliseconds left, int attempt, int max_attempts) {
  using std::chrono::milliseconds;
  return attempt < max_attempts ? std::max(left / 2, std::min(left, milliseconds(1000))) : left;
}

std::optional<Error> RetryableFailure(Result<HttpResponse>& result, const std::function<Status(HttpResponse&)>& check,
                                      const RetryPolicy& policy, const std::string& what,
                                      std::chrono::milliseconds& delay) {
  if (!result) {
    if (!result.error().retryable()) return std::nullopt;
    return result.error();
  }
  if (Is2xx(result->status)) {
    Status judged = check ? check(*result) : Ok();
    if (judged) return std::nullopt;
    if (!judged.error().retryable()) {
      result = std::move(judged).error();
      return std::nullopt;
    }
    return std::move(judged).error();
  }
  if (result->status == 429 || result->status >= 500) {
    if (std::optional<std::chrono::milliseconds> asked = RetryAfter(*result)) delay = std::min(*asked, policy.max_retry_after);
    return HttpStatusError(*result, what);
  }
  return std::nullopt;
}

Result<HttpResponse> PerformWithRetries(HttpTransport& transport, const RetryPolicy& policy,
                                        const std::function<HttpRequest()>& make,
                                        const std::function<Status(HttpResponse&)>& check,
                                        std::optional<SteadyTime> deadline, const RetryClock& clock) {
  using std::chrono::milliseconds;
  auto now = [&] { return clock.now ? clock.now() : std::chrono::steady_clock::now(); };
  std::optional<Error> failure;
  int max_attempts = std::max(1, policy.max_attempts);
  for (int attempt = 1;; ++attempt) {
    HttpRequest request = make();
    std::string what = request.method + " " + RedactUrl(request.url);
    auto out_of_time = [&] {
      return Error(ErrorCode::kTimeout,
                   what + ": deadline reached" + (failure ? "; last failure: " + failure->ToString() : std::string()),
                   /*retryable=*/true);
    };
    if (deadline) {
      auto left = std::chrono::duration_cast<milliseconds>(*deadline - now());
      if (left <= milliseconds(0)) return out_of_time();
      milliseconds budget = AttemptBudget(left, attempt, max_attempts);
      if (request.timeout.count() == 0 || request.timeout > budget) request.timeout = budget;
    }
    milliseconds delay = BackoffDelay(policy, attempt);
    Result<HttpResponse> result = transport.Perform(request);
    std::optional<Error> retry = RetryableFailure(result, check, policy, what, delay);
    if (!retry) return result;
    failure = std::move(retry);
    if (attempt >= max_attempts) return *std::move(failure);
    if (deadline && now() + delay >= *deadline) return out_of_time();
    LogDebug("{}: {} (attempt {}/{}), retrying in {} ms", what, failure->ToString(), attempt, max_attempts,
             delay.count());
    if (clock.sleep) {
      clock.sleep(delay);
    } else {
      std::this_thread::sleep_for(delay);
    }
  }
}

}  // namespace lazyfs::fetch
