#include "pkg/wheel_download.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "common/digest.h"
#include "common/fd.h"

namespace lazyfs::pkg {

Result<uint64_t> DownloadWheel(fetch::HttpTransport& transport, const std::string& url, const std::string& sha256_hex,
                               const std::string& path, const WheelDownloadOptions& options) {
  std::string shown = fetch::RedactUrl(url);
  std::string partial = path + ".part";
  // One attempt's state; a retry starts the file and the hash again.
  struct Attempt {
    UniqueFd fd;
    std::unique_ptr<Sha256Hasher> hasher;
    uint64_t bytes = 0;
    Status failed = Ok();
  };
  Attempt attempt;
  auto make = [&]() {
    attempt = Attempt{};
    Result<UniqueFd> fd = OpenFile(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!fd) {
      attempt.failed = fd.error();
    } else {
      attempt.fd = std::move(*fd);
    }
    attempt.hasher = std::make_unique<Sha256Hasher>();
    fetch::HttpRequest request;
    request.url = url;
    request.timeout = options.timeout;
    request.sink = [&](int, std::string_view data) -> Status {
      LAZYFS_TRY(attempt.failed);
      attempt.bytes += data.size();
      if (attempt.bytes > options.max_bytes) {
        return Corrupt("wheel " + shown + " is larger than " + std::to_string(options.max_bytes) + " bytes");
      }
      attempt.hasher->Update(data);
      return WriteAll(attempt.fd.get(), data, partial);
    };
    return request;
  };
  auto check = [&](fetch::HttpResponse&) -> Status {  // a 2xx answer: all its bytes went to the sink
    LAZYFS_TRY(attempt.failed);
    std::string actual = attempt.hasher->Finish().Hex();
    if (actual != sha256_hex) {
      return Corrupt("wheel " + shown + " (" + std::to_string(attempt.bytes) + " bytes) hashes to sha256:" + actual +
                     ", the lock says sha256:" + sha256_hex);
    }
    return Ok();
  };
  Result<fetch::HttpResponse> response = fetch::PerformWithRetries(transport, options.retry, make, check);
  attempt.fd = UniqueFd();
  if (response && !fetch::Is2xx(response->status)) response = fetch::HttpStatusError(*response, "wheel " + shown);
  if (!response) {
    ::unlink(partial.c_str());
    return std::move(response).error();
  }
  if (::rename(partial.c_str(), path.c_str()) != 0) {
    Error error = IoError("renaming " + partial + " to " + path + ": " + std::strerror(errno));
    ::unlink(partial.c_str());
    return error;
  }
  return attempt.bytes;
}

}  // namespace lazyfs::pkg
