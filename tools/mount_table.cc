#include "tools/mount_table.h"

#include <filesystem>
#include <vector>

#include "common/fd.h"

namespace lazyfs::tools {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(std::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    auto octal = [&](size_t k) { return field[k] >= '0' && field[k] <= '7'; };
    if (field[i] == '\\' && i + 3 < field.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t space = line.find(' ', pos);
    if (space == std::string_view::npos) space = line.size();
    if (space > pos) fields.push_back(line.substr(pos, space - pos));
    pos = space + 1;
  }
  return fields;
}

}  // namespace

std::optional<MountEntry> FindMount(std::string_view mountinfo, const std::string& mountpoint) {
  std::optional<MountEntry> found;
  while (!mountinfo.empty()) {
    size_t nl = mountinfo.find('\n');
    std::string_view line = mountinfo.substr(0, nl);
    mountinfo.remove_prefix(nl == std::string_view::npos ? mountinfo.size() : nl + 1);
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
    std::vector<std::string_view> f = Fields(line);
    if (f.size() < 5 || Unescape(f[4]) != mountpoint) continue;
    size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (dash + 2 >= f.size()) continue;
    // Later lines are mounted later: the last match is the top of a stack of mounts.
    found = MountEntry{.mountpoint = mountpoint, .fstype = Unescape(f[dash + 1]), .source = Unescape(f[dash + 2])};
  }
  return found;
}

std::optional<MountEntry> MountAt(const std::string& path) {
  namespace stdfs = std::filesystem;
  std::error_code ec;
  stdfs::path absolute = stdfs::absolute(path, ec).lexically_normal();
  if (ec) return std::nullopt;
  if (!absolute.has_filename() && absolute != absolute.root_path()) absolute = absolute.parent_path();  // "a/b/"
  // Resolve symlinks in the parent only: lstat of a dead FUSE mount point fails with ENOTCONN.
  stdfs::path where = absolute;
  if (absolute != absolute.root_path()) {
    stdfs::path parent = stdfs::weakly_canonical(absolute.parent_path(), ec);
    if (ec) return std::nullopt;
    where = parent / absolute.filename();
  }
  Result<std::string> mountinfo = ReadPseudoFile("/proc/self/mountinfo");
  if (!mountinfo) return std::nullopt;
  return FindMount(*mountinfo, where.string());
}

}  // namespace lazyfs::tools
