// Filesystem: the read-only file system a mount serves, with no FUSE in it (squashfuse's split): stat,
// lookup, readlink, read, xattrs over one UnionTree and one ChunkReader. fuse_ops.cc is the thin adapter
// that turns these results into fuse_reply_* calls and errors into errno.
//
// Thread safety: all methods are const over immutable state or go through the thread-safe ChunkReader
// and RecentFailures.
#pragma once

#include <sys/stat.h>

#include <cstdint>
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
  // Reads up to `size` bytes at `offset` into `buf`; returns how many (0 at or past the end).
  // kInvalidArgument for a non-file; errors from the chunk path carry layer and chunk. `reader` names who
  // asks (the FUSE request's pid): a read by the same reader inside a range that just failed for it gets
  // that error again at once (fs/recent_failures.h); 0 means unknown, always read.
  Result<size_t> Read(uint64_t ino, uint64_t offset, size_t size, char* buf, uint64_t reader = 0);
  // The raw value of xattr `name`, or kNotFound (ENODATA at the edge).
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
