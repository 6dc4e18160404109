// The target environment packages are resolved for: the interpreter (and platform) they will run in,
// never the host by accident. Built from explicit values (`--python-version X.Y[.Z]`, `--platform TAG`,
// or what the target's own python3 reports), it gives the PEP 508 marker variables, the
// Requires-Python version and the wheel tags in order of preference.
//
// Thread safety: values.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "pkg/marker.h"
#include "pkg/tags.h"

namespace lazyfs::pkg {

struct TargetEnvironment {
  TargetPython python;
  std::string python_full_version;  // "3.11.7"; "3.11.0" when only X.Y was given
  std::string platform_release;     // uname -r of the target, "" when unknown
  std::string platform_version;     // uname -v of the target, "" when unknown

  MarkerEnvironment Markers() const;  // every PEP 508 variable, "extra" = ""
  std::vector<Tag> Tags() const { return SupportedTags(python); }
  std::string PythonVersion() const;  // "3.11", for Requires-Python
};

// `python_version` "3.11" or "3.11.7"; `platform` a --platform tag ("" keeps the default, glibc 2.36
// x86_64). kInvalidArgument naming what does not parse.
Result<TargetEnvironment> MakeTarget(const std::string& python_version, const std::string& platform,
                                     const std::string& implementation = "cp");

}  // namespace lazyfs::pkg
