// Test fixtures for the chunk read path: a recording fake blob reader (it can also fail like a registry
// that is down) and one eStargz-like layer of one-chunk files over a real LMDB cache.
#pragma once

#include <doctest/doctest.h>

#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "cache/chunk_store.h"
#include "fs/blob_order.h"
#include "fs/chunk_reader.h"
#include "fs/union_tree.h"
#include "tests/fs/estargz_test_util.h"
#include "tests/test_support.h"

namespace lazyfs::fs::test_fixture {

// Counts the batch calls and the ranges asked for; serves the blob of the one layer it holds.
class RecordingBlobReader : public fetch::BlobReader {
 public:
  explicit RecordingBlobReader(std::string blob) : blob_(std::move(blob)), digest_(Sha256Of(blob_)) {}

  Result<std::string> ReadRange(const Sha256Digest& blob, uint64_t offset, uint64_t length) override {
    // The one-chunk path (FetchOnce) is gated too: which path leads a flight depends on how the readers'
    // host-wide lock attempts interleave.
    WaitForGate();
    std::lock_guard lock(mu_);
    ++calls_;
    ranges_.emplace_back(offset, length);
    if (failure_) return *failure_;
    return Slice(blob, offset, length);
  }
  Result<std::vector<std::string>> ReadRanges(const Sha256Digest& blob,
                                              const std::vector<std::pair<uint64_t, uint64_t>>& ranges) override {
    WaitForGate();
    std::lock_guard lock(mu_);
    ++calls_;
    if (failure_) return *failure_;
    std::vector<std::string> out;
    for (const auto& [offset, length] : ranges) {
      ranges_.emplace_back(offset, length);
      out.push_back(LAZYFS_TRY(Slice(blob, offset, length)));
    }
    return out;
  }
  Result<uint64_t> Size(const Sha256Digest&) override { return uint64_t{blob_.size()}; }
  Status Stream(const Sha256Digest&, const std::function<Status(std::string_view)>& sink, StreamBound) override {
    return sink(blob_);
  }
  std::string Describe() const override { return "recording"; }

  const Sha256Digest& digest() const { return digest_; }
  // Requests wait until `open()` is true (set before any reader thread starts).
  void HoldRequestsUntil(std::function<bool()> open) { gate_ = std::move(open); }
  // While set, every request fails with this error (a registry that is down); nullopt serves again.
  void FailWith(std::optional<Error> failure) {
    std::lock_guard lock(mu_);
    failure_ = std::move(failure);
  }
  size_t calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::vector<std::pair<uint64_t, uint64_t>> TakeRanges() {
    std::lock_guard lock(mu_);
    calls_ = 0;
    return std::exchange(ranges_, {});
  }

 private:
  // A slow registry: a request does not answer until the test says so (bounded, so a broken test fails
  // instead of hanging).
  void WaitForGate() const {
    if (!gate_) return;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!gate_() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  }

  Result<std::string> Slice(const Sha256Digest& blob, uint64_t offset, uint64_t length) const {
    if (blob != digest_) return NotFound("no blob");
    if (offset > blob_.size() || length > blob_.size() - offset) return Corrupt("short blob");
    return blob_.substr(offset, length);
  }

  const std::string blob_;
  const Sha256Digest digest_;
  std::mutex mu_;
  size_t calls_ = 0;                                   // guarded by mu_
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;  // guarded by mu_
  std::optional<Error> failure_;                       // guarded by mu_
  std::function<bool()> gate_;                         // set before use, then constant
};

inline std::string Content(int i) { return fmt::format("file {} ", i) + std::string(900 + i, static_cast<char>('a' + i % 26)); }

// One layer of `count` one-chunk files f00, f01, ..., each its own gzip member, back to back in the blob.
// `corrupt`: that file's member holds other bytes than its chunkDigest promises.
struct Layer {
  LayerIndex index;
  std::string blob;

  explicit Layer(int count, int corrupt = -1) {
    for (int i = 0; i < count; ++i) {
      std::string data = Content(i);
      std::string stored = data;
      if (i == corrupt) stored[0] ^= 1;
      std::string member = test::Gzip(stored);
      LayerEntry e;
      e.name = fmt::format("f{:02}", i);
      e.type = EntryType::kRegular;
      e.mode = 0644;
      e.size = data.size();
      e.chunks.push_back({0, data.size(), Sha256Of(data), blob.size(), member.size()});
      index.entries.push_back(std::move(e));
      blob += member;
    }
  }
  uint64_t member_length(int i) const { return index.entries[i].chunks[0].blob_length; }
};

struct Fixture {
  testing::TempDir dir;
  std::unique_ptr<cache::ChunkStore> store;
  Layer layer;
  UnionTree tree;
  RecordingBlobReader blobs;
  BlobOrder order;
  std::unique_ptr<ChunkReader> reader;

  // `edit` changes the layer's index (not its blob) before the tree is built: a lying TOC.
  explicit Fixture(int files, int corrupt = -1, const std::function<void(Layer&)>& edit = nullptr)
      : layer(Edited(Layer(files, corrupt), edit)),
        tree(UnionTree::Build({layer.index}, [](uint32_t, const std::string&, const std::string&) {})),
        blobs(layer.blob) {
    store = test::OpenTestStore(dir.path + "/cache");
    fetch::Descriptor d;
    d.digest = blobs.digest();
    d.size = layer.blob.size();
    reader = std::make_unique<ChunkReader>(*store, std::vector<LayerSource>{{&blobs, d, true}},
                                           [](uint32_t, const Sha256Digest&) { return Internal("no plain layers here"); });
    order = BlobOrder::Build(tree, 1);
  }

  static Layer Edited(Layer l, const std::function<void(Layer&)>& edit) {
    if (edit) edit(l);
    return l;
  }

  const Node& File(int i) const { return *tree.Find(*tree.Resolve(fmt::format("f{:02}", i))); }

  Result<std::string> ReadFile(int i) {
    const Node& n = File(i);
    std::string out(n.size, '\0');
    LAZYFS_TRY(reader->Read(n.layer, n.chunks, 0, n.size, out.data()));
    return out;
  }
  bool Cached(int i) { return store->HasChunk(File(i).chunks[0].digest).value(); }
};

}  // namespace lazyfs::fs::test_fixture
