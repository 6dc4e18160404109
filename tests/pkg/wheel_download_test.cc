// Downloading a wheel: the lock's sha256 is checked as the bytes stream, a retried attempt starts the file
// again, and only a verified file ever appears under its name.
#include <doctest/doctest.h>

#include <filesystem>

#include "common/digest.h"
#include "common/fd.h"
#include "pkg/wheel_download.h"
#include "tests/fetch/registry_test_fakes.h"
#include "tests/test_support.h"

namespace lazyfs::pkg {
namespace {

using fetch::testing::FakeTransport;
using fetch::testing::MakeResponse;

WheelDownloadOptions FastRetries() {
  WheelDownloadOptions options;
  options.retry.base_backoff = std::chrono::milliseconds(1);
  options.retry.max_backoff = std::chrono::milliseconds(2);
  return options;
}

}  // namespace

TEST_CASE("DownloadWheel: verified bytes land under the name; a retry after a 503 starts the file again") {
  testing::TempDir dir;
  std::string wheel = "PK" + std::string(1000, 'w');
  int attempts = 0;
  FakeTransport transport([&](const fetch::HttpRequest& request) -> Result<fetch::HttpResponse> {
    CHECK(request.url == "https://index.test/files/a-1.0-py3-none-any.whl");
    // The first attempt answers 503 with a body the sink never sees; the second serves the wheel.
    if (++attempts == 1) return MakeResponse(503, "busy");
    return MakeResponse(200, wheel);
  });
  std::string path = dir.path + "/a-1.0-py3-none-any.whl";
  Result<uint64_t> bytes = DownloadWheel(transport, "https://index.test/files/a-1.0-py3-none-any.whl",
                                         Sha256Of(wheel).Hex(), path, FastRetries());
  REQUIRE_MESSAGE(bytes, bytes.error().ToString());
  CHECK(*bytes == wheel.size());
  CHECK(attempts == 2);
  CHECK(ReadWholeFile(path).value() == wheel);
  CHECK_FALSE(std::filesystem::exists(path + ".part"));
}

TEST_CASE("DownloadWheel: other bytes than the lock's, a 404 and an oversized body leave no file") {
  testing::TempDir dir;
  std::string path = dir.path + "/a.whl";
  std::string served = "substituted";
  FakeTransport transport([&](const fetch::HttpRequest& request) -> Result<fetch::HttpResponse> {
    if (request.url.ends_with("/gone.whl")) return MakeResponse(404, "not here");
    return MakeResponse(200, served);
  });
  Result<uint64_t> wrong = DownloadWheel(transport, "https://user:secret@index.test/a.whl", Sha256Of("real").Hex(),
                                         path, FastRetries());
  REQUIRE(!wrong);
  CHECK(wrong.error().code() == ErrorCode::kCorrupt);
  CHECK_MESSAGE(wrong.error().message().find("(11 bytes) hashes to sha256:") != std::string::npos, wrong.error().message());
  CHECK(wrong.error().message().find("secret") == std::string::npos);
  CHECK(transport.count() == 1);  // a wrong hash is not retried

  Result<uint64_t> gone = DownloadWheel(transport, "https://index.test/gone.whl", Sha256Of("x").Hex(), path, FastRetries());
  REQUIRE(!gone);
  CHECK(gone.error().code() == ErrorCode::kNotFound);

  WheelDownloadOptions small = FastRetries();
  small.max_bytes = 5;
  Result<uint64_t> big = DownloadWheel(transport, "https://index.test/a.whl", Sha256Of(served).Hex(), path, small);
  REQUIRE(!big);
  CHECK(big.error().message().find("larger than 5 bytes") != std::string::npos);

  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_FALSE(std::filesystem::exists(path + ".part"));
}

}  // namespace lazyfs::pkg
