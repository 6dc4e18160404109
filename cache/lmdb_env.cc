#include "cache/lmdb_env.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <tuple>

#include "common/fd.h"
#include "common/log.h"

namespace lazyfs::cache {
namespace {

// Environment flags.
// - MDB_NOTLS: read transactions are not tied to a thread (FUSE worker threads come and go, and parked
//   readers are renewed on whichever thread asks next).
// - MDB_NOSYNC: commits do not fsync. This is a cache: every value can be fetched again. A killed process
//   leaves a consistent environment either way, because its writes are already in the page cache and LMDB
//   only switches the meta page after the data pages are written. Only a host crash (power loss, kernel
//   panic) can lose recent commits, or in the worst case leave a damaged file, which Open then reports as
//   kCorrupt and the operator clears. In exchange, a chunk Put costs no disk flush on the read path.
// Nothing here is process-exclusive: no MDB_NOLOCK, so every lazyfs process on the host opens the same files.
constexpr unsigned kEnvFlags = MDB_NOTLS | MDB_NOSYNC;

// The cache is shared by lazyfs processes of the same (normally root) user; others may read it.
constexpr mdb_mode_t kFileMode = 0644;

// Parked read transactions beyond this many are aborted instead (each holds a reader slot).
constexpr size_t kMaxParkedReaders = 64;

struct EnvKey {
  pid_t pid;
  dev_t dev;
  ino_t ino;
  auto operator<=>(const EnvKey&) const = default;
};

struct RegistryEntry {
  LmdbEnv* env;
  size_t refs;
};

// The per-process registry of open environments (see the header for why it exists). Function-local
// statics so there is no initialisation-order question; both live for the whole process.
std::mutex& RegistryMutex() {
  static std::mutex mu;
  return mu;
}
std::map<EnvKey, RegistryEntry>& Registry() {  // guarded by RegistryMutex()
  static auto* registry = new std::map<EnvKey, RegistryEntry>();
  return *registry;
}

// Drops one reference; the last one closes the environment while the registry lock is held, so a
// concurrent Acquire of the same directory never sees two environments open at once.
void ReleaseEnv(const EnvKey& key) {
  std::lock_guard lock(RegistryMutex());
  auto& registry = Registry();
  auto it = registry.find(key);
  if (it == registry.end()) return;
  if (--it->second.refs > 0) return;
  delete it->second.env;
  registry.erase(it);
}

// A process killed while it held a read transaction (or a parked reader) leaves its reader slot behind,
// pinning the pages of its old snapshot forever, so the file could only grow. Slots whose pid is dead are
// freed here. (When no other process has the environment open, mdb_env_open already resets the table.)
Status ClearStaleReaders(MDB_env* env, const std::string& dir) {
  int dead = 0;
  int rc = mdb_reader_check(env, &dead);
  if (rc != 0) return LmdbError(rc, "check stale readers of " + dir);
  if (dead > 0) LogInfo("cache {}: cleared {} stale reader slot(s) left by dead processes", dir, dead);
  return Ok();
}

uint64_t RoundUpToPage(uint64_t size) {
  long page = ::sysconf(_SC_PAGESIZE);
  uint64_t p = page > 0 ? static_cast<uint64_t>(page) : 4096;
  return (size + p - 1) / p * p;
}

}  // namespace

ReadTxn::~ReadTxn() {
  if (txn_.get() != nullptr) env_->ParkReader(std::move(txn_));
}

Status WriteTxn::Commit(std::string_view what) {
  int rc = txn_.Commit();
  if (rc != 0) return LmdbError(rc, std::string("commit ") + std::string(what));
  return Ok();
}

LmdbEnv::LmdbEnv(std::string dir, EnvHandle env, Dbis dbis)
    : dir_(std::move(dir)),
      env_(std::move(env)),
      chunks_dbi_(dbis.chunks),
      meta_dbi_(dbis.meta),
      access_dbi_(dbis.access),
      info_dbi_(dbis.info),
      max_key_size_(static_cast<size_t>(mdb_env_get_maxkeysize(env_.get()))) {}

LmdbEnv::~LmdbEnv() {
  // Parked readers must be gone before mdb_env_close (run by env_'s destructor after this body).
  std::lock_guard lock(pool_mu_);
  for (MDB_txn* txn : parked_readers_) mdb_txn_abort(txn);
  parked_readers_.clear();
}

Result<std::shared_ptr<LmdbEnv>> LmdbEnv::Acquire(const std::string& dir, uint64_t map_size) {
  if (dir.empty()) return InvalidArgument("cache directory is empty");
  if (map_size == 0) return InvalidArgument("cache map size is zero");
  LAZYFS_TRY(MakeDirs(dir));
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return PosixError(errno, "stat " + dir);
  if (!S_ISDIR(st.st_mode)) return InvalidArgument("cache directory " + dir + " is not a directory");
  EnvKey key{::getpid(), st.st_dev, st.st_ino};

  // The registry lock covers the whole open (including the short write transaction that creates the
  // databases): two threads opening one directory must end up with one environment. Opens are rare.
  std::lock_guard lock(RegistryMutex());
  auto& registry = Registry();
  LmdbEnv* env = nullptr;
  if (auto it = registry.find(key); it != registry.end()) {
    // Every open clears stale slots, also when this process already has the environment: a long-lived
    // process would otherwise never notice the slots of a sibling that was killed.
    LAZYFS_TRY(ClearStaleReaders(it->second.env->env_.get(), dir));
    ++it->second.refs;
    env = it->second.env;
    LogDebug("cache {}: sharing this process's open LMDB environment", dir);
  } else {
    std::unique_ptr<LmdbEnv> opened = LAZYFS_TRY(Open(dir, map_size));
    env = opened.release();
    registry.emplace(key, RegistryEntry{env, 1});
  }
  // Each caller gets its own control block whose deleter drops the registry reference.
  return std::shared_ptr<LmdbEnv>(env, [key](LmdbEnv*) { ReleaseEnv(key); });
}

Result<std::unique_ptr<LmdbEnv>> LmdbEnv::Open(const std::string& dir, uint64_t map_size) {
  MDB_env* raw_env = nullptr;
  int rc = mdb_env_create(&raw_env);
  if (rc != 0) return LmdbError(rc, "create LMDB environment for " + dir);
  EnvHandle env(raw_env);
  if ((rc = mdb_env_set_mapsize(raw_env, RoundUpToPage(map_size))) != 0 ||
      (rc = mdb_env_set_maxdbs(raw_env, kMaxDbs)) != 0 ||
      (rc = mdb_env_set_maxreaders(raw_env, kMaxReaders)) != 0) {
    return LmdbError(rc, "configure LMDB environment for " + dir);
  }
  rc = mdb_env_open(raw_env, dir.c_str(), kEnvFlags, kFileMode);
  if (rc != 0) return LmdbError(rc, "open LMDB environment " + dir);

  LAZYFS_TRY(ClearStaleReaders(raw_env, dir));

  // Create or look up the named databases. DBI handles are per environment and stay valid until it closes.
  Dbis dbis;
  for (int attempt = 0;; ++attempt) {
    MDB_txn* raw_txn = nullptr;
    rc = mdb_txn_begin(raw_env, nullptr, 0, &raw_txn);
    if (rc == MDB_MAP_RESIZED && attempt == 0) {
      // Another process grew the map between our open and this transaction.
      if ((rc = mdb_env_set_mapsize(raw_env, 0)) != 0) return LmdbError(rc, "adopt map size of " + dir);
      continue;
    }
    if (rc != 0) return LmdbError(rc, "begin transaction in " + dir);
    Txn txn(raw_txn);
    if ((rc = mdb_dbi_open(txn.get(), "chunks", MDB_CREATE, &dbis.chunks)) != 0 ||
        (rc = mdb_dbi_open(txn.get(), "meta", MDB_CREATE, &dbis.meta)) != 0 ||
        (rc = mdb_dbi_open(txn.get(), "access", MDB_CREATE, &dbis.access)) != 0 ||
        (rc = mdb_dbi_open(txn.get(), "info", MDB_CREATE, &dbis.info)) != 0) {
      return LmdbError(rc, "open databases in " + dir);
    }
    if ((rc = txn.Commit()) != 0) return LmdbError(rc, "commit database creation in " + dir);
    break;
  }
  return std::unique_ptr<LmdbEnv>(new LmdbEnv(dir, std::move(env), dbis));
}

Result<ReadTxn> LmdbEnv::BeginRead() {
  for (int attempt = 0;; ++attempt) {
    std::shared_lock map_lock(map_mu_);
    MDB_txn* raw = nullptr;
    {
      std::lock_guard pool_lock(pool_mu_);
      if (!parked_readers_.empty()) {
        raw = parked_readers_.back();
        parked_readers_.pop_back();
      }
    }
    int rc = 0;
    if (raw != nullptr) {
      rc = mdb_txn_renew(raw);
      if (rc != 0) {
        mdb_txn_abort(raw);  // a failed renew leaves the transaction reset; abort frees it
        raw = nullptr;
      }
    } else {
      rc = mdb_txn_begin(env_.get(), nullptr, MDB_RDONLY, &raw);
    }
    if (rc == 0) return ReadTxn(std::move(map_lock), Txn(raw), this);
    if (rc == MDB_MAP_RESIZED && attempt == 0) {
      map_lock.unlock();
      LAZYFS_TRY(AdoptGrownMap());
      continue;
    }
    return LmdbError(rc, "begin read transaction in " + dir_);
  }
}

Result<WriteTxn> LmdbEnv::BeginWrite() {
  for (int attempt = 0;; ++attempt) {
    std::shared_lock map_lock(map_mu_);
    MDB_txn* raw = nullptr;
    int rc = mdb_txn_begin(env_.get(), nullptr, 0, &raw);
    if (rc == 0) return WriteTxn(std::move(map_lock), Txn(raw));
    if (rc == MDB_MAP_RESIZED && attempt == 0) {
      map_lock.unlock();
      LAZYFS_TRY(AdoptGrownMap());
      continue;
    }
    return LmdbError(rc, "begin write transaction in " + dir_);
  }
}

Status LmdbEnv::AdoptGrownMap() {
  // No transaction of this process is live while map_mu_ is held exclusively, which mdb_env_set_mapsize
  // requires. Parked readers hold no snapshot, but dropping them keeps the remap free of assumptions.
  std::unique_lock map_lock(map_mu_);
  {
    std::lock_guard pool_lock(pool_mu_);
    for (MDB_txn* txn : parked_readers_) mdb_txn_abort(txn);
    parked_readers_.clear();
  }
  int rc = mdb_env_set_mapsize(env_.get(), 0);
  if (rc != 0) return LmdbError(rc, "adopt map size of " + dir_);
  LogInfo("cache {}: another process grew the LMDB map; remapped", dir_);
  return Ok();
}

void LmdbEnv::ParkReader(Txn txn) {
  mdb_txn_reset(txn.get());
  std::lock_guard lock(pool_mu_);
  if (parked_readers_.size() < kMaxParkedReaders) parked_readers_.push_back(txn.Release());
  // else: txn's destructor aborts it, freeing its reader slot.
}

uint64_t LmdbEnv::MapSize() const {
  MDB_envinfo info{};
  if (mdb_env_info(env_.get(), &info) != 0) return 0;
  return info.me_mapsize;
}

Result<uint64_t> LmdbEnv::DataFileSize() const {
  mdb_filehandle_t fd = -1;
  int rc = mdb_env_get_fd(env_.get(), &fd);
  if (rc != 0) return LmdbError(rc, "get data file of " + dir_);
  return FileSize(fd, dir_ + "/data.mdb");
}

}  // namespace lazyfs::cache
