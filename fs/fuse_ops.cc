#include "fs/fuse_ops.h"

#include <sys/xattr.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "common/log.h"

namespace lazyfs::fs {
namespace {

FuseContext& Ctx(fuse_req_t req) { return *static_cast<FuseContext*>(fuse_req_userdata(req)); }

void ReplyError(fuse_req_t req, const Error& error) { fuse_reply_err(req, ToErrno(error)); }

fuse_entry_param EntryParam(const FuseContext& ctx, const Filesystem::Entry& entry) {
  fuse_entry_param e{};
  e.ino = entry.ino;
  e.generation = 1;
  e.attr = entry.attr;
  e.attr_timeout = ctx.timeout_seconds;
  e.entry_timeout = ctx.timeout_seconds;
  return e;
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
  Result<Filesystem::Entry> entry = ctx.fs->Lookup(parent, name);
  if (!entry && entry.error().code() == ErrorCode::kNotFound) {
    // A negative entry with a timeout: the kernel remembers that the name does not exist.
    fuse_entry_param e{};
    e.ino = 0;
    e.entry_timeout = ctx.timeout_seconds;
    return (void)fuse_reply_entry(req, &e);
  }
  if (!entry) return ReplyError(req, entry.error());
  fuse_entry_param e = EntryParam(ctx, *entry);
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
  Result<std::string_view> target = Ctx(req).fs->Readlink(ino);
  if (!target) return ReplyError(req, target.error());
  fuse_reply_readlink(req, std::string(*target).c_str());
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (Ctx(req).zero_message_open) return (void)fuse_reply_err(req, ENOSYS);
  if (Status ok = Ctx(req).fs->OpenFile(ino, fi->flags); !ok) return ReplyError(req, ok.error());
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
  if (Status ok = Ctx(req).fs->OpenDir(ino); !ok) return ReplyError(req, ok.error());
  fi->cache_readdir = 1;
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

// Fills one reply buffer of `size` bytes with entries from `offset` on; each entry's offset is the offset
// of the next one, so the kernel asks again from where a full buffer stopped.
void ReaddirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, bool plus) {
  FuseContext& ctx = Ctx(req);
  std::vector<char> buf(size);
  size_t used = 0;
  std::optional<Error> failed;
  Status listed = ctx.fs->ReadDir(ino, static_cast<uint64_t>(offset), [&](const char* name, uint64_t child, uint64_t next) {
    Result<struct stat> st = ctx.fs->Stat(child);
    if (!st) {
      failed = std::move(st).error();
      return false;
    }
    size_t entry_size;
    if (plus) {
      fuse_entry_param e = EntryParam(ctx, Filesystem::Entry{child, *st});
      entry_size = fuse_add_direntry_plus(req, buf.data() + used, size - used, name, &e, static_cast<off_t>(next));
    } else {
      entry_size = fuse_add_direntry(req, buf.data() + used, size - used, name, &*st, static_cast<off_t>(next));
    }
    if (entry_size > size - used) return false;  // did not fit
    used += entry_size;
    return true;
  });
  if (!listed) return ReplyError(req, listed.error());
  if (failed && used == 0) return ReplyError(req, *failed);  // an entry we cannot describe: say so, once
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
  if (!value) return ReplyError(req, value.error());
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
