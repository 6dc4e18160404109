// Access traces: what a mount read, in order, so a later run can be replayed or prefetched.
//
// File format (version 1), all integers LEB128 varints from common/byte_codec.h:
//   header:  8 bytes magic "LZYTRACE", U64 version (= 1), Bytes(raw 32-byte image manifest digest),
//            Bytes(image name as given to mount)
//   records, until the end of the file, each starting with a U64 tag:
//     tag 0  file:    U64 id, Bytes(path)   ids are 0, 1, 2... in order; the path is relative to the
//                                           mount root, with no leading '/' ("" is never a file)
//     tag 1  access:  I64 time delta in µs from the previous access (the first: from the mount's start;
//                     signed, as threads finish out of order), U64 file id (must be defined already),
//                     U64 offset, U64 length, U64 flags (bit 0: at least one chunk missed the cache;
//                     other bits must be 0), U64 layer index (bottom = 0)
// A file's path is written once, before its first access, so a record costs ~8-12 bytes.
// Decoding bounds everything: a truncated, hostile or foreign file is kCorrupt, never a crash.
//
// TraceRecorder writes that format from a mount: FUSE threads append fixed-size records to one of a few
// sharded in-memory queues (a mutex per shard, held only for a push_back: never across I/O); one writer
// thread drains them every 100 ms, sorts each batch by time, encodes and appends it to the file. Close()
// (or the destructor) drains the rest and closes the file; call it after unmounting.
//
// Thread safety: Trace values are plain. TraceRecorder::OnRead is thread-safe; Close is called once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/digest.h"
#include "common/fd.h"
#include "common/result.h"
#include "fs/read_observer.h"
#include "fs/union_tree.h"

namespace lazyfs::fs {

inline constexpr std::string_view kTraceMagic = "LZYTRACE";
inline constexpr uint64_t kTraceVersion = 1;

struct TraceRecord {
  int64_t time_us = 0;  // since the start of the traced mount
  uint32_t file = 0;    // index into Trace::paths
  uint64_t offset = 0;
  uint64_t length = 0;
  bool miss = false;
  uint32_t layer = 0;
};

struct Trace {
  Sha256Digest manifest_digest;
  std::string image;
  std::vector<std::string> paths;
  std::vector<TraceRecord> records;  // in file order (time order, give or take concurrent reads)
};

std::string EncodeTrace(const Trace& trace);
Result<Trace> DecodeTrace(std::string_view data);
Result<Trace> ReadTraceFile(const std::string& path);
Status WriteTraceFile(const std::string& path, const Trace& trace);

// The union of several traces of one image in first-access order: each trace's times are taken as they
// are (each starts at its mount), records are ordered by time (stable), and a record repeating an earlier
// (path, offset, length) is dropped. Traces of different images are kInvalidArgument.
Result<Trace> MergeTraces(const std::vector<Trace>& traces);

class TraceRecorder final : public ReadObserver {
 public:
  // Creates (truncates) `path` and writes the header. `tree` must outlive the recorder.
  static Result<std::unique_ptr<TraceRecorder>> Open(const std::string& path, const UnionTree& tree,
                                                     const Sha256Digest& manifest_digest, const std::string& image);
  ~TraceRecorder() override;

  void OnRead(const ReadEvent& event) override;
  // Drains the queues, writes everything and closes the file; later reads are dropped. Idempotent.
  Status Close();

  uint64_t records_written() const { return records_written_.load(std::memory_order_relaxed); }
  const std::string& path() const { return path_; }

 private:
  struct Pending {
    int64_t time_ns;
    uint64_t ino;
    uint64_t offset;
    uint64_t length;
    uint32_t layer;
    bool miss;
  };
  struct Shard {
    std::mutex mu;
    std::vector<Pending> records;  // guarded by mu
  };
  static constexpr size_t kShards = 16;

  TraceRecorder(std::string path, UniqueFd fd, const UnionTree& tree);
  void WriterLoop();
  // Encodes and appends one batch (writer thread only).
  Status WriteBatch(std::vector<Pending>& batch);

  // Constant after construction.
  const std::string path_;
  const UnionTree& tree_;
  const std::chrono::steady_clock::time_point start_;

  Shard shards_[kShards];
  std::atomic<bool> closed_{false};
  std::atomic<uint64_t> records_written_{0};

  std::mutex wake_mu_;  // only for the writer's timed wait and Close's wake-up
  std::condition_variable wake_cv_;
  bool stop_ = false;  // guarded by wake_mu_

  // Writer thread only.
  UniqueFd fd_;
  std::unordered_map<uint64_t, uint32_t> file_ids_;
  int64_t last_time_us_ = 0;
  Status write_status_;

  std::thread writer_;  // last: started once everything above exists
};

}  // namespace lazyfs::fs
