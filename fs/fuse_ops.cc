#include "fs/fuse_ops.h"

#include <sys/xattr.h>

#include <cerrno>
#include <vector>

#include "common/log.h"

namespace lazyfs::fs {
namespace {

FuseContext& Ctx(fuse_req_t req) { return *static_cast<FuseContext*>(fuse_req_userdata(req)); }

void ReplyError(fuse_req_t req, const Error& error) { fuse_reply_err(req, ToErrno(error)); }

bool FillEntry(FuseContext& ctx, uint64_t ino, fuse_entry_param& e) {
  Result<struct stat> st = ctx.fs->Stat(ino);
  if (!st) return false;
  e.ino = ino;
  e.generation = 1;
  e.attr = *st;
  e.attr_timeout = ctx.timeout_seconds;
  e.entry_timeout = ctx.timeout_seconds;
  return true;
}

void Init(void* userdata, fuse_conn_info* conn) {
  // Immutable content: let the kernel read ahead asynchronously, cache symlinks and directory listings,
  // and fetch attributes with directory listings (readdirplus, always, not "auto").
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_CACHE_SYMLINKS);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_SPLICE_WRITE);
  want(FUSE_CAP_SPLICE_MOVE);
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  // Big requests: libfuse derives the kernel's max_pages from max_write; reads benefit the same way.
  conn->max_write = 1 << 20;
  conn->max_readahead = 1 << 20;
  // An open needs nothing from us (no file handles; the mount is read-only, so the kernel refuses writes
  // itself). Where the kernel allows, the first open answers ENOSYS and the kernel then opens every file
  // and directory without a round trip to us, keep_cache and cache_dir implied: a warm start through an
  // overlay on a lingering mount opens dozens of files.
  auto* ctx = static_cast<FuseContext*>(userdata);
  ctx->zero_message_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
  ctx->zero_message_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  FuseContext& ctx = Ctx(req);
  fuse_entry_param e{};
  std::optional<uint64_t> ino = ctx.fs->tree().Lookup(parent, name);
  if (!ino) {
    // A negative entry with a timeout: the kernel remembers that the name does not exist.
    e.ino = 0;
    e.entry_timeout = ctx.timeout_seconds;
    fuse_reply_entry(req, &e);
    return;
  }
  if (!FillEntry(ctx, *ino, e)) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_reply_entry(req, &e);
}

void Forget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }  // inodes live as long as the mount

void ForgetMulti(fuse_req_t req, size_t, fuse_forget_data*) { fuse_reply_none(req); }

void Getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  FuseContext& ctx = Ctx(req);
  Result<struct stat> st = ctx.fs->Stat(ino);
  if (!st) return ReplyError(req, st.error());
  fuse_reply_attr(req, &*st, ctx.timeout_seconds);
}

void Readlink(fuse_req_t req, fuse_ino_t ino) {
  const Node* n = Ctx(req).fs->tree().Find(ino);
  if (!n) return (void)fuse_reply_err(req, ENOENT);
  if (n->type != EntryType::kSymlink) return (void)fuse_reply_err(req, EINVAL);
  fuse_reply_readlink(req, n->link_target.c_str());
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (Ctx(req).zero_message_open) return (void)fuse_reply_err(req, ENOSYS);
  const Node* n = Ctx(req).fs->tree().Find(ino);
  if (!n) return (void)fuse_reply_err(req, ENOENT);
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) return (void)fuse_reply_err(req, EROFS);
  if (n->type == EntryType::kDirectory) return (void)fuse_reply_err(req, EISDIR);
  fi->keep_cache = 1;  // content is immutable: pages cached by an earlier open stay valid
  fuse_reply_open(req, fi);
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info*) {
  FuseContext& ctx = Ctx(req);
  // Sized from the request (the kernel may ask for up to max_pages at once), reused per thread.
  thread_local std::vector<char> buffer;
  if (buffer.size() < size) buffer.resize(size);
  // The pid (a thread id) lets the core answer the kernel's immediate retry of a failed readahead at once.
  uint64_t reader = static_cast<uint64_t>(fuse_req_ctx(req)->pid);
  Result<size_t> n = ctx.fs->Read(ino, static_cast<uint64_t>(offset), size, buffer.data(), reader);
  if (!n) {
    LogError("read failed: image {} file {} offset {} length {}: {}", ctx.fs->image_name(),
             ctx.fs->tree().PathOf(ino), offset, size, n.error().ToString());
    fuse_reply_err(req, EIO);  // whatever went wrong below, the reader sees an I/O error, never wrong bytes
    return;
  }
  fuse_reply_buf(req, buffer.data(), *n);
}

void Opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (Ctx(req).zero_message_opendir) return (void)fuse_reply_err(req, ENOSYS);
  const Node* n = Ctx(req).fs->tree().Find(ino);
  if (!n) return (void)fuse_reply_err(req, ENOENT);
  if (n->type != EntryType::kDirectory) return (void)fuse_reply_err(req, ENOTDIR);
  fi->cache_readdir = 1;
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

// Offsets: 0 is ".", 1 is "..", 2 + i is child i. Each entry's offset is the offset of the next one.
void ReaddirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, bool plus) {
  FuseContext& ctx = Ctx(req);
  const Node* dir = ctx.fs->tree().Find(ino);
  if (!dir) return (void)fuse_reply_err(req, ENOENT);
  if (dir->type != EntryType::kDirectory) return (void)fuse_reply_err(req, ENOTDIR);
  std::vector<char> buf(size);
  size_t used = 0;
  auto total = static_cast<off_t>(dir->children.size() + 2);
  for (off_t i = offset; i < total; ++i) {
    uint64_t child;
    const char* name;
    if (i == 0) {
      child = ino;
      name = ".";
    } else if (i == 1) {
      child = dir->parent;
      name = "..";
    } else {
      const DirChild& c = dir->children[static_cast<size_t>(i - 2)];
      child = c.ino;
      name = c.name.c_str();
    }
    size_t entry_size;
    if (plus) {
      fuse_entry_param e{};
      FillEntry(ctx, child, e);
      entry_size = fuse_add_direntry_plus(req, buf.data() + used, size - used, name, &e, i + 1);
    } else {
      struct stat st {};
      st.st_ino = child;
      st.st_mode = ctx.fs->Stat(child).value_or(st).st_mode;
      entry_size = fuse_add_direntry(req, buf.data() + used, size - used, name, &st, i + 1);
    }
    if (entry_size > size - used) break;  // did not fit; the kernel asks again from this offset
    used += entry_size;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void Readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info*) {
  ReaddirCommon(req, ino, size, offset, false);
}

void Readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info*) {
  ReaddirCommon(req, ino, size, offset, true);
}

void Statfs(fuse_req_t req, fuse_ino_t) {
  FuseContext& ctx = Ctx(req);
  struct statvfs st {};
  st.f_bsize = 4096;
  st.f_frsize = 4096;
  st.f_blocks = (ctx.fs->TotalBytes() + 4095) / 4096;
  st.f_files = ctx.fs->NodeCount();
  st.f_namemax = 255;
  st.f_flag = ST_RDONLY;
  fuse_reply_statfs(req, &st);
}

void Getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  // An image without xattrs answers ENOSYS: the kernel then fails every getxattr on this mount with
  // EOPNOTSUPP itself. Overlayfs asks each lower file and directory a fresh sandbox looks up for its
  // trusted.overlay.* xattrs, so a warm start of python through an overlay on a lingering mount took ~50
  // round trips to us for nothing.
  if (!Ctx(req).fs->HasXattrs()) return (void)fuse_reply_err(req, ENOSYS);
  Result<std::string_view> value = Ctx(req).fs->GetXattr(ino, name);
  if (!value) return (void)fuse_reply_err(req, value.error().code() == ErrorCode::kNotFound ? ENODATA : EIO);
  if (size == 0) return (void)fuse_reply_xattr(req, value->size());
  if (size < value->size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, value->data(), value->size());
}

void Listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Result<std::string> names = Ctx(req).fs->ListXattrs(ino);
  if (!names) return ReplyError(req, names.error());
  if (size == 0) return (void)fuse_reply_xattr(req, names->size());
  if (size < names->size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, names->data(), names->size());
}

// Write operations: the mount is read-only, whatever the caller tries.
void Setattr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) { fuse_reply_err(req, EROFS); }
void Mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { fuse_reply_err(req, EROFS); }
void Mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { fuse_reply_err(req, EROFS); }
void Unlink(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void Rmdir(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void Symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void Rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) { fuse_reply_err(req, EROFS); }
void Link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void Write(fuse_req_t req, fuse_ino_t, const char*, size_t, off_t, fuse_file_info*) { fuse_reply_err(req, EROFS); }
void Create(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) { fuse_reply_err(req, EROFS); }
void Setxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) { fuse_reply_err(req, EROFS); }
void Removexattr(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = Getattr;
  ops.readlink = Readlink;
  ops.open = Open;
  ops.read = Read;
  ops.opendir = Opendir;
  ops.readdir = Readdir;
  ops.readdirplus = Readdirplus;
  ops.statfs = Statfs;
  ops.getxattr = Getxattr;
  ops.listxattr = Listxattr;
  ops.setattr = Setattr;
  ops.mknod = Mknod;
  ops.mkdir = Mkdir;
  ops.unlink = Unlink;
  ops.rmdir = Rmdir;
  ops.symlink = Symlink;
  ops.rename = Rename;
  ops.link = Link;
  ops.write = Write;
  ops.create = Create;
  ops.setxattr = Setxattr;
  ops.removexattr = Removexattr;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& LowlevelOps() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return ops;
}

}  // namespace lazyfs::fs
