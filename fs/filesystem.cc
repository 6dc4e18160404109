#include "fs/filesystem.h"

#include <fcntl.h>
#include <sys/sysmacros.h>

#include <fmt/format.h>

#include <algorithm>

namespace lazyfs::fs {
namespace {

mode_t TypeBits(EntryType type) {
  switch (type) {
    case EntryType::kDirectory: return S_IFDIR;
    case EntryType::kSymlink: return S_IFLNK;
    case EntryType::kCharDevice: return S_IFCHR;
    case EntryType::kBlockDevice: return S_IFBLK;
    case EntryType::kFifo: return S_IFIFO;
    case EntryType::kRegular:
    case EntryType::kHardlink: return S_IFREG;
  }
  return S_IFREG;
}

bool AnyXattrs(const UnionTree& tree) {
  for (uint64_t ino = 1; ino <= tree.node_count(); ++ino) {
    if (!tree.Find(ino)->xattrs.empty()) return true;
  }
  return false;
}

}  // namespace

Result<struct stat> Filesystem::Stat(uint64_t ino) const {
  const Node* n = tree_.Find(ino);
  if (!n) return NotFound("no inode " + std::to_string(ino));
  struct stat st {};
  st.st_ino = ino;
  st.st_mode = TypeBits(n->type) | n->mode;
  st.st_nlink = n->nlink;
  st.st_uid = n->uid;
  st.st_gid = n->gid;
  st.st_size = static_cast<off_t>(n->size);
  st.st_blksize = 4096;
  st.st_blocks = static_cast<blkcnt_t>((n->size + 511) / 512);
  if (n->type == EntryType::kCharDevice || n->type == EntryType::kBlockDevice) {
    st.st_rdev = makedev(n->dev_major, n->dev_minor);
  }
  st.st_mtim = {n->mtime_sec, static_cast<long>(n->mtime_nsec)};
  st.st_atim = st.st_mtim;
  st.st_ctim = st.st_mtim;
  return st;
}

Result<Filesystem::Entry> Filesystem::Lookup(uint64_t parent, std::string_view name) const {
  const Node* dir = tree_.Find(parent);
  if (!dir) return NotFound("no inode " + std::to_string(parent));
  if (dir->type != EntryType::kDirectory) return NotADirectory("inode " + std::to_string(parent) + " is not a directory");
  std::optional<uint64_t> ino = tree_.Lookup(parent, name);
  if (!ino) return NotFound(fmt::format("no entry '{}' in inode {}", name, parent));
  return Entry{*ino, LAZYFS_TRY(Stat(*ino))};
}

Result<std::string_view> Filesystem::Readlink(uint64_t ino) const {
  const Node* n = tree_.Find(ino);
  if (!n) return NotFound("no inode " + std::to_string(ino));
  if (n->type != EntryType::kSymlink) return InvalidArgument("not a symlink");
  return std::string_view(n->link_target);
}

Status Filesystem::OpenFile(uint64_t ino, int flags) const {
  const Node* n = tree_.Find(ino);
  if (!n) return NotFound("no inode " + std::to_string(ino));
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) return ReadOnly("the image is read-only");
  if (n->type == EntryType::kDirectory) return IsADirectory("a directory");
  return Ok();
}

Status Filesystem::OpenDir(uint64_t ino) const {
  const Node* n = tree_.Find(ino);
  if (!n) return NotFound("no inode " + std::to_string(ino));
  if (n->type != EntryType::kDirectory) return NotADirectory("inode " + std::to_string(ino) + " is not a directory");
  return Ok();
}

Status Filesystem::ReadDir(uint64_t ino, uint64_t offset, const DirEntryFn& emit) const {
  LAZYFS_TRY(OpenDir(ino));
  const Node* dir = tree_.Find(ino);
  uint64_t total = dir->children.size() + 2;
  for (uint64_t i = offset; i < total; ++i) {
    bool more = i == 0   ? emit(".", ino, 1)
                : i == 1 ? emit("..", dir->parent, 2)
                         : emit(dir->children[i - 2].name.c_str(), dir->children[i - 2].ino, i + 1);
    if (!more) break;
  }
  return Ok();
}

Result<size_t> Filesystem::Read(uint64_t ino, uint64_t offset, size_t size, char* buf, uint64_t reader) {
  const Node* n = tree_.Find(ino);
  if (!n) return NotFound("no inode " + std::to_string(ino));
  if (n->type != EntryType::kRegular) return InvalidArgument("not a regular file");
  if (offset >= n->size) return size_t{0};
  size_t length = static_cast<size_t>(std::min<uint64_t>(size, n->size - offset));
  if (reader != 0) {
    if (std::optional<Error> repeat = recent_failures_.Find(reader, ino, offset, length, RecentFailures::Clock::now())) {
      return *std::move(repeat);
    }
  }
  // The clock is read only for observers (stats, traces): a plain mount's read pays for no timestamp.
  bool observed = !observers_.empty();
  ReadEvent event{ino, n, offset, length, {}, observed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{}};
  Status read = reader_.Read(n->layer, n->chunks, offset, length, buf, observed ? &event.outcome : nullptr);
  if (!read) {
    if (reader != 0) recent_failures_.Remember(reader, ino, offset, length, read.error(), RecentFailures::Clock::now());
    return std::move(read).error();
  }
  for (ReadObserver* observer : observers_) observer->OnRead(event);
  return length;
}

Filesystem::Filesystem(std::string image_name, const UnionTree& tree, ChunkReader& reader)
    : image_name_(std::move(image_name)), tree_(tree), reader_(reader), has_xattrs_(AnyXattrs(tree)) {}

Result<std::string_view> Filesystem::GetXattr(uint64_t ino, std::string_view name) const {
  const Node* n = tree_.Find(ino);
  if (!n) return NotFound("no inode " + std::to_string(ino));
  for (const auto& [key, value] : n->xattrs) {
    if (key == name) return std::string_view(value);
  }
  return NoAttribute("no such xattr");
}

Result<std::string> Filesystem::ListXattrs(uint64_t ino) const {
  const Node* n = tree_.Find(ino);
  if (!n) return NotFound("no inode " + std::to_string(ino));
  std::string names;
  for (const auto& [key, value] : n->xattrs) {
    names += key;
    names += '\0';
  }
  return names;
}

}  // namespace lazyfs::fs
