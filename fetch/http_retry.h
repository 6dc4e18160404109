// The retry rules every HTTP client of lazyfs follows (registry, package index): transport failures the
// transport marks retryable, 429 and 5xx are retried with exponential backoff and jitter, honouring
// Retry-After up to a cap; other answers are returned for the caller to map; an optional deadline bounds
// every attempt and wait (an attempt that is not the last gets at most half the time left, so one stalled
// connection still leaves room for a retry).
//
// Thread safety: pure functions; PerformWithRetries may run on many threads at once.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "common/result.h"
#include "fetch/http_transport.h"

namespace lazyfs::fetch {

struct RetryPolicy {
  int max_attempts = 5;  // per operation, on the origin; 1 disables retries
  std::chrono::milliseconds base_backoff{200};  // doubled per attempt
  std::chrono::milliseconds max_backoff{10'000};
  double jitter = 0.5;  // each delay is scaled by a uniform factor in [1 - jitter, 1 + jitter]
  // Retry-After is honoured up to this much; a server asking for longer gets this.
  std::chrono::milliseconds max_retry_after{60'000};
};

using SteadyTime = std::chrono::steady_clock::time_point;

inline bool Is2xx(int status) { return status >= 200 && status < 300; }

// The delay before attempt `attempt + 1`, jittered.
std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int attempt);

// Retry-After as delta-seconds or an HTTP-date (RFC 9110 10.2.3); nullopt when absent or unreadable.
std::optional<std::chrono::milliseconds> RetryAfter(const HttpResponse& response);

// An error for a non-2xx answer: kNotFound for 404, kPermission for 401/403, kCorrupt for 416, retryable
// kNetwork for 429/5xx, kNetwork otherwise. A registry's JSON error (code, message) goes in the message.
Error HttpStatusError(const HttpResponse& response, const std::string& what);

// The time attempt `attempt` of `max_attempts` may take when `left` remains before the deadline: all of it
// for the last attempt, else half (but a second at least), so one stalled connection still leaves room
// for a retry on a fresh one.
std::chrono::milliseconds AttemptBudget(std::chrono::milliseconds left, int attempt, int max_attempts);

// Judges one attempt's outcome. nullopt: `result` is final — a 2xx that passed `check` (may be null), a
// non-2xx answer not to retry (404, 403, 304...: the caller maps it), or an error not to retry (a `check`
// refusal becomes `result`'s error). Otherwise the failure to retry, with `delay` raised or cut to the
// server's Retry-After (at most policy.max_retry_after).
std::optional<Error> RetryableFailure(Result<HttpResponse>& result, const std::function<Status(HttpResponse&)>& check,
                                      const RetryPolicy& policy, const std::string& what,
                                      std::chrono::milliseconds& delay);

struct RetryClock {
  std::function<SteadyTime()> now;                          // null: steady_clock
  std::function<void(std::chrono::milliseconds)> sleep;     // null: this_thread::sleep_for
};

// One exchange with the rules above. `make` builds each attempt's request; `check` (may be null) judges a
// 2xx answer and asks for a retry by returning a retryable error. Returns the 2xx answer, or a non-2xx
// answer that is not retried (404, 403, 304...) for the caller to map, or the last failure.
Result<HttpResponse> PerformWithRetries(HttpTransport& transport, const RetryPolicy& policy,
                                        const std::function<HttpRequest()>& make,
                                        const std::function<Status(HttpResponse&)>& check,
                                        std::optional<SteadyTime> deadline = std::nullopt,
                                        const RetryClock& clock = {});

}  // namespace lazyfs::fetch
