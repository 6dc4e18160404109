// BlobPull: reads a blob by pulling pieces (what libarchive's read callback wants) from BlobReader::Stream,
// which pushes them. One producer thread runs Stream and appends to a buffer of at most kMaxBuffered
// bytes; Next hands the buffer over. So a plain layer is one streaming GET (resumed by the registry client
// when cut), not a series of range requests, and it is verified (sha256, by Stream) as it goes.
//
// Lifetime: the thread starts in the constructor and is joined by the destructor, which first tells the
// producer to stop (its sink then fails, which ends Stream). `blobs` must outlive the BlobPull.
// Thread safety: one consumer thread calls Next and Finish; the producer is internal.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/digest.h"
#include "common/result.h"
#include "fetch/blob_reader.h"

namespace lazyfs::fetch {

class BlobPull {
 public:
  static constexpr size_t kMaxBuffered = 4 << 20;

  BlobPull(BlobReader& blobs, const Sha256Digest& blob, BlobReader::StreamBound bound);
  ~BlobPull();
  BlobPull(const BlobPull&) = delete;
  BlobPull& operator=(const BlobPull&) = delete;

  // The next bytes of the blob, valid until the next call; empty at the end of a stream that succeeded
  // (the blob's digest checked). The stream's error when it failed.
  Result<std::string_view> Next();
  // Reads to the end, dropping the bytes, and returns how the stream ended (Ok once the digest matched).
  Status Finish();
  // Bytes handed out by Next so far.
  uint64_t position() const { return position_; }

 private:
  void Produce(BlobReader& blobs, Sha256Digest blob, BlobReader::StreamBound bound);

  std::mutex mu_;
  std::condition_variable changed_;  // buffer filled or drained, stream ended, or stop asked
  std::string buffer_;               // guarded by mu_: bytes streamed, not yet handed out
  std::optional<Status> ended_;      // guarded by mu_: Stream's result once it returned
  bool stop_ = false;                // guarded by mu_: the consumer is gone

  std::string current_;    // consumer only: what the last Next returned
  uint64_t position_ = 0;  // consumer only
  std::thread producer_;   // started last in the constructor, joined in the destructor
};

}  // namespace lazyfs::fetch
