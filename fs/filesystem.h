// Filesystem: the read-only file system a mount serves, with no FUSE in it (squashfuse's split): stat,
// lookup, readlink, read, xattrs over one UnionTree and one ChunkReader. fuse_ops.cc is the thin adapter
// that turns these results into fuse_reply_* calls and errors into errno.
//
// Thread safety: all methods are const over immutable state or go through the thread-safe ChunkReader
// and RecentFailures.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "fs/chunk_reader.h"
#include "fs/read_observer.h"
#include "fs/recent_failures.h"
#include "fs/union_tree.h"

namespace lazyfs::fs {

class Filesystem {
 public:
  Filesystem(std::string image_name, const UnionTree& tree, ChunkReader& reader);

  const UnionTree& tree() const { return tree_; }
  const std::string& image_name() const { return image_name_; }

  // The stat of a node (st_ino = its inode number). kNotFound for an unknown inode.
  Result<struct stat> Stat(uint64_t ino) const;
  // The child `name` of directory `parent` and its stat. kNotFound when there is no such child (the
  // adapter caches that answer as a negative entry) or no such parent; kNotADirectory for a non-directory.
  struct Entry {
    uint64_t ino;
    struct stat attr;
  };
  Result<Entry> Lookup(uint64_t parent, std::string_view name) const;
  // A symlink's target, valid for the mount's life. kNotFound; kInvalidArgument for a non-symlink.
  Result<std::string_view> Readlink(uint64_t ino) const;
  // Whether the node may be opened for reading with open(2) `flags`: kNotFound; kReadOnly for any write
  // access or O_TRUNC; kIsADirectory for a directory.
  Status OpenFile(uint64_t ino, int flags) const;
  // Whether the node is a directory to list: kNotFound; kNotADirectory.
  Status OpenDir(uint64_t ino) const;
  // Calls `emit(name, child_ino, next_offset)` for the entries of directory `ino` from `offset` on ("." is
  // offset 0, ".." 1, child i is 2 + i) until it returns false (the reply buffer is full). Errors as OpenDir.
  using DirEntryFn = std::function<bool(const char* name, uint64_t ino, uint64_t next_offset)>;
  Status ReadDir(uint64_t ino, uint64_t offset, const DirEntryFn& emit) const;
  // Reads up to `size` bytes at `offset` into `buf`; returns how many (0 at or past the end).
  // kInvalidArgument for a non-file; errors from the chunk path carry layer and chunk. `reader` names who
  // asks (the FUSE request's pid): a read by the same reader inside a range that just failed for it gets
  // that error again at once (fs/recent_failures.h); 0 means unknown, always read.
  Result<size_t> Read(uint64_t ino, uint64_t offset, size_t size, char* buf, uint64_t reader = 0);
  // The raw value of xattr `name`: kNotFound for an unknown inode, kNoAttribute when it has no such xattr.
  Result<std::string_view> GetXattr(uint64_t ino, std::string_view name) const;
  // Xattr names, each followed by a NUL, as listxattr(2) returns them.
  Result<std::string> ListXattrs(uint64_t ino) const;
  // Whether any node has an xattr (fixed for the image's life).
  bool HasXattrs() const { return has_xattrs_; }

  // Registers an observer told of every successful read (stats, traces). Call before the mount serves;
  // the observer must outlive the mount.
  void AddObserver(ReadObserver* observer) { observers_.push_back(observer); }

  uint64_t NodeCount() const { return tree_.node_count(); }
  uint64_t TotalBytes() const { return tree_.total_file_bytes(); }

 private:
  const std::string image_name_;
  const UnionTree& tree_;
  ChunkReader& reader_;
  const bool has_xattrs_;
  std::vector<ReadObserver*> observers_;  // filled before serving, then constant
  RecentFailures recent_failures_;        // thread-safe
};

}  // namespace lazyfs::fs
