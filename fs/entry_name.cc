// Entry-name normalization (see entry_name.h).
#include "fs/entry_name.h"

namespace lazyfs::fs {

std::optional<std::string> NormalizeEntryName(std::string_view name) {
  if (name.starts_with('/')) return std::nullopt;
  std::string out;
  while (!name.empty()) {
    size_t slash = name.find('/');
    std::string_view part = name.substr(0, slash);
    name = slash == std::string_view::npos ? std::string_view() : name.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") return std::nullopt;
    if (!out.empty()) out += '/';
    out.append(part);
  }
  return out;
}

}  // namespace lazyfs::fs
