// fetch/http_retry.h: the retry rules the registry and package index clients share, over a scripted
// transport and a fake clock (no sleeping).
#include <doctest/doctest.h>

#include "fetch/http_retry.h"
#include "tests/fetch/registry_test_fakes.h"

namespace lazyfs::fetch {
namespace {

using std::chrono::milliseconds;

struct FakeClock {
  SteadyTime now = SteadyTime{} + std::chrono::hours(1);
  std::vector<milliseconds> slept;
  RetryClock Clock() {
    return {[this] { return now; }, [this](milliseconds d) {
              slept.push_back(d);
              now += d;
            }};
  }
};

HttpRequest Get() {
  HttpRequest request;
  request.url = "http://index.test/simple/six/";
  return request;
}

}  // namespace

TEST_CASE("PerformWithRetries: 503 and 429 are retried, Retry-After is honoured, then the 2xx returned") {
  int calls = 0;
  testing::FakeTransport transport([&](const HttpRequest&) -> Result<HttpResponse> {
    ++calls;
    if (calls == 1) return testing::MakeResponse(503);
    if (calls == 2) return testing::MakeResponse(429, "", {{"retry-after", "3"}});
    return testing::MakeResponse(200, "page");
  });
  FakeClock clock;
  RetryPolicy policy;
  Result<HttpResponse> r = PerformWithRetries(transport, policy, Get, nullptr, std::nullopt, clock.Clock());
  REQUIRE(r);
  CHECK(r->body == "page");
  CHECK(calls == 3);
  REQUIRE(clock.slept.size() == 2);
  CHECK(clock.slept[1] == milliseconds(3000));
}

TEST_CASE("PerformWithRetries: a definite answer and a refused check end at once") {
  int calls = 0;
  testing::FakeTransport not_found([&](const HttpRequest&) -> Result<HttpResponse> {
    ++calls;
    return testing::MakeResponse(404);
  });
  FakeClock clock;
  Result<HttpResponse> r = PerformWithRetries(not_found, RetryPolicy{}, Get, nullptr, std::nullopt, clock.Clock());
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(calls == 1);

  testing::FakeTransport wrong([&](const HttpRequest&) -> Result<HttpResponse> { return testing::MakeResponse(200, "x"); });
  Result<HttpResponse> refused = PerformWithRetries(
      wrong, RetryPolicy{}, Get, [](HttpResponse&) -> Status { return Corrupt("hash mismatch"); }, std::nullopt,
      clock.Clock());
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == ErrorCode::kCorrupt);
}

TEST_CASE("PerformWithRetries: retries stop at max_attempts and at the deadline, with the last failure") {
  int calls = 0;
  testing::FakeTransport down([&](const HttpRequest& request) -> Result<HttpResponse> {
    ++calls;
    CHECK(request.timeout.count() > 0);  // every attempt is bounded by the deadline's share
    return Error(ErrorCode::kNetwork, "connection refused", /*retryable=*/true);
  });
  FakeClock clock;
  RetryPolicy policy;
  policy.max_attempts = 3;
  Result<HttpResponse> r = PerformWithRetries(down, policy, Get, nullptr, clock.now + std::chrono::hours(1), clock.Clock());
  REQUIRE_FALSE(r);
  CHECK(calls == 3);
  CHECK(r.error().message().find("connection refused") != std::string::npos);

  calls = 0;
  policy.max_attempts = 100;
  Result<HttpResponse> timed_out =
      PerformWithRetries(down, policy, Get, nullptr, clock.now + milliseconds(2000), clock.Clock());
  REQUIRE_FALSE(timed_out);
  CHECK(timed_out.error().code() == ErrorCode::kTimeout);
  CHECK(timed_out.error().message().find("connection refused") != std::string::npos);
  CHECK(calls < 100);
}

TEST_CASE("AttemptBudget: half the time left for all but the last attempt, a second at least") {
  CHECK(AttemptBudget(milliseconds(10000), 1, 5) == milliseconds(5000));
  CHECK(AttemptBudget(milliseconds(1500), 1, 5) == milliseconds(1000));
  CHECK(AttemptBudget(milliseconds(600), 1, 5) == milliseconds(600));
  CHECK(AttemptBudget(milliseconds(10000), 5, 5) == milliseconds(10000));
}

}  // namespace lazyfs::fetch
