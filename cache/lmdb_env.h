// LmdbEnv: the one LMDB environment of a cache directory inside this process, with its named databases,
// and the transactions handed out on it.
//
// Why one per process: LMDB forbids opening the same environment twice in one process. Its liveness checks
// rest on POSIX fcntl locks, which belong to the process and are all dropped when *any* descriptor of the
// lock file is closed; a second MDB_env on the same files would, on close, make this process's readers look
// dead to other processes (mdb_reader_check would free their slots under them). So Acquire() keeps a
// process-wide registry keyed by (pid, device, inode) of the directory and hands every caller a reference to
// the same environment; the last reference closes it under the registry lock. This registry is the only
// mutable global in cache/, and LMDB's rule is the reason. The pid in the key means a forked child never
// reuses its parent's environment (LMDB handles must not cross fork()); it opens its own.
//
// Thread safety: Acquire and all LmdbEnv methods are thread-safe. A ReadTxn/WriteTxn belongs to one thread
// at a time, and a thread holds at most one transaction at a time: every transaction holds map_mu_ shared,
// and adopting a map grown by another process (MDB_MAP_RESIZED) takes it exclusively, so a nested
// transaction could deadlock against a pending resize.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "cache/lmdb_handles.h"
#include "common/result.h"

namespace lazyfs::cache {

class LmdbEnv;

// A read-only snapshot. Values read through it are valid until it is destroyed. On destruction the
// transaction is reset and parked for reuse: with MDB_NOTLS a fresh read transaction must take a reader
// slot under LMDB's cross-process reader mutex, while renewing a parked one keeps its slot.
class ReadTxn {
 public:
  ReadTxn(ReadTxn&&) = default;
  ReadTxn& operator=(ReadTxn&&) = delete;
  ~ReadTxn();

  MDB_txn* get() const { return txn_.get(); }

 private:
  friend class LmdbEnv;
  ReadTxn(std::shared_lock<std::shared_mutex> map_lock, Txn txn, LmdbEnv* env)
      : map_lock_(std::move(map_lock)), txn_(std::move(txn)), env_(env) {}

  std::shared_lock<std::shared_mutex> map_lock_;  // declared first: released after the txn is parked
  Txn txn_;
  LmdbEnv* env_;
};

// A write transaction: LMDB allows one per environment across all processes, so keep it short (no I/O
// other than LMDB's own, no locks, no HTTP). Aborts on destruction unless committed.
class WriteTxn {
 public:
  WriteTxn(WriteTxn&&) = default;
  WriteTxn& operator=(WriteTxn&&) = delete;

  MDB_txn* get() const { return txn_.get(); }
  // Commits; the transaction is finished afterwards whether or not it succeeded.
  Status Commit(std::string_view what);

 private:
  friend class LmdbEnv;
  WriteTxn(std::shared_lock<std::shared_mutex> map_lock, Txn txn)
      : map_lock_(std::move(map_lock)), txn_(std::move(txn)) {}

  std::shared_lock<std::shared_mutex> map_lock_;
  Txn txn_;
};

class LmdbEnv {
 public:
  // Named databases: chunks, meta, access (raw digest -> coarse last-access tick, for eviction) and info
  // (the cache's own counters and settings: tracked chunk bytes, the size cap). Room is left for more.
  static constexpr unsigned kMaxDbs = 8;
  // Reader slots in the lock file, shared by every process on the host (LMDB's default is 126; each FUSE
  // thread of each mount can hold one). Only the process that creates the lock file decides the count.
  static constexpr unsigned kMaxReaders = 1024;

  // Opens `dir` (creating it and the environment if needed) or returns this process's open environment
  // for it. `map_size` (bytes, rounded up to the page size) applies only when this call opens it.
  // Clears reader slots left by dead processes. Errors: kInvalidArgument (not a directory, zero map size),
  // kPermission / kIo from the file system, kCorrupt if the files are not a valid LMDB environment.
  static Result<std::shared_ptr<LmdbEnv>> Acquire(const std::string& dir, uint64_t map_size);

  ~LmdbEnv();
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  Result<ReadTxn> BeginRead();
  Result<WriteTxn> BeginWrite();

  MDB_dbi chunks_dbi() const { return chunks_dbi_; }
  MDB_dbi meta_dbi() const { return meta_dbi_; }
  MDB_dbi access_dbi() const { return access_dbi_; }
  MDB_dbi info_dbi() const { return info_dbi_; }
  // The current map size in bytes (as last set or adopted).
  uint64_t MapSize() const;
  // The largest key LMDB accepts (511 bytes in a default build).
  size_t max_key_size() const { return max_key_size_; }
  const std::string& dir() const { return dir_; }
  // Current size of data.mdb in bytes (it grows as pages are written; the map itself is sparse).
  Result<uint64_t> DataFileSize() const;

 private:
  friend class ReadTxn;
  struct Dbis {
    MDB_dbi chunks = 0;
    MDB_dbi meta = 0;
    MDB_dbi access = 0;
    MDB_dbi info = 0;
  };
  LmdbEnv(std::string dir, EnvHandle env, Dbis dbis);
  static Result<std::unique_ptr<LmdbEnv>> Open(const std::string& dir, uint64_t map_size);

  // Another process grew the map past ours: remap at the size recorded in the file.
  Status AdoptGrownMap();
  void ParkReader(Txn txn);

  // Constant after construction.
  const std::string dir_;
  const EnvHandle env_;
  const MDB_dbi chunks_dbi_;
  const MDB_dbi meta_dbi_;
  const MDB_dbi access_dbi_;
  const MDB_dbi info_dbi_;
  const size_t max_key_size_;

  // Held shared by every live transaction, exclusively while remapping. Lock order: map_mu_ before pool_mu_.
  std::shared_mutex map_mu_;
  std::mutex pool_mu_;
  std::vector<MDB_txn*> parked_readers_;  // reset read transactions; guarded by pool_mu_
};

}  // namespace lazyfs::cache
