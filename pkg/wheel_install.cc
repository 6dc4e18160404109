#include "pkg/wheel_install.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "common/digest.h"
#include "common/fd.h"
#include "fetch/archive_handles.h"
#include "pkg/entry_points.h"
#include "pkg/metadata.h"
#include "pkg/names.h"
#include "pkg/tags.h"
#include "pkg/version.h"
#include "pkg/wheel_record.h"

namespace lazyfs::pkg {
namespace {

constexpr size_t kBufferBytes = size_t{1} << 16;
constexpr uint64_t kMaxScriptBytes = uint64_t{64} << 20;  // .data/scripts are read whole for the #! rewrite
constexpr uint64_t kMaxInfoFileBytes = uint64_t{16} << 20;  // WHEEL, METADATA, RECORD, entry_points.txt

Result<std::string> FileSha256Hex(const std::string& path) {
  UniqueFd fd = LAZYFS_TRY(OpenFile(path, O_RDONLY | O_CLOEXEC));
  Sha256Hasher hasher;
  std::string buffer(kBufferBytes, '\0');
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("reading " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    hasher.Update(std::string_view(buffer.data(), static_cast<size_t>(n)));
  }
  return hasher.Finish().Hex();
}

// A member name as the zip holds it, without a trailing '/'. Relative, '/'-separated, no empty, "." or
// ".." parts, no backslash (a Windows separator that would mean something else on Linux; libarchive already
// reads one as '/', and then the name must still match RECORD).
Status CheckMemberName(std::string_view name, const std::string& where) {
  if (name.empty()) return Corrupt(where + ": a member with an empty name");
  if (name.size() > 4096) return Corrupt(where + ": a member name longer than 4096 bytes");
  if (name.front() == '/') return Corrupt(where + ": member '" + std::string(name) + "' is an absolute path");
  if (name.find('\\') != std::string_view::npos) {
    return Corrupt(where + ": member '" + std::string(name) + "' has a backslash in its name");
  }
  for (size_t from = 0; from <= name.size();) {
    size_t slash = std::min(name.find('/', from), name.size());
    std::string_view part = name.substr(from, slash - from);
    if (part.empty() || part == "." || part == "..") {
      return Corrupt(where + ": member '" + std::string(name) + "' has a '" + std::string(part) +
                     "' part (it would land outside the package directory)");
    }
    from = slash + 1;
  }
  return Ok();
}

struct Member {
  std::string name;  // without a trailing '/'
  bool directory = false;
  bool executable = false;
  int64_t declared_size = 0;
};

struct Layout {
  std::string dist_info;  // "Flask-2.2.2.dist-info"
  std::string data_dir;   // "Flask-2.2.2.data"
  std::string project;    // "Flask", for include/python/NAME
};

// Where a member goes in the target, or an error for a .data scheme pip does not know.
Result<std::string> Destination(const std::string& name, const Layout& layout, const std::string& where) {
  std::string prefix = layout.data_dir + "/";
  if (!name.starts_with(prefix)) return name;
  std::string rest = name.substr(prefix.size());
  size_t slash = rest.find('/');
  std::string scheme = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (scheme == "purelib" || scheme == "platlib" || scheme == "data") return path;
  if (scheme == "scripts") return path.empty() ? "bin" : "bin/" + path;
  if (scheme == "headers") return "include/python/" + layout.project + (path.empty() ? "" : "/" + path);
  return Corrupt(where + ": member '" + name + "' is in an unknown .data directory '" + scheme +
                 "' (purelib, platlib, scripts, headers and data are the ones there are)");
}

fetch::ArchiveReadPtr OpenZip() {
  fetch::ArchiveReadPtr a(archive_read_new());
  if (a) archive_read_support_format_zip_seekable(a.get());
  return a;
}

// The most bytes a wheel of `wheel_size` bytes may unpack to.
uint64_t AllowedBytes(const WheelLimits& limits, uint64_t wheel_size) {
  return std::min(limits.max_total_bytes,
                  std::max(limits.expansion_floor, limits.max_expansion * std::max<uint64_t>(wheel_size, 1)));
}

// Pass 1: every member's name and type from the central directory, checked, and the dist-info found.
Result<std::vector<Member>> ListMembers(const std::string& path, const std::string& where, const WheelLimits& limits,
                                        uint64_t wheel_size) {
  fetch::ArchiveReadPtr a = OpenZip();
  if (!a || archive_read_open_filename(a.get(), path.c_str(), kBufferBytes) != ARCHIVE_OK) {
    return Corrupt(where + ": not a readable zip: " + (a ? fetch::ArchiveErrorString(a.get()) : "out of memory"));
  }
  std::vector<Member> members;
  std::set<std::string> seen;
  uint64_t declared_total = 0;
  archive_entry* entry = nullptr;
  int r;
  while ((r = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK) {
    if (members.size() >= limits.max_members) {
      return Corrupt(where + ": more than " + std::to_string(limits.max_members) + " members");
    }
    const char* raw = archive_entry_pathname(entry);
    if (raw == nullptr) return Corrupt(where + ": a member name that is not text");
    Member m;
    m.name = raw;
    mode_t type = archive_entry_filetype(entry);
    m.directory = type == AE_IFDIR || (!m.name.empty() && m.name.back() == '/');
    while (!m.name.empty() && m.name.back() == '/') m.name.pop_back();
    LAZYFS_TRY(CheckMemberName(m.name, where));
    if (!m.directory && type != AE_IFREG) {
      return Corrupt(where + ": member '" + m.name + "' is a " + (type == AE_IFLNK ? "symbolic link" : "special file") +
                     "; a wheel holds regular files only");
    }
    if (!seen.insert(m.name).second) return Corrupt(where + ": member '" + m.name + "' appears twice");
    m.executable = (archive_entry_perm(entry) & 0111) != 0;
    m.declared_size = archive_entry_size(entry);
    if (m.declared_size < 0) return Corrupt(where + ": member '" + m.name + "' has no size");
    declared_total += static_cast<uint64_t>(m.declared_size);
    members.push_back(std::move(m));
  }
  if (r != ARCHIVE_EOF) return Corrupt(where + ": zip central directory: " + fetch::ArchiveErrorString(a.get()));
  uint64_t allowed = AllowedBytes(limits, wheel_size);
  if (declared_total > allowed) {
    return Corrupt(where + ": members add up to " + std::to_string(declared_total) + " bytes from a " +
                   std::to_string(wheel_size) + "-byte wheel (more than " + std::to_string(allowed) +
                   " allowed: a zip bomb?)");
  }
  return members;
}

Result<Layout> FindLayout(const std::vector<Member>& members, const WheelName& wheel, const std::string& where) {
  std::string canonical = CanonicalName(wheel.name);
  std::vector<std::string> infos;
  for (const Member& m : members) {
    std::string top = m.name.substr(0, m.name.find('/'));
    if (top.ends_with(".dist-info") && std::find(infos.begin(), infos.end(), top) == infos.end()) infos.push_back(top);
  }
  std::vector<std::string> ours;
  for (const std::string& info : infos) {
    std::string stem = info.substr(0, info.size() - std::string_view(".dist-info").size());
    size_t dash = stem.rfind('-');
    if (dash != std::string::npos && CanonicalName(stem.substr(0, dash)) == canonical) ours.push_back(info);
  }
  if (ours.size() != 1) {
    return Corrupt(where + ": " + (ours.empty() ? "no " : std::to_string(ours.size()) + " ") + wheel.name +
                   "-*.dist-info directories (a wheel has exactly one)");
  }
  Layout layout;
  layout.dist_info = ours[0];
  layout.data_dir = ours[0].substr(0, ours[0].size() - std::string_view(".dist-info").size()) + ".data";
  layout.project = wheel.name;
  return layout;
}

// One file written in the tree: 0644 or 0755, created fresh (never through a link).
Status WriteTreeFile(const std::string& root, const std::string& rel, std::string_view data, bool executable,
                     const std::string& where) {
  std::string path = root + "/" + rel;
  LAZYFS_TRY(MakeDirs(path.substr(0, path.rfind('/'))));
  UniqueFd fd = LAZYFS_TRY(OpenFile(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, executable ? 0755 : 0644));
  return WriteAll(fd.get(), data, where + ": " + rel);
}

struct Written {
  std::string record_hash;  // of the member's bytes, as RECORD must say
  uint64_t size = 0;
  std::string installed_hash;  // of the file on disk (differs for a script whose #! was rewritten)
  uint64_t installed_size = 0;
};

// Pass 2: the members' bytes into the tree, hashed as they come. Returns member name -> its hash and size.
Result<std::map<std::string, Written>> Extract(const std::string& path, const std::string& where,
                                               const std::vector<Member>& members, const Layout& layout,
                                               const std::string& root, const WheelInstallOptions& options,
                                               std::map<std::string, std::string>& destinations, uint64_t allowed) {
  fetch::ArchiveReadPtr a = OpenZip();
  if (!a || archive_read_open_filename(a.get(), path.c_str(), kBufferBytes) != ARCHIVE_OK) {
    return Corrupt(where + ": not a readable zip: " + (a ? fetch::ArchiveErrorString(a.get()) : "out of memory"));
  }
  std::map<std::string, const Member*> by_name;
  for (const Member& m : members) by_name[m.name] = &m;
  std::map<std::string, Written> written;
  std::map<std::string, std::string> dest_owner;  // destination -> member, to refuse two members on one path
  uint64_t total = 0;
  std::string buffer(kBufferBytes, '\0');
  archive_entry* entry = nullptr;
  int r;
  while ((r = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    while (!name.empty() && name.back() == '/') name.pop_back();
    auto it = by_name.find(name);
    if (it == by_name.end()) return Corrupt(where + ": the zip changed between two reads of its central directory");
    const Member& m = *it->second;
    std::string dest = LAZYFS_TRY(Destination(m.name, layout, where));
    if (m.directory) {
      if (!dest.empty()) LAZYFS_TRY(MakeDirs(root + "/" + dest));
      continue;
    }
    if (dest.empty()) return Corrupt(where + ": member '" + m.name + "' is a file where a directory belongs");
    if (auto [owner, fresh] = dest_owner.emplace(dest, m.name); !fresh) {
      return Corrupt(where + ": members '" + owner->second + "' and '" + m.name + "' both install to " + dest);
    }
    bool script = m.name.starts_with(layout.data_dir + "/scripts/");
    std::string target_path = root + "/" + dest;
    LAZYFS_TRY(MakeDirs(target_path.substr(0, target_path.rfind('/'))));
    UniqueFd fd;
    if (!script) {
      fd = LAZYFS_TRY(OpenFile(target_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, m.executable ? 0755 : 0644));
    }
    Sha256Hasher hasher;
    std::string script_bytes;
    uint64_t size = 0;
    for (;;) {
      la_ssize_t n = archive_read_data(a.get(), buffer.data(), buffer.size());
      if (n < 0) return Corrupt(where + ": member '" + m.name + "': " + fetch::ArchiveErrorString(a.get()));
      if (n == 0) break;
      std::string_view chunk(buffer.data(), static_cast<size_t>(n));
      size += chunk.size();
      total += chunk.size();
      if (total > allowed || size > static_cast<uint64_t>(m.declared_size)) {
        return Corrupt(where + ": member '" + m.name + "' unpacks to more bytes than declared or allowed (a zip bomb?)");
      }
      hasher.Update(chunk);
      if (script) {
        if (script_bytes.size() + chunk.size() > kMaxScriptBytes) return Corrupt(where + ": script '" + m.name + "' is too large");
        script_bytes.append(chunk);
      } else {
        LAZYFS_TRY(WriteAll(fd.get(), chunk, where + ": " + dest));
      }
    }
    if (size != static_cast<uint64_t>(m.declared_size)) {
      return Corrupt(where + ": member '" + m.name + "' holds " + std::to_string(size) + " bytes, its header says " +
                     std::to_string(m.declared_size));
    }
    if (script) {
      // pip: a "#!python" first line becomes the target interpreter.
      if (script_bytes.starts_with("#!python")) {
        size_t eol = script_bytes.find('\n');
        script_bytes = "#!" + options.interpreter + "\n" + (eol == std::string::npos ? "" : script_bytes.substr(eol + 1));
      }
      LAZYFS_TRY(WriteTreeFile(root, dest, script_bytes, true, where));
    }
    std::string hash = RecordHash(hasher.Finish());
    written[m.name] = script ? Written{hash, size, RecordHash(script_bytes), script_bytes.size()} : Written{hash, size, hash, size};
    destinations[m.name] = dest;
  }
  if (r != ARCHIVE_EOF) return Corrupt(where + ": " + fetch::ArchiveErrorString(a.get()));
  return written;
}

Result<std::string> ReadInfoFile(const std::string& root, const Layout& layout, const std::string& file,
                                 const std::string& where, bool required) {
  std::string path = root + "/" + layout.dist_info + "/" + file;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (!required) return std::string();
    return Corrupt(where + ": no " + layout.dist_info + "/" + file);
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxInfoFileBytes) {
    return Corrupt(where + ": " + layout.dist_info + "/" + file + " is larger than " + std::to_string(kMaxInfoFileBytes) + " bytes");
  }
  return ReadWholeFile(path);
}

// WHEEL: "Wheel-Version: 1.x" (a 2.x wheel may mean anything).
Status CheckWheelFile(std::string_view text, const std::string& where) {
  for (size_t from = 0; from < text.size();) {
    size_t end = std::min(text.find('\n', from), text.size());
    std::string_view line = text.substr(from, end - from);
    from = end + 1;
    if (!line.starts_with("Wheel-Version:")) continue;
    std::string_view value = line.substr(std::string_view("Wheel-Version:").size());
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.remove_suffix(1);
    if (value.starts_with("1.") || value == "1") return Ok();
    return Unsupported(where + ": Wheel-Version " + std::string(value) + " (lazyfs installs version 1 wheels)");
  }
  return Corrupt(where + ": WHEEL has no Wheel-Version");
}

Status CheckRecord(const std::vector<RecordRow>& rows, const std::map<std::string, Written>& written,
                   const Layout& layout, const std::string& where) {
  std::string record = layout.dist_info + "/RECORD";
  auto exempt = [&](const std::string& path) {
    return path == record || path == record + ".jws" || path == record + ".p7s";
  };
  std::map<std::string, const RecordRow*> by_path;
  for (const RecordRow& row : rows) {
    if (!by_path.emplace(row.path, &row).second) return Corrupt(where + ": RECORD lists '" + row.path + "' twice");
  }
  for (const auto& [name, file] : written) {
    if (exempt(name)) continue;
    auto row = by_path.find(name);
    if (row == by_path.end()) return Corrupt(where + ": '" + name + "' is not in RECORD");
    if (row->second->hash != file.record_hash) {
      return Corrupt(where + ": '" + name + "' hashes to " + file.record_hash + ", RECORD says " +
                     (row->second->hash.empty() ? "nothing" : row->second->hash));
    }
    if (row->second->size && *row->second->size != file.size) {
      return Corrupt(where + ": '" + name + "' is " + std::to_string(file.size) + " bytes, RECORD says " +
                     std::to_string(*row->second->size));
    }
  }
  for (const RecordRow& row : rows) {
    if (!exempt(row.path) && !written.contains(row.path)) {
      return Corrupt(where + ": RECORD lists '" + row.path + "', which the wheel does not contain");
    }
  }
  return Ok();
}

// Adds to `installed` the regular files under `root` it does not list yet (what finish_tree wrote, e.g.
// __pycache__/*.pyc); anything that is not a regular file or directory is refused.
Status RecordAdded(const std::string& root, std::map<std::string, Written>& installed, const std::string& where) {
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(root, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    std::filesystem::file_status status = it->symlink_status(error);
    if (error) break;
    if (std::filesystem::is_directory(status)) continue;
    std::string rel = std::filesystem::relative(it->path(), root).string();
    if (!std::filesystem::is_regular_file(status)) {
      return Corrupt(where + ": the install step left '" + rel + "', which is not a regular file");
    }
    if (installed.contains(rel)) continue;
    std::string data = LAZYFS_TRY(ReadWholeFile(it->path().string()));
    std::string hash = RecordHash(data);
    installed[rel] = Written{hash, data.size(), hash, data.size()};
  }
  if (error) return IoError(where + ": walking " + root + ": " + error.message());
  return Ok();
}

// Removes a half-built tree unless it was handed over.
struct TempTree {
  std::string path;
  bool kept = false;
  ~TempTree() {
    if (!kept && !path.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  }
};

}  // namespace

Result<InstalledWheel> InstallWheel(const std::string& wheel_path, const std::string& sha256_hex,
                                    const std::string& target, const WheelInstallOptions& options) {
  std::string filename = wheel_path.substr(wheel_path.rfind('/') + 1);
  std::string where = "wheel " + filename;
  WheelName wheel = LAZYFS_TRY(ParseWheelFilename(filename));
  std::string actual = LAZYFS_TRY(FileSha256Hex(wheel_path));
  if (actual != sha256_hex) {
    return Corrupt(where + ": sha256 is " + actual + ", the lock says " + sha256_hex + "; not installed");
  }
  struct stat st;
  if (::stat(wheel_path.c_str(), &st) != 0) return IoError(where + ": stat: " + std::strerror(errno));
  uint64_t wheel_size = static_cast<uint64_t>(st.st_size);
  std::vector<Member> members = LAZYFS_TRY(ListMembers(wheel_path, where, options.limits, wheel_size));
  Layout layout = LAZYFS_TRY(FindLayout(members, wheel, where));

  if (::access(target.c_str(), F_OK) == 0) return IoError(where + ": " + target + " exists already");
  std::string pattern = target + ".tmp-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return IoError(where + ": creating a temporary directory next to " + target + ": " + std::strerror(errno));
  TempTree tree{pattern};
  ::chmod(tree.path.c_str(), 0755);

  uint64_t allowed = AllowedBytes(options.limits, wheel_size);
  std::map<std::string, std::string> destinations;
  std::map<std::string, Written> written =
      LAZYFS_TRY(Extract(wheel_path, where, members, layout, tree.path, options, destinations, allowed));

  LAZYFS_TRY(CheckWheelFile(LAZYFS_TRY(ReadInfoFile(tree.path, layout, "WHEEL", where, true)), where));
  std::string metadata_text = LAZYFS_TRY(ReadInfoFile(tree.path, layout, "METADATA", where, true));
  CoreMetadata metadata = LAZYFS_TRY(ParseCoreMetadata(metadata_text, where + ": METADATA"));
  Result<Version> metadata_version = Version::Parse(metadata.version);
  Result<Version> file_version = Version::Parse(wheel.version);
  if (CanonicalName(metadata.name) != CanonicalName(wheel.name) || !metadata_version || !file_version ||
      !(*metadata_version == *file_version)) {
    return Corrupt(where + ": METADATA says " + metadata.name + " " + metadata.version + ", the file name " +
                   wheel.name + " " + wheel.version);
  }
  std::string record_where = where + ": " + layout.dist_info + "/RECORD";
  std::vector<RecordRow> rows =
      LAZYFS_TRY(ParseRecord(LAZYFS_TRY(ReadInfoFile(tree.path, layout, "RECORD", where, true)), record_where));
  LAZYFS_TRY(CheckRecord(rows, written, layout, where));

  // What the install adds: launchers for the entry points, INSTALLER. Their hashes go in the new RECORD.
  std::map<std::string, Written> installed;  // path in the target -> hash and size
  for (const auto& [name, file] : written) installed[destinations[name]] = file;
  auto add_file = [&](const std::string& rel, const std::string& data, bool executable) -> Status {
    LAZYFS_TRY(WriteTreeFile(tree.path, rel, data, executable, where));
    std::string hash = RecordHash(data);
    installed[rel] = Written{hash, data.size(), hash, data.size()};
    return Ok();
  };
  std::string entry_points = LAZYFS_TRY(ReadInfoFile(tree.path, layout, "entry_points.txt", where, false));
  std::vector<ScriptEntryPoint> scripts =
      LAZYFS_TRY(ParseScriptEntryPoints(entry_points, where + ": " + layout.dist_info + "/entry_points.txt"));
  for (const ScriptEntryPoint& script : scripts) {
    LAZYFS_TRY(add_file("bin/" + script.name, LauncherScript(script, options.interpreter), true));
  }
  LAZYFS_TRY(add_file(layout.dist_info + "/INSTALLER", options.installer + "\n", false));
  if (options.finish_tree) {
    LAZYFS_TRY(options.finish_tree(tree.path));
    LAZYFS_TRY(RecordAdded(tree.path, installed, where));
  }
  // Signatures of the wheel's RECORD say nothing about this one.
  for (const char* gone : {"/RECORD.jws", "/RECORD.p7s"}) {
    std::string rel = layout.dist_info + gone;
    if (installed.erase(rel)) ::unlink((tree.path + "/" + rel).c_str());
  }
  std::string record = layout.dist_info + "/RECORD";
  installed.erase(record);
  std::vector<RecordRow> new_rows;
  InstalledWheel out;
  for (const auto& [rel, file] : installed) {
    new_rows.push_back(RecordRow{rel, file.installed_hash, file.installed_size});
    ++out.files;
    out.bytes += file.installed_size;
    if (rel.starts_with("bin/")) out.scripts.push_back(rel.substr(4));
  }
  new_rows.push_back(RecordRow{record, "", std::nullopt});
  std::string record_path = tree.path + "/" + record;
  ::unlink(record_path.c_str());
  LAZYFS_TRY(WriteTreeFile(tree.path, record, RecordText(new_rows), false, where));
  ++out.files;

  if (::renameat2(AT_FDCWD, tree.path.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0) {
    return IoError(where + ": moving the install to " + target + ": " + std::strerror(errno));
  }
  tree.kept = true;
  out.name = metadata.name;
  out.version = metadata.version;
  out.dist_info = layout.dist_info;
  return out;
}

}  // namespace lazyfs::pkg
