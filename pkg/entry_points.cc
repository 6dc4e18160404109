#include "pkg/entry_points.h"

#include "pkg/text.h"

namespace lazyfs::pkg {
namespace {

bool IsDottedName(std::string_view text) {
  if (text.empty()) return false;
  size_t from = 0;
  for (;;) {
    size_t dot = text.find('.', from);
    std::string_view part = text.substr(from, dot == std::string_view::npos ? std::string_view::npos : dot - from);
    if (part.empty() || (part[0] >= '0' && part[0] <= '9')) return false;
    for (char c : part) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                static_cast<unsigned char>(c) >= 0x80;  // identifiers may be non-ASCII
      if (!ok) return false;
    }
    if (dot == std::string_view::npos) return true;
    from = dot + 1;
  }
}

}  // namespace

Result<std::vector<ScriptEntryPoint>> ParseScriptEntryPoints(std::string_view text, std::string_view where) {
  std::vector<ScriptEntryPoint> out;
  std::string section;
  size_t number = 0;
  for (size_t from = 0; from <= text.size();) {
    size_t end = text.find('\n', from);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = StripPythonSpace(text.substr(from, end - from));
    from = end + 1;
    ++number;
    auto bad = [&](const std::string& why) {
      return Corrupt(std::string(where) + ":" + std::to_string(number) + ": " + why);
    };
    if (line.empty() || line[0] == '#' || line[0] == ';') {
      if (end == text.size()) break;
      continue;
    }
    if (line.front() == '[') {
      if (line.back() != ']') return bad("section header without ']'");
      section = AsciiLower(StripPythonSpace(line.substr(1, line.size() - 2)));
      continue;
    }
    if (section != "console_scripts" && section != "gui_scripts") continue;
    size_t equals = line.find('=');
    if (equals == std::string_view::npos) return bad("expected 'name = module:object'");
    ScriptEntryPoint entry;
    entry.gui = section == "gui_scripts";
    entry.name = std::string(StripPythonSpace(line.substr(0, equals)));
    std::string_view value = StripPythonSpace(line.substr(equals + 1));
    if (size_t extras = value.find('['); extras != std::string_view::npos) value = StripPythonSpace(value.substr(0, extras));
    if (entry.name.empty() || entry.name == "." || entry.name == ".." ||
        entry.name.find_first_of("/\\") != std::string::npos || entry.name.find('\0') != std::string::npos) {
      return bad("script name '" + entry.name + "' is not a file name");
    }
    size_t colon = value.find(':');
    entry.module = std::string(StripPythonSpace(value.substr(0, colon)));
    if (colon != std::string_view::npos) entry.object = std::string(StripPythonSpace(value.substr(colon + 1)));
    if (!IsDottedName(entry.module) || !IsDottedName(entry.object)) {
      return bad("'" + std::string(value) + "' is not module:object (a script needs a callable)");
    }
    out.push_back(std::move(entry));
    if (end == text.size()) break;
  }
  return out;
}

std::string LauncherScript(const ScriptEntryPoint& entry, std::string_view interpreter) {
  // pip's template (pip/_internal/operations/install/wheel.py via distlib's ScriptMaker).
  std::string head = entry.object.substr(0, entry.object.find('.'));
  return "#!" + std::string(interpreter) + "\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom " + entry.module +
         " import " + head +
         "\nif __name__ == '__main__':\n    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
         "    sys.exit(" + entry.object + "())\n";
}

}  // namespace lazyfs::pkg
