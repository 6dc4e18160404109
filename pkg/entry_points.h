// A wheel's entry_points.txt (the packaging spec "Entry points specification", an INI file) reduced to
// what an installer acts on: [console_scripts] and [gui_scripts], each `name = module:object.attr [extras]`,
// and the launcher script pip writes for one.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace lazyfs::pkg {

struct ScriptEntryPoint {
  std::string name;    // the command: a file name, never a path
  std::string module;  // "black"
  std::string object;  // "patched_main" or "a.b" (attribute path); never empty
  bool gui = false;
};

// The scripts of both sections, in file order. Other sections are skipped; comments (# and ;) and blank
// lines too. kCorrupt naming `where` and the line for a malformed line in a script section, a script
// name that is a path (or "." / ".."), or a value that is not `module:object` with dotted names.
Result<std::vector<ScriptEntryPoint>> ParseScriptEntryPoints(std::string_view text, std::string_view where);

// The launcher pip generates for `entry` with `interpreter` as its #! line.
std::string LauncherScript(const ScriptEntryPoint& entry, std::string_view interpreter);

}  // namespace lazyfs::pkg
