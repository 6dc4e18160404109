// BlobReader: reads the blobs of one image by digest, from wherever they live (an OCI layout directory on
// disk through pread, or a registry through HTTP Range requests). Everything above fetch/ reads blobs only
// through this interface, which is the seam that tests and new sources plug into.
//
// Contract: implementations are thread-safe; every call may block on I/O. Errors from remote sources say
// whether a retry may help, but retries are the implementation's job, never the caller's.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/digest.h"
#include "common/result.h"

namespace lazyfs::fetch {

class BlobReader {
 public:
  virtual ~BlobReader() = default;

  // Returns exactly bytes [offset, offset + length) of the blob. A blob shorter than that is kCorrupt,
  // a missing blob kNotFound. The bytes are NOT verified (a range cannot be): callers verify what they
  // derive from them (chunk digests, TOC digest).
  virtual Result<std::string> ReadRange(const Sha256Digest& blob, uint64_t offset, uint64_t length) = 0;

  // Reads several ranges, (offset, length) each, of one blob; the result holds each range's bytes in
  // input order. Errors as ReadRange; any failed range fails the call. Remote readers override this to
  // merge nearby ranges into fewer requests and to bound the whole call by one deadline; the default
  // reads each range with ReadRange.
  virtual Result<std::vector<std::string>> ReadRanges(const Sha256Digest& blob,
                                                      const std::vector<std::pair<uint64_t, uint64_t>>& ranges);

  // The blob's size in bytes.
  virtual Result<uint64_t> Size(const Sha256Digest& blob) = 0;

  // How long a Stream may take. kUnbounded: only the transport's low-speed limit bounds it (a mount
  // indexing a big plain layer may rightly take long). kReadDeadline: a FUSE read waits on it (a plain
  // layer streamed again after its chunks were evicted), so the reader's read deadline (--read-timeout)
  // bounds the whole stream, as it bounds ReadRanges. Local readers have nothing to bound.
  enum class StreamBound { kUnbounded, kReadDeadline };

  // Streams the whole blob to `sink` in pieces, in order, and verifies the blob's sha256 at the end:
  // kCorrupt if it does not match. The sink may stop the stream by returning an error, which is returned.
  // Callers must not trust what they derived from the pieces until Stream has returned Ok.
  virtual Status Stream(const Sha256Digest& blob, const std::function<Status(std::string_view)>& sink,
                        StreamBound bound) = 0;

  // Reads a whole (small) blob and verifies its digest: manifests, configs, indexes.
  Result<std::string> ReadVerified(const Sha256Digest& blob, uint64_t max_size);

  // Where the blobs come from, for log lines: "oci:/srv/images/app", "docker://127.0.0.1:5000/app".
  virtual std::string Describe() const = 0;
};

}  // namespace lazyfs::fetch
