// BlobPull over a scripted pushing reader: every byte arrives once and in order, the stream's end and its
// errors reach the puller, the buffer stays bounded, and a puller that stops early ends the stream.
#include "fetch/blob_pull.h"

#include <doctest/doctest.h>

#include <atomic>

#include "tests/test_support.h"

namespace lazyfs::fetch {
namespace {

// Pushes `blob` in pieces of `piece` bytes, then answers `ending` (the digest check's verdict).
class PushingReader : public BlobReader {
 public:
  PushingReader(std::string blob, size_t piece, Status ending = Ok())
      : blob_(std::move(blob)), piece_(piece), ending_(std::move(ending)) {}

  Result<std::string> ReadRange(const Sha256Digest&, uint64_t, uint64_t) override { return Internal("not used"); }
  Result<uint64_t> Size(const Sha256Digest&) override { return uint64_t{blob_.size()}; }
  Status Stream(const Sha256Digest&, const std::function<Status(std::string_view)>& sink, StreamBound bound) override {
    bound_ = bound;
    for (size_t at = 0; at < blob_.size(); at += piece_) {
      if (Status sunk = sink(std::string_view(blob_).substr(at, piece_)); !sunk) {
        stopped_by_sink = true;
        return sunk;
      }
      pushed += std::min(piece_, blob_.size() - at);
    }
    return ending_;
  }
  std::string Describe() const override { return "pushing"; }

  std::atomic<uint64_t> pushed = 0;
  std::atomic<bool> stopped_by_sink = false;
  std::atomic<StreamBound> bound_ = StreamBound::kUnbounded;

 private:
  const std::string blob_;
  const size_t piece_;
  const Status ending_;
};

}  // namespace

TEST_CASE("BlobPull: every byte once, in order, then an empty piece; the bound reaches Stream") {
  std::string blob = testing::PseudoRandomBytes(3 * BlobPull::kMaxBuffered + 12345, 3);
  PushingReader reader(blob, 16 << 10);
  std::string got;
  {
    BlobPull pull(reader, Sha256Digest{}, BlobReader::StreamBound::kReadDeadline);
    for (;;) {
      std::string_view piece = pull.Next().value();
      if (piece.empty()) break;
      CHECK(piece.size() <= BlobPull::kMaxBuffered + (16 << 10));  // bounded: at most the buffer plus a piece
      got.append(piece);
    }
    CHECK(pull.position() == blob.size());
    CHECK(pull.Next().value().empty());  // the end stays the end
    CHECK(pull.Finish());
  }
  CHECK(got == blob);
  CHECK(reader.bound_ == BlobReader::StreamBound::kReadDeadline);
}

TEST_CASE("BlobPull: the stream's error comes after the bytes it delivered") {
  PushingReader reader(std::string(1000, 'x'), 100, Corrupt("digest mismatch"));
  BlobPull pull(reader, Sha256Digest{}, BlobReader::StreamBound::kUnbounded);
  Status finished = pull.Finish();
  REQUIRE_FALSE(finished);
  CHECK(finished.error().code() == ErrorCode::kCorrupt);
  CHECK(pull.position() == 1000);
}

TEST_CASE("BlobPull: a puller that stops early stops the stream (no reading to the end)") {
  PushingReader reader(std::string(64 * BlobPull::kMaxBuffered, 'y'), 64 << 10);
  {
    BlobPull pull(reader, Sha256Digest{}, BlobReader::StreamBound::kUnbounded);
    CHECK_FALSE(pull.Next().value().empty());
  }  // the destructor stops and joins the producer
  CHECK(reader.stopped_by_sink);
  CHECK(reader.pushed < 4 * BlobPull::kMaxBuffered);
}

}  // namespace lazyfs::fetch
