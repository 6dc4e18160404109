#include "pkg/target.h"

#include <charconv>

namespace lazyfs::pkg {
namespace {

std::optional<int> SmallNumber(std::string_view text) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0 || value > 999) return std::nullopt;
  return value;
}

}  // namespace

std::string TargetEnvironment::PythonVersion() const {
  return std::to_string(python.major) + "." + std::to_string(python.minor);
}

MarkerEnvironment TargetEnvironment::Markers() const {
  bool pypy = python.implementation == "pp";
  MarkerEnvironment env;
  env.values = {
      {"implementation_name", pypy ? "pypy" : "cpython"},
      {"implementation_version", python_full_version},
      {"os_name", "posix"},  // targets are Linux: packages run in containers
      {"platform_machine", python.platform.arch},
      {"platform_python_implementation", pypy ? "PyPy" : "CPython"},
      {"platform_release", platform_release},
      {"platform_system", "Linux"},
      {"platform_version", platform_version},
      {"python_full_version", python_full_version},
      {"python_version", PythonVersion()},
      {"sys_platform", "linux"},
      {"extra", ""},
  };
  return env;
}

Result<TargetEnvironment> MakeTarget(const std::string& python_version, const std::string& platform,
                                     const std::string& implementation) {
  TargetEnvironment target;
  if (implementation != "cp" && implementation != "pp") {
    return InvalidArgument("implementation '" + implementation + "' is neither cp (CPython) nor pp (PyPy)");
  }
  target.python.implementation = implementation;
  std::vector<int> parts;
  for (size_t from = 0; from <= python_version.size();) {
    size_t dot = std::min(python_version.find('.', from), python_version.size());
    std::optional<int> n = SmallNumber(std::string_view(python_version).substr(from, dot - from));
    if (!n) break;
    parts.push_back(*n);
    from = dot + 1;
    if (dot == python_version.size()) break;
  }
  std::string rebuilt;
  for (int p : parts) rebuilt += (rebuilt.empty() ? "" : ".") + std::to_string(p);
  if (parts.size() < 2 || parts.size() > 3 || parts[0] != 3 || rebuilt != python_version) {
    return InvalidArgument("python version '" + python_version + "' is not 3.X or 3.X.Y");
  }
  target.python.major = parts[0];
  target.python.minor = parts[1];
  target.python_full_version = rebuilt + (parts.size() == 2 ? ".0" : "");
  if (!platform.empty()) target.python.platform = LAZYFS_TRY(ParsePlatformTag(platform));
  return target;
}

}  // namespace lazyfs::pkg
