// Package layers (see package_layer.h): tree -> fixed-form tar (libarchive's pax writer, into an unlinked
// spool file) -> WriteEstargzLayer; and placing a layer's entries under a mount path.
#include "fs/package_layer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <vector>

#include "common/fd.h"
#include "fs/entry_name.h"
#include "fetch/archive_handles.h"

namespace lazyfs::fs {
namespace {

constexpr size_t kCopyBuffer = 1 << 20;

// Whether the union builder would read `name` as a whiteout or opaque marker: judged on the name as it
// normalizes it, so "pkg/.wh..wh..opq/" or "x/.wh.six/." cannot slip past. A name that does not normalize
// is rejected by the builder anyway.
bool IsWhiteoutName(std::string_view name) {
  std::optional<std::string> normalized = NormalizeEntryName(name);
  if (!normalized) return false;
  std::string_view n = *normalized;
  size_t slash = n.rfind('/');
  return (slash == std::string_view::npos ? n : n.substr(slash + 1)).starts_with(".wh.");
}

// Every path under `dir`, relative, sorted (a parent sorts before its children).
Result<std::vector<std::string>> SortedPaths(const std::string& dir) {
  std::vector<std::string> paths;
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(dir, std::filesystem::directory_options::none, ec);
  for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    // lexically: std::filesystem::relative would resolve a symlink to its target's name.
    paths.push_back(it->path().lexically_relative(dir).string());
  }
  if (ec) return PosixError(ec.value(), "listing " + dir);
  std::sort(paths.begin(), paths.end());
  return paths;
}

Status WriteEntry(archive* a, const std::string& dir, const std::string& relative) {
  std::string path = dir + "/" + relative;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return PosixError(errno, "lstat " + path);
  if (IsWhiteoutName(relative)) {
    return Corrupt("package tree: '" + relative + "' would be a whiteout in a union; no wheel may ship it");
  }
  fetch::ArchiveEntryPtr entry(archive_entry_new());
  if (!entry) return Internal("archive_entry_new failed");
  archive_entry_set_pathname(entry.get(), relative.c_str());
  // No setuid, setgid or sticky bit: wheel code ran as root on this tree in the compile sandbox, and the
  // layer goes to every host (mounts are nosuid, but other consumers of a pushed layer may not be).
  archive_entry_set_perm(entry.get(), st.st_mode & 0777);
  archive_entry_set_uid(entry.get(), 0);
  archive_entry_set_gid(entry.get(), 0);
  archive_entry_set_mtime(entry.get(), kPackageLayerMtime, 0);
  UniqueFd file;
  if (S_ISDIR(st.st_mode)) {
    archive_entry_set_filetype(entry.get(), AE_IFDIR);
  } else if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
    if (n < 0) return PosixError(errno, "readlink " + path);
    target.resize(static_cast<size_t>(n));
    archive_entry_set_filetype(entry.get(), AE_IFLNK);
    archive_entry_set_symlink(entry.get(), target.c_str());
  } else if (S_ISREG(st.st_mode)) {
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_size(entry.get(), st.st_size);
    file = LAZYFS_TRY(OpenFile(path, O_RDONLY | O_CLOEXEC));
  } else {
    return Corrupt("package tree: '" + relative + "' is not a file, directory or symlink");
  }
  if (archive_write_header(a, entry.get()) != ARCHIVE_OK) {
    return IoError("tar header for " + relative + ": " + fetch::ArchiveErrorString(a));
  }
  if (!file.valid()) return Ok();
  std::vector<char> buffer(kCopyBuffer);
  for (;;) {
    ssize_t n = ::read(file.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(errno, "read " + path);
    if (n == 0) return Ok();
    if (archive_write_data(a, buffer.data(), static_cast<size_t>(n)) != n) {
      return IoError("tar data for " + relative + ": " + fetch::ArchiveErrorString(a));
    }
  }
}

// An unlinked read-write file in `dir`.
Result<UniqueFd> SpoolFile(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return PosixError(errno, "temporary file in " + dir);
  return UniqueFd(fd);
}

}  // namespace

Result<EstargzLayerInfo> PackTreeAsEstargz(const std::string& dir, int out_fd, const EstargzWriterOptions& options) {
  std::vector<std::string> paths = LAZYFS_TRY(SortedPaths(dir));
  UniqueFd spool = LAZYFS_TRY(SpoolFile(options.spool_dir.empty() ? TempRoot() : options.spool_dir));
  {
    fetch::ArchiveWritePtr a(archive_write_new());
    if (!a) return Internal("archive_write_new failed");
    if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
        archive_write_open_fd(a.get(), spool.get()) != ARCHIVE_OK) {
      return IoError("tar writer: " + fetch::ArchiveErrorString(a.get()));
    }
    for (const std::string& relative : paths) LAZYFS_TRY(WriteEntry(a.get(), dir, relative));
    if (archive_write_close(a.get()) != ARCHIVE_OK) return IoError("tar writer: " + fetch::ArchiveErrorString(a.get()));
  }
  if (::lseek(spool.get(), 0, SEEK_SET) != 0) return PosixError(errno, "rewinding the tar spool");
  int spool_fd = spool.get();
  ReadCallback source = [spool_fd](char* buffer, size_t capacity) -> Result<size_t> {
    for (;;) {
      ssize_t n = ::read(spool_fd, buffer, capacity);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return PosixError(errno, "reading the tar spool");
    }
  };
  return WriteEstargzLayer(source, out_fd, options);
}

LayerIndex PlaceUnder(const LayerIndex& index, const std::string& prefix, uint32_t layer,
                      const SkipReporter& report_skip) {
  auto placed = [&prefix](const std::string& name) {
    std::string_view rest = name;
    while (rest.starts_with("./")) rest.remove_prefix(2);
    if (rest == ".") rest = {};
    // An absolute name stays inside the prefix ("x//etc/passwd" normalizes to "x/etc/passwd"); ".." is
    // rejected by the union builder whatever comes before it.
    return rest.empty() ? prefix : prefix + "/" + std::string(rest);
  };
  LayerIndex out;
  out.lazy = index.lazy;
  out.uncompressed_size = index.uncompressed_size;
  out.entries.reserve(index.entries.size());
  for (const LayerEntry& e : index.entries) {
    if (IsWhiteoutName(e.name)) {
      if (report_skip) report_skip(layer, e.name, "a whiteout in a package layer (it has nothing below it to hide)");
      continue;
    }
    LayerEntry moved = e;
    moved.name = placed(e.name);
    if (e.type == EntryType::kHardlink) moved.link_target = placed(e.link_target);
    out.entries.push_back(std::move(moved));
  }
  return out;
}

}  // namespace lazyfs::fs
