#include "cache/lmdb_handles.h"

#include <string>

namespace lazyfs::cache {

Error LmdbError(int rc, std::string_view what) {
  // LMDB passes errno values through unchanged (open, mmap, pwrite); its own codes are negative.
  if (rc > 0) return PosixError(rc, std::string(what));
  std::string message = std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_MAP_FULL:
      return Error(ErrorCode::kNoSpace, std::move(message));
    case MDB_READERS_FULL:
      // Slots free up as other readers finish (or when a dead process's slots are cleared).
      return Error(ErrorCode::kIo, std::move(message), /*retryable=*/true);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return Corrupt(std::move(message));
    case MDB_BAD_VALSIZE:
      return InvalidArgument(std::move(message));
    case MDB_PANIC:
    case MDB_TXN_FULL:
      return IoError(std::move(message));
    default:
      return Internal(std::move(message));
  }
}

}  // namespace lazyfs::cache
