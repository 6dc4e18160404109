#include "pkg/requirements_file.h"

#include <filesystem>
#include <set>

#include "common/fd.h"
#include "pkg/text.h"

namespace lazyfs::pkg {
namespace {

constexpr size_t kMaxIncludeDepth = 16;

// The logical lines of a file: continuations joined, comments removed, with the number of the line each
// starts on.
std::vector<std::pair<size_t, std::string>> LogicalLines(std::string_view text) {
  std::vector<std::pair<size_t, std::string>> out;
  std::string current;
  size_t start = 0;
  size_t number = 0;
  size_t from = 0;
  while (from <= text.size()) {
    size_t end = std::min(text.find('\n', from), text.size());
    std::string_view line = text.substr(from, end - from);
    bool last = end == text.size();
    from = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (current.empty()) start = number;
    // A comment starts at '#' at the beginning of a line or after whitespace (a URL's #fragment stays).
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line = line.substr(0, i);
        break;
      }
    }
    if (!line.empty() && line.back() == '\\' && !last) {
      line.remove_suffix(1);
      current += line;
      continue;
    }
    current += line;
    if (!StripPythonSpace(current).empty()) out.emplace_back(start, std::string(StripPythonSpace(current)));
    current.clear();
    if (last) break;
  }
  return out;
}

// Splits on spaces and tabs.
std::vector<std::string> Words(std::string_view line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t begin = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > begin) words.emplace_back(line.substr(begin, i - begin));
  }
  return words;
}

// The value of an option written `--name=VALUE` or `--name VALUE` at words[i] (advancing i).
std::optional<std::string> OptionValue(const std::vector<std::string>& words, size_t& i,
                                       std::initializer_list<std::string_view> names) {
  const std::string& w = words[i];
  for (std::string_view name : names) {
    if (w == name) {
      if (i + 1 >= words.size()) return std::string();
      return words[++i];
    }
    if (name.starts_with("--") && w.starts_with(std::string(name) + "=")) return w.substr(name.size() + 1);
  }
  return std::nullopt;
}

class Reader {
 public:
  explicit Reader(const FileLoader& load) : load_(load) {}

  Status Read(const std::string& path, bool constraints, size_t depth, RequirementsFile& out) {
    if (depth > kMaxIncludeDepth) return InvalidArgument(path + ": requirements files nested more than 16 deep");
    std::string canonical = std::filesystem::path(path).lexically_normal().string();
    if (!open_.insert(canonical).second) return InvalidArgument(path + ": includes itself (an -r/-c cycle)");
    std::string text = LAZYFS_TRY(load_(path));
    for (const auto& [number, line] : LogicalLines(text)) {
      std::string where = path + ":" + std::to_string(number);
      LAZYFS_TRY(ReadLine(path, where, line, constraints, depth, out));
    }
    open_.erase(canonical);
    return Ok();
  }

 private:
  Status ReadLine(const std::string& path, const std::string& where, const std::string& line, bool constraints,
                  size_t depth, RequirementsFile& out) {
    std::vector<std::string> words = Words(line);
    auto relative = [&](const std::string& name) {
      std::filesystem::path p(name);
      return p.is_absolute() ? name : (std::filesystem::path(path).parent_path() / p).string();
    };
    if (words[0].starts_with("-")) {
      size_t i = 0;
      if (auto file = OptionValue(words, i, {"-r", "--requirement"})) {
        if (file->empty()) return InvalidArgument(where + ": -r needs a file");
        return Read(relative(*file), constraints, depth + 1, out);
      }
      if (auto file = OptionValue(words, i, {"-c", "--constraint"})) {
        if (file->empty()) return InvalidArgument(where + ": -c needs a file");
        return Read(relative(*file), true, depth + 1, out);
      }
      if (auto url = OptionValue(words, i, {"-i", "--index-url"})) {
        if (url->empty()) return InvalidArgument(where + ": --index-url needs a URL");
        out.index_url = *url;
        return Ok();
      }
      if (auto url = OptionValue(words, i, {"--extra-index-url"})) {
        if (url->empty()) return InvalidArgument(where + ": --extra-index-url needs a URL");
        out.extra_index_urls.push_back(*url);
        return Ok();
      }
      return InvalidArgument(where + ": option " + words[0] +
                             " is not supported (lazyfs reads requirements, -r, -c, --index-url, "
                             "--extra-index-url and --hash)");
    }
    // The requirement runs up to the first per-requirement option.
    size_t first_option = words.size();
    for (size_t i = 0; i < words.size(); ++i) {
      if (words[i].starts_with("--")) {
        first_option = i;
        break;
      }
    }
    std::string text;
    for (size_t i = 0; i < first_option; ++i) text += (i ? " " : "") + words[i];
    Result<Requirement> requirement = Requirement::Parse(text);
    if (!requirement) return InvalidArgument(where + ": " + requirement.error().message());
    RequirementLine entry{std::move(*requirement), {}, where};
    for (size_t i = first_option; i < words.size(); ++i) {
      std::optional<std::string> hash = OptionValue(words, i, {"--hash"});
      if (!hash) return InvalidArgument(where + ": option " + words[i] + " after a requirement is not supported");
      size_t colon = hash->find(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == hash->size()) {
        return InvalidArgument(where + ": --hash wants ALGORITHM:HEX, got '" + *hash + "'");
      }
      entry.hashes.push_back(*hash);
    }
    (constraints ? out.constraints : out.requirements).push_back(std::move(entry));
    return Ok();
  }

  const FileLoader& load_;
  std::set<std::string> open_;  // the files being read, to refuse cycles
};

}  // namespace

Result<RequirementsFile> ReadRequirementsFile(const std::string& path, const FileLoader& load) {
  RequirementsFile out;
  Reader reader(load);
  LAZYFS_TRY(reader.Read(path, false, 0, out));
  return out;
}

Result<RequirementsFile> ReadRequirementsFile(const std::string& path) {
  return ReadRequirementsFile(path, [](const std::string& p) { return ReadWholeFile(p); });
}

}  // namespace lazyfs::pkg
