// InflightLock: host-wide single flight for chunk fetches. Every lazyfs process that misses a chunk takes
// this lock (one lock file per digest under <cache>/inflight/) before fetching it, so a flash crowd of N
// mounts of one image fetches each chunk once across the host, not N times. The within-process single
// flight (fs/chunk_reader) runs first, so at most one thread per process ever waits here per digest.
//
// Protocol:
// - The leader holds flock(LOCK_EX) on <cache>/inflight/<hex digest> while it fetches, verifies and stores
//   the chunk, then unlinks the file and closes it (in the destructor).
// - Others wait (bounded) for the lock, then re-check the cache before fetching themselves.
// - flock belongs to the open file description, and the kernel drops it when the holder dies, so kill -9 of
//   a leader at any moment only leaves a stale, unlocked file: the next fetch of that digest takes it over
//   (and unlinks it), and `lazyfs cache gc` sweeps any leftovers.
// - A lock only counts when the locked file is still the one at the path (a leader may have unlinked it
//   while we waited on the old inode): after flock succeeds we compare fstat with stat and retry on a
//   mismatch, so two holders can never both believe they lead.
// Waiting polls with LOCK_NB and a short capped backoff: flock has no timeout, and the wait must be bounded
// by the read timeout even if the leader is stopped (SIGSTOP) or hung. This is the one place in cache/ that
// deliberately waits for another process; no LMDB transaction is ever open across it.
//
// Thread safety: an InflightLock is owned by one thread at a time; Acquire is reentrant. Not fork-safe:
// a child must not release a lock its parent took.
#pragma once

#include <chrono>
#include <string>

#include "common/digest.h"
#include "common/fd.h"
#include "common/result.h"

namespace lazyfs::cache {

class InflightLock {
 public:
  // Takes the fetch lock of `digest` in `cache_dir`, waiting up to `timeout` for another process's fetch
  // to finish. On timeout returns a lock with held() == false (the caller fetches anyway: the other
  // process may be stuck). Errors: kIo/kPermission if the inflight directory or lock file cannot be made
  // (e.g. a read-only cache); the caller then fetches without the lock.
  static Result<InflightLock> Acquire(const std::string& cache_dir, const Sha256Digest& digest,
                                      std::chrono::milliseconds timeout);

  InflightLock(InflightLock&&) = default;
  // Releases the lock held by this one first.
  InflightLock& operator=(InflightLock&& other) noexcept;
  ~InflightLock() { Release(); }

  bool held() const { return fd_.valid(); }
  // Another process held the lock when we asked: it has probably stored the chunk by now, so re-check.
  bool waited() const { return waited_; }

  // Removes lock files no process holds (left by processes killed while fetching). Returns how many.
  static Result<uint64_t> SweepStale(const std::string& cache_dir);

 private:
  InflightLock(UniqueFd fd, std::string path, bool waited) : fd_(std::move(fd)), path_(std::move(path)), waited_(waited) {}

  // Unlinks the lock file while still holding the lock, then closes it (dropping the flock).
  void Release();

  UniqueFd fd_;
  std::string path_;
  bool waited_ = false;
};

// The directory holding the lock files of `cache_dir`.
std::string InflightDir(const std::string& cache_dir);

}  // namespace lazyfs::cache
