// RAII owners for raw LMDB handles (MDB_env, MDB_txn, MDB_cursor) and the one mapping from an LMDB return
// code to an Error. Nothing here knows about chunks; lmdb_env.h builds the shared environment on top.
//
// Thread safety: each owner is used by one thread at a time (a read transaction opened under MDB_NOTLS may
// move between threads, but never be used by two at once). LmdbError is reentrant.
#pragma once

#include <lmdb.h>

#include <string_view>
#include <utility>

#include "common/result.h"

namespace lazyfs::cache {

// Turns an LMDB return code into an Error: MDB_MAP_FULL is kNoSpace (the cache is full, eviction's job),
// structural damage is kCorrupt, a full reader table is retryable, errno values go through PosixError.
Error LmdbError(int rc, std::string_view what);

// Owns an MDB_env; closes it on destruction. Every transaction and cursor must be gone by then.
class EnvHandle {
 public:
  EnvHandle() = default;
  explicit EnvHandle(MDB_env* env) : env_(env) {}
  ~EnvHandle() {
    if (env_ != nullptr) mdb_env_close(env_);
  }
  EnvHandle(EnvHandle&& other) noexcept : env_(std::exchange(other.env_, nullptr)) {}
  EnvHandle& operator=(EnvHandle&&) = delete;
  EnvHandle(const EnvHandle&) = delete;
  EnvHandle& operator=(const EnvHandle&) = delete;

  MDB_env* get() const { return env_; }

 private:
  MDB_env* env_ = nullptr;
};

// Owns an MDB_txn: aborts it on destruction unless it was committed or released. Commit clears the handle
// before calling mdb_txn_commit, because LMDB frees the transaction whether the commit succeeds or not.
class Txn {
 public:
  Txn() = default;
  explicit Txn(MDB_txn* txn) : txn_(txn) {}
  ~Txn() { Abort(); }
  Txn(Txn&& other) noexcept : txn_(std::exchange(other.txn_, nullptr)) {}
  Txn& operator=(Txn&& other) noexcept {
    if (this != &other) {
      Abort();
      txn_ = std::exchange(other.txn_, nullptr);
    }
    return *this;
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  MDB_txn* get() const { return txn_; }

  // Returns the mdb_txn_commit code; the transaction is gone afterwards either way.
  [[nodiscard]] int Commit() { return mdb_txn_commit(std::exchange(txn_, nullptr)); }
  void Abort() {
    if (txn_ != nullptr) mdb_txn_abort(std::exchange(txn_, nullptr));
  }
  // Hands the raw transaction to the caller (used to park a reset read transaction for reuse).
  MDB_txn* Release() { return std::exchange(txn_, nullptr); }

 private:
  MDB_txn* txn_ = nullptr;
};

// Owns an MDB_cursor. Declare it after its Txn so it is closed first.
class Cursor {
 public:
  explicit Cursor(MDB_cursor* cursor) : cursor_(cursor) {}
  ~Cursor() {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  MDB_cursor* get() const { return cursor_; }

 private:
  MDB_cursor* cursor_ = nullptr;
};

// Views of LMDB values. MDB_val::mv_data is a void* for both directions; a reserved value is writable.
inline std::string_view AsView(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }
inline MDB_val AsVal(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

}  // namespace lazyfs::cache
