#include "fetch/blob_pull.h"

namespace lazyfs::fetch {

BlobPull::BlobPull(BlobReader& blobs, const Sha256Digest& blob, BlobReader::StreamBound bound)
    : producer_([this, &blobs, blob, bound] { Produce(blobs, blob, bound); }) {}

BlobPull::~BlobPull() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  changed_.notify_all();
  producer_.join();
}

void BlobPull::Produce(BlobReader& blobs, Sha256Digest blob, BlobReader::StreamBound bound) {
  Status streamed = blobs.Stream(
      blob,
      [this](std::string_view piece) -> Status {
        std::unique_lock lock(mu_);
        changed_.wait(lock, [&] { return stop_ || buffer_.size() < kMaxBuffered; });
        if (stop_) return Internal("the reader of this stream stopped");
        buffer_.append(piece);
        changed_.notify_all();
        return Ok();
      },
      bound);
  std::lock_guard lock(mu_);
  ended_ = std::move(streamed);
  changed_.notify_all();
}

Result<std::string_view> BlobPull::Next() {
  current_.clear();
  {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return !buffer_.empty() || ended_.has_value(); });
    if (buffer_.empty()) {
      if (!*ended_) return ended_->error();
      return std::string_view();
    }
    // Swap rather than copy: the producer refills the (cleared, capacity kept) old buffer meanwhile.
    current_.swap(buffer_);
  }
  changed_.notify_all();
  position_ += current_.size();
  return std::string_view(current_);
}

Status BlobPull::Finish() {
  for (;;) {
    std::string_view piece = LAZYFS_TRY(Next());
    if (piece.empty()) return Ok();
  }
}

}  // namespace lazyfs::fetch
