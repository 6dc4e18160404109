// UnionTree: the merged, immutable view of an image's layers, built once per image (and cached by
// manifest digest). It owns every path and whiteout rule of the union: name normalization and rejection of
// unsafe names, `.wh.NAME` whiteouts, `.wh..wh..opq` opaque directories, files replacing directories and
// the reverse, hardlink groups sharing one inode, implicit parent directories, and nlink.
//
// Inode numbers are indexes into one vector: kRootIno is the root, 0 is "no inode". The tree never
// changes after Build, so lookups need no locks.
//
// Thread safety: Build/Decode produce a tree; a built tree is read-only and safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "fs/layer_index.h"

namespace lazyfs::fs {

inline constexpr uint64_t kRootIno = 1;

struct DirChild {
  std::string name;
  uint64_t ino = 0;
};

struct Node {
  EntryType type = EntryType::kDirectory;  // never kHardlink: hardlinks are resolved to shared nodes
  uint32_t mode = 0;                       // 07777 bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  uint64_t size = 0;
  uint32_t nlink = 1;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint32_t layer = 0;  // index (bottom = 0) of the layer whose blob holds the chunks
  uint64_t parent = 0; // for hardlinks: the parent of the first name
  std::string name;    // the first name in the parent (for log lines and paths)
  std::string link_target;
  std::vector<std::pair<std::string, std::string>> xattrs;
  std::vector<ChunkRef> chunks;     // regular files
  std::vector<DirChild> children;   // directories, sorted by name
};

// Called for each entry the builder skips (unsafe name, dangling hardlink...), with the layer index, the
// entry's name and why. The caller logs it with the image and layer for context.
using SkipReporter = std::function<void(uint32_t layer, const std::string& name, const std::string& why)>;

class UnionTree {
 public:
  // Merges layers bottom (index 0) to top. A node's `layer` is its layer's position, or `slots[position]`
  // when slots are given (a composed mount places one package layer at two paths: two indexes, one blob).
  static UnionTree Build(const std::vector<LayerIndex>& layers, const SkipReporter& report_skip,
                         const std::vector<uint32_t>& slots = {});

  // A node by inode number, or nullptr for an unknown number.
  const Node* Find(uint64_t ino) const {
    return ino > 0 && ino < nodes_.size() ? &nodes_[ino] : nullptr;
  }
  // The child `name` of directory `parent`, or nullopt.
  std::optional<uint64_t> Lookup(uint64_t parent, std::string_view name) const;
  // The inode at a relative path ("" is the root), or nullopt.
  std::optional<uint64_t> Resolve(std::string_view path) const;
  // "/usr/bin/python3" for log lines (the first name of a hardlink group).
  std::string PathOf(uint64_t ino) const;

  uint64_t node_count() const { return nodes_.empty() ? 0 : nodes_.size() - 1; }
  // Sum of regular file sizes (each hardlink group counted once).
  uint64_t total_file_bytes() const { return total_file_bytes_; }

  // A compact binary form for the cache's meta database; Decode rejects anything malformed.
  std::string Encode() const;
  static Result<UnionTree> Decode(std::string_view data);

 private:
  std::vector<Node> nodes_;  // [0] unused, [1] root
  uint64_t total_file_bytes_ = 0;
};

}  // namespace lazyfs::fs
