// ReadObserver: what the Filesystem tells interested parties (access statistics, the trace recorder)
// after each successful read. Observers are registered before the mount serves and never removed.
//
// Thread safety: OnRead is called from FUSE worker threads, concurrently; an observer must not block on
// I/O or a global lock (it runs on the read path).
#pragma once

#include <chrono>
#include <cstdint>

#include "fs/chunk_reader.h"
#include "fs/union_tree.h"

namespace lazyfs::fs {

struct ReadEvent {
  uint64_t ino = 0;
  const Node* node = nullptr;   // the file read (never null); lives as long as the tree
  uint64_t offset = 0;
  uint64_t length = 0;          // bytes actually served (clamped to the file size)
  ReadOutcome outcome;          // chunk hits and misses of this read
  std::chrono::steady_clock::time_point started;  // when the read began (first-access order)
};

class ReadObserver {
 public:
  virtual ~ReadObserver() = default;
  virtual void OnRead(const ReadEvent& event) = 0;
};

}  // namespace lazyfs::fs
