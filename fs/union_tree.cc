#include "fs/union_tree.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include "common/byte_codec.h"
#include "fs/entry_name.h"

namespace lazyfs::fs {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr std::string_view kTreeMagic = "LZT1";

// The mutable tree used while merging. Hardlinks are shared_ptrs to one BuildNode.
struct BuildNode {
  LayerEntry attrs;  // name unused; type never kHardlink
  uint32_t layer = 0;
  std::map<std::string, std::shared_ptr<BuildNode>, std::less<>> children;
};

std::shared_ptr<BuildNode> ImplicitDir() {
  // A parent directory no layer names (tars may omit them): root-owned 0755, like extraction tools make.
  auto node = std::make_shared<BuildNode>();
  node->attrs.type = EntryType::kDirectory;
  node->attrs.mode = 0755;
  return node;
}

std::pair<std::string_view, std::string_view> SplitPath(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

class Builder {
 public:
  explicit Builder(const SkipReporter& report) : report_(report), root_(ImplicitDir()) {}

  void AddLayer(uint32_t layer, const LayerIndex& index) {
    struct Named {
      std::string path;
      const LayerEntry* entry;
    };
    std::vector<Named> entries;
    std::vector<std::string> opaque_dirs;
    std::vector<std::string> whiteouts;
    for (const LayerEntry& e : index.entries) {
      std::optional<std::string> path = NormalizeEntryName(e.name);
      if (!path) {
        Report(layer, e.name, "unsafe name (absolute or with '..'): entry ignored");
        continue;
      }
      auto [dir, base] = SplitPath(*path);
      if (base == kOpaqueMarker) {
        opaque_dirs.emplace_back(dir);
      } else if (base.starts_with(kWhiteoutPrefix)) {
        std::string hidden(base.substr(kWhiteoutPrefix.size()));
        if (hidden.empty() || hidden == "." || hidden == "..") {
          Report(layer, e.name, "malformed whiteout: ignored");
          continue;
        }
        whiteouts.push_back(dir.empty() ? hidden : std::string(dir) + "/" + hidden);
      } else {
        entries.push_back({std::move(*path), &e});
      }
    }
    // Whiteouts and opaque markers hide what lower layers put there, never what this layer adds, so they
    // are applied before this layer's entries whatever their order in the layer.
    for (const std::string& dir : opaque_dirs) {
      if (BuildNode* node = Walk(dir); node && node->attrs.type == EntryType::kDirectory) node->children.clear();
    }
    for (const std::string& path : whiteouts) {
      auto [dir, base] = SplitPath(path);
      if (BuildNode* parent = Walk(dir); parent && parent->attrs.type == EntryType::kDirectory) {
        if (auto it = parent->children.find(base); it != parent->children.end()) parent->children.erase(it);
      }
    }
    std::set<std::string_view> seen;
    for (const Named& n : entries) {
      if (!seen.insert(n.path).second) Report(layer, n.entry->name, "duplicate entry: the later one wins");
      Add(layer, n.path, *n.entry);
    }
  }

  std::shared_ptr<BuildNode> root() const { return root_; }

 private:
  void Report(uint32_t layer, const std::string& name, const std::string& why) {
    if (report_) report_(layer, name, why);
  }

  BuildNode* Walk(std::string_view path) {
    BuildNode* node = root_.get();
    while (!path.empty() && node) {
      size_t slash = path.find('/');
      std::string_view part = path.substr(0, slash);
      auto it = node->children.find(part);
      node = it == node->children.end() ? nullptr : it->second.get();
      path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    }
    return node;
  }

  // Returns the directory at `path`, creating missing components and replacing non-directories on the
  // way (an entry below a file means this layer turned the file into a directory).
  BuildNode* EnsureDir(std::string_view path) {
    BuildNode* node = root_.get();
    while (!path.empty()) {
      size_t slash = path.find('/');
      std::string_view part = path.substr(0, slash);
      auto it = node->children.find(part);
      if (it == node->children.end() || it->second->attrs.type != EntryType::kDirectory) {
        auto dir = ImplicitDir();
        BuildNode* raw = dir.get();
        node->children.insert_or_assign(std::string(part), std::move(dir));
        node = raw;
      } else {
        node = it->second.get();
      }
      path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    }
    return node;
  }

  void Add(uint32_t layer, const std::string& path, const LayerEntry& e) {
    if (path.empty()) {  // the layer's root entry: only a directory can be the root
      if (e.type == EntryType::kDirectory) CopyAttrs(*root_, e, layer);
      else Report(layer, e.name, "root entry is not a directory: ignored");
      return;
    }
    auto [dir, base] = SplitPath(path);
    if (e.type == EntryType::kHardlink) {
      std::optional<std::string> target = NormalizeEntryName(e.link_target);
      BuildNode* found = target ? Walk(*target) : nullptr;
      if (!found || found->attrs.type == EntryType::kDirectory) {
        Report(layer, e.name, "hardlink to missing or non-file target '" + e.link_target + "': ignored");
        return;
      }
      std::shared_ptr<BuildNode> shared = SharedAt(*target);
      EnsureDir(dir)->children.insert_or_assign(std::string(base), std::move(shared));
      return;
    }
    BuildNode* parent = EnsureDir(dir);
    auto it = parent->children.find(base);
    if (e.type == EntryType::kDirectory && it != parent->children.end() &&
        it->second->attrs.type == EntryType::kDirectory) {
      CopyAttrs(*it->second, e, layer);  // a directory over a directory merges: new attributes, same children
      return;
    }
    auto node = std::make_shared<BuildNode>();
    CopyAttrs(*node, e, layer);
    parent->children.insert_or_assign(std::string(base), std::move(node));
  }

  std::shared_ptr<BuildNode> SharedAt(std::string_view path) {
    auto [dir, base] = SplitPath(path);
    BuildNode* parent = Walk(dir);
    return parent->children.find(base)->second;  // Walk(path) succeeded, so both exist
  }

  static void CopyAttrs(BuildNode& node, const LayerEntry& e, uint32_t layer) {
    auto children = std::move(node.children);
    node.attrs = e;
    node.attrs.name.clear();
    node.layer = layer;
    node.children = std::move(children);
  }

  const SkipReporter& report_;
  std::shared_ptr<BuildNode> root_;
};

}  // namespace

UnionTree UnionTree::Build(const std::vector<LayerIndex>& layers, const SkipReporter& report_skip,
                           const std::vector<uint32_t>& slots) {
  Builder builder(report_skip);
  for (uint32_t i = 0; i < layers.size(); ++i) builder.AddLayer(i < slots.size() ? slots[i] : i, layers[i]);

  // Flatten breadth-first: inode numbers follow directory order, so a readdir walk touches nearby nodes.
  UnionTree tree;
  tree.nodes_.resize(2);
  std::unordered_map<const BuildNode*, uint64_t> ino_of;
  std::vector<std::pair<const BuildNode*, uint64_t>> queue{{builder.root().get(), kRootIno}};
  auto fill = [](Node& n, const BuildNode& b) {
    n.type = b.attrs.type;
    n.mode = b.attrs.mode & 07777;
    n.uid = b.attrs.uid;
    n.gid = b.attrs.gid;
    n.mtime_sec = b.attrs.mtime_sec;
    n.mtime_nsec = b.attrs.mtime_nsec;
    n.size = b.attrs.type == EntryType::kRegular ? b.attrs.size : 0;
    n.dev_major = b.attrs.dev_major;
    n.dev_minor = b.attrs.dev_minor;
    n.layer = b.layer;
    n.link_target = b.attrs.link_target;
    n.xattrs = b.attrs.xattrs;
    if (b.attrs.type == EntryType::kRegular) n.chunks = b.attrs.chunks;
    if (b.attrs.type == EntryType::kSymlink) n.size = b.attrs.link_target.size();
  };
  fill(tree.nodes_[kRootIno], *builder.root());
  tree.nodes_[kRootIno].parent = kRootIno;
  for (size_t q = 0; q < queue.size(); ++q) {
    auto [build_dir, dir_ino] = queue[q];
    std::vector<DirChild> children;
    children.reserve(build_dir->children.size());
    uint32_t subdirs = 0;
    for (const auto& [name, child] : build_dir->children) {
      auto [it, fresh] = ino_of.try_emplace(child.get(), tree.nodes_.size());
      if (fresh) {
        tree.nodes_.emplace_back();
        Node& n = tree.nodes_.back();
        fill(n, *child);
        n.parent = dir_ino;
        n.name = name;
        if (n.type == EntryType::kDirectory) {
          queue.emplace_back(child.get(), it->second);
          ++subdirs;
        } else if (n.type == EntryType::kRegular) {
          tree.total_file_bytes_ += n.size;
        }
      } else {
        ++tree.nodes_[it->second].nlink;  // another name of a hardlink group
      }
      children.push_back({name, it->second});
    }
    Node& dir = tree.nodes_[dir_ino];
    dir.nlink = 2 + subdirs;
    dir.children = std::move(children);
  }
  return tree;
}

std::optional<uint64_t> UnionTree::Lookup(uint64_t parent, std::string_view name) const {
  const Node* dir = Find(parent);
  if (!dir || dir->type != EntryType::kDirectory) return std::nullopt;
  auto it = std::lower_bound(dir->children.begin(), dir->children.end(), name,
                             [](const DirChild& c, std::string_view n) { return c.name < n; });
  if (it == dir->children.end() || it->name != name) return std::nullopt;
  return it->ino;
}

std::optional<uint64_t> UnionTree::Resolve(std::string_view path) const {
  uint64_t ino = kRootIno;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    if (part.empty()) continue;
    std::optional<uint64_t> next = Lookup(ino, part);
    if (!next) return std::nullopt;
    ino = *next;
  }
  return ino;
}

std::string UnionTree::PathOf(uint64_t ino) const {
  std::vector<std::string_view> parts;
  for (const Node* n = Find(ino); n && ino != kRootIno && parts.size() < nodes_.size(); n = Find(ino)) {
    parts.push_back(n->name);
    ino = n->parent;
  }
  std::string path;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    path += '/';
    path.append(*it);
  }
  return path.empty() ? "/" : path;
}

std::string UnionTree::Encode() const {
  ByteWriter w;
  w.Fixed(kTreeMagic);
  w.U64(nodes_.size());
  w.U64(total_file_bytes_);
  for (size_t i = 1; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    w.U64(static_cast<uint64_t>(n.type));
    w.U64(n.mode);
    w.U64(n.uid);
    w.U64(n.gid);
    w.I64(n.mtime_sec);
    w.U64(n.mtime_nsec);
    w.U64(n.size);
    w.U64(n.nlink);
    w.U64(n.dev_major);
    w.U64(n.dev_minor);
    w.U64(n.layer);
    w.U64(n.parent);
    w.Bytes(n.name);
    w.Bytes(n.link_target);
    EncodeXattrs(w, n.xattrs);
    EncodeChunks(w, n.chunks);
    w.U64(n.children.size());
    for (const DirChild& c : n.children) {
      w.Bytes(c.name);
      w.U64(c.ino);
    }
  }
  return w.Take();
}

Result<UnionTree> UnionTree::Decode(std::string_view data) {
  ByteReader r(data);
  if (LAZYFS_TRY(r.Fixed(kTreeMagic.size())) != kTreeMagic) return Corrupt("not an encoded union tree");
  uint64_t count = LAZYFS_TRY(r.U64());
  if (count < 2 || count > data.size()) return Corrupt("bad node count in encoded tree");
  UnionTree tree;
  tree.total_file_bytes_ = LAZYFS_TRY(r.U64());
  tree.nodes_.resize(count);
  auto u32 = [&r]() -> Result<uint32_t> {
    uint64_t v = LAZYFS_TRY(r.U64());
    if (v > UINT32_MAX) return Corrupt("encoded value out of range");
    return static_cast<uint32_t>(v);
  };
  for (size_t i = 1; i < count; ++i) {
    Node& n = tree.nodes_[i];
    uint64_t type = LAZYFS_TRY(r.U64());
    if (type > static_cast<uint64_t>(EntryType::kFifo) || type == static_cast<uint64_t>(EntryType::kHardlink)) {
      return Corrupt("bad node type in encoded tree");
    }
    n.type = static_cast<EntryType>(type);
    n.mode = LAZYFS_TRY(u32());
    n.uid = LAZYFS_TRY(u32());
    n.gid = LAZYFS_TRY(u32());
    n.mtime_sec = LAZYFS_TRY(r.I64());
    n.mtime_nsec = LAZYFS_TRY(u32());
    n.size = LAZYFS_TRY(r.U64());
    n.nlink = LAZYFS_TRY(u32());
    n.dev_major = LAZYFS_TRY(u32());
    n.dev_minor = LAZYFS_TRY(u32());
    n.layer = LAZYFS_TRY(u32());
    n.parent = LAZYFS_TRY(r.U64());
    if (n.parent == 0 || n.parent >= count) return Corrupt("bad parent in encoded tree");
    n.name = LAZYFS_TRY(r.Bytes());
    n.link_target = LAZYFS_TRY(r.Bytes());
    n.xattrs = LAZYFS_TRY(DecodeXattrs(r));
    n.chunks = LAZYFS_TRY(DecodeChunks(r));
    uint64_t children = LAZYFS_TRY(r.U64());
    if (children > count) return Corrupt("bad child count in encoded tree");
    n.children.resize(children);
    for (DirChild& c : n.children) {
      c.name = LAZYFS_TRY(r.Bytes());
      c.ino = LAZYFS_TRY(r.U64());
      if (c.ino <= kRootIno || c.ino >= count) return Corrupt("bad child inode in encoded tree");
    }
  }
  if (!r.AtEnd()) return Corrupt("trailing bytes after encoded tree");
  if (tree.nodes_[kRootIno].type != EntryType::kDirectory) return Corrupt("encoded tree root is not a directory");
  return tree;
}

}  // namespace lazyfs::fs
