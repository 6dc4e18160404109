// Wheel tags in pip's order (see tags.h), after packaging 21.3 as Debian 12's pip 23.0.1 vendors it
// (pip/_vendor/packaging/tags.py, _manylinux.py, _musllinux.py) and pip's compatibility_tags.py.
//
// Where current packaging (26.x) differs, Debian's pip is followed:
//   - current packaging puts linux_<arch> first, before every manylinux/musllinux tag; 21.3 last;
//   - current packaging also gives manylinux tags to riscv64 and loongarch64; 21.3 only to x86_64,
//     i686, aarch64, armv7l, ppc64, ppc64le and s390x;
//   - current packaging knows free-threaded builds (cp313t, abi3t) and armv8l; 21.3 does not.
// And where pip's get_supported() differs from packaging 21.3's sys_tags(), get_supported() is
// followed, since pip installs by it: it adds cpXY-none-any (and ppXY-none-any, not pp3-none-any).
//
// Thread safety: pure functions.
#include "pkg/tags.h"

#include <algorithm>
#include <array>

#include "pkg/text.h"
#include "pkg/version.h"

namespace lazyfs::pkg {
namespace {

// packaging 21.3's _LAST_GLIBC_MINOR guess for a glibc major version that has been superseded.
constexpr int kLastGlibcMinorGuess = 50;
// PyPy's ABI series: every PyPy 3 release since 7.3.0 (2019) is 7.3.x.
constexpr std::string_view kPypyAbiSuffix = "_pp73";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLowerWordChar(char c) { return (c >= 'a' && c <= 'z') || IsDigit(c) || c == '_'; }
bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Python's str.isidentifier() for ASCII (tag interpreters are ASCII in practice).
bool IsIdentifier(std::string_view s) {
  if (s.empty() || !(IsAsciiLetter(s[0]) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsAsciiLetter(c) || IsDigit(c) || c == '_'; });
}

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// The targets of packaging 21.3's _have_compatible_abi(). i686 and armv7l there also check the running
// interpreter's ELF header; a target names its arch, so it is taken at its word.
bool HasManylinux(std::string_view arch) {
  constexpr std::array<std::string_view, 7> kArchs = {"x86_64", "i686",    "aarch64", "armv7l",
                                                      "ppc64",  "ppc64le", "s390x"};
  return std::find(kArchs.begin(), kArchs.end(), arch) != kArchs.end();
}

// The oldest glibc with a manylinux tag on `arch`: manylinux1 (2.5) on x86, manylinux2014 (2.17)
// everywhere else.
int OldestManylinuxGlibcMinor(std::string_view arch) { return (arch == "x86_64" || arch == "i686") ? 5 : 17; }

std::string_view LegacyManylinuxAlias(int major, int minor) {
  if (major != 2) return {};
  switch (minor) {
    case 17:
      return "manylinux2014";  // CentOS 7, PEP 599
    case 12:
      return "manylinux2010";  // CentOS 6, PEP 571
    case 5:
      return "manylinux1";  // CentOS 5, PEP 513
    default:
      return {};
  }
}

// A platform tag taken apart: libc version and arch.
struct PlatformParts {
  int major = 0;
  int minor = 0;
  std::string_view arch;
};

// For "manylinux2014_<arch>" and the other legacy aliases: glibc 2.<minor> and the arch.
std::optional<PlatformParts> ParseLegacyManylinux(std::string_view tag) {
  for (int minor : {17, 12, 5}) {
    std::string prefix = std::string(LegacyManylinuxAlias(2, minor)) + "_";
    if (tag.starts_with(prefix)) return PlatformParts{2, minor, tag.substr(prefix.size())};
  }
  return std::nullopt;
}

// A decimal number of 1 to 4 digits.
std::optional<int> ParseSmallNumber(std::string_view text) {
  if (text.empty() || text.size() > 4 || !std::all_of(text.begin(), text.end(), IsDigit)) return std::nullopt;
  int value = 0;
  for (char c : text) value = value * 10 + (c - '0');
  return value;
}

// "<major>_<minor>_<arch>", the tail of manylinux_ and musllinux_ tags (the arch may hold '_').
std::optional<PlatformParts> ParseVersionedArch(std::string_view rest) {
  size_t first = rest.find('_');
  size_t second = first == std::string_view::npos ? first : rest.find('_', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  std::optional<int> major = ParseSmallNumber(rest.substr(0, first));
  std::optional<int> minor = ParseSmallNumber(rest.substr(first + 1, second - first - 1));
  if (!major || !minor) return std::nullopt;
  return PlatformParts{*major, *minor, rest.substr(second + 1)};
}

// _manylinux.platform_tags(): every glibc from the target's down to the arch's oldest manylinux, each
// legacy alias right after its version. Older glibc majors count down from a guessed last minor.
std::vector<std::string> ManylinuxTags(const TargetPlatform& p) {
  std::vector<std::string> out;
  if (!HasManylinux(p.arch) || p.libc_major < 2) return out;
  const std::string suffix = "_" + p.arch;
  for (int major = p.libc_major; major >= 2; --major) {
    int top = major == p.libc_major ? p.libc_minor : kLastGlibcMinorGuess;
    int bottom = major == 2 ? OldestManylinuxGlibcMinor(p.arch) : 0;
    for (int minor = top; minor >= bottom; --minor) {
      out.push_back("manylinux_" + std::to_string(major) + "_" + std::to_string(minor) + suffix);
      std::string_view alias = LegacyManylinuxAlias(major, minor);
      if (!alias.empty()) out.push_back(std::string(alias) + suffix);
    }
  }
  return out;
}

std::string PythonVersionNoDot(int major, int minor) { return std::to_string(major) + std::to_string(minor); }

// _py_interpreter_range(): pyXY, pyX, then pyX(Y-1) down to pyX0.
std::vector<std::string> PyInterpreterRange(int major, int minor) {
  std::vector<std::string> out = {"py" + PythonVersionNoDot(major, minor), "py" + std::to_string(major)};
  for (int m = minor - 1; m >= 0; --m) out.push_back("py" + PythonVersionNoDot(major, m));
  return out;
}

std::string DefaultAbi(const TargetPython& t) {
  std::string version = PythonVersionNoDot(t.major, t.minor);
  if (t.implementation == "cp") return "cp" + version + (t.minor < 8 && t.major == 3 ? "m" : "");  // pymalloc
  if (t.implementation == "pp") return "pypy" + version + std::string(kPypyAbiSuffix);
  return "";  // another interpreter: only its "none" tags
}

}  // namespace

std::string Tag::ToString() const { return interpreter + "-" + abi + "-" + platform; }

Result<TargetPlatform> ParsePlatformTag(std::string_view tag) {
  const std::string lower = AsciiLower(tag);
  std::string_view s = lower;
  auto bad = [&](std::string_view why) {
    return InvalidArgument("platform tag \"" + std::string(tag) + "\": " + std::string(why));
  };
  TargetPlatform p;
  std::optional<PlatformParts> parts;
  if (s.starts_with("manylinux_")) {
    parts = ParseVersionedArch(s.substr(10));
    if (!parts) return bad("expected manylinux_<glibc major>_<glibc minor>_<arch>");
  } else if (s.starts_with("musllinux_")) {
    p.libc = Libc::kMusl;
    parts = ParseVersionedArch(s.substr(10));
    if (!parts) return bad("expected musllinux_<musl major>_<musl minor>_<arch>");
    if (parts->major < 1) return bad("musl versions start at 1");
  } else if (s.starts_with("linux_")) {
    p.libc = Libc::kNone;
    parts = PlatformParts{0, 0, s.substr(6)};
  } else {
    parts = ParseLegacyManylinux(s);
  }
  if (!parts) {
    return bad(
        "not a Linux platform tag (manylinux_2_28_x86_64, manylinux2014_x86_64, musllinux_1_2_aarch64, "
        "linux_x86_64)");
  }
  p.libc_major = parts->major;
  p.libc_minor = parts->minor;
  std::string_view arch = parts->arch;
  if (arch.empty() || !std::all_of(arch.begin(), arch.end(), IsLowerWordChar)) {
    return bad("the architecture must be letters, digits and '_'");
  }
  p.arch = std::string(arch);
  if (p.libc == Libc::kGlibc) {
    if (!HasManylinux(p.arch)) {
      return bad("Debian 12's pip gives " + p.arch + " no manylinux tags; use linux_" + p.arch);
    }
    int oldest = OldestManylinuxGlibcMinor(p.arch);
    if (p.libc_major < 2 || (p.libc_major == 2 && p.libc_minor < oldest)) {
      return bad("the oldest manylinux on " + p.arch + " is manylinux_2_" + std::to_string(oldest));
    }
  }
  return p;
}

std::vector<std::string> PlatformTags(const TargetPlatform& p) {
  std::vector<std::string> out;
  if (p.libc == Libc::kGlibc) {
    out = ManylinuxTags(p);
  } else if (p.libc == Libc::kMusl) {
    for (int minor = p.libc_minor; minor >= 0; --minor) {
      out.push_back("musllinux_" + std::to_string(p.libc_major) + "_" + std::to_string(minor) + "_" + p.arch);
    }
  }
  out.push_back("linux_" + p.arch);  // packaging 21.3 yields it last; current packaging first
  return out;
}

std::vector<Tag> SupportedTags(const TargetPython& t) {
  const std::vector<std::string> platforms = PlatformTags(t.platform);
  const std::string interpreter = t.implementation + PythonVersionNoDot(t.major, t.minor);
  const std::string abi = t.abi.empty() ? DefaultAbi(t) : t.abi;
  std::vector<Tag> out;
  auto for_platforms = [&](const std::string& interp, std::string_view abi_tag) {
    for (const std::string& p : platforms) out.push_back(Tag{interp, std::string(abi_tag), p});
  };

  if (t.implementation == "cp") {
    // cpython_tags(): "abi3" and "none" given as the ABI take their usual places below.
    if (!abi.empty() && abi != "abi3" && abi != "none") for_platforms(interpreter, abi);
    const bool abi3 = t.major > 3 || (t.major == 3 && t.minor >= 2);  // PEP 384 arrived in 3.2
    if (abi3) for_platforms(interpreter, "abi3");
    for_platforms(interpreter, "none");
    if (abi3) {
      for (int m = t.minor - 1; m >= 2; --m) {
        for_platforms("cp" + PythonVersionNoDot(t.major, m), "abi3");
      }
    }
  } else {
    // generic_tags(): the interpreter's ABI, then "none".
    if (!abi.empty() && abi != "none") for_platforms(interpreter, abi);
    for_platforms(interpreter, "none");
  }

  // compatible_tags(), with the interpreter pip's get_supported() passes.
  const std::vector<std::string> py_range = PyInterpreterRange(t.major, t.minor);
  for (const std::string& py : py_range) for_platforms(py, "none");
  out.push_back(Tag{interpreter, "none", "any"});
  for (const std::string& py : py_range) out.push_back(Tag{py, "none", "any"});
  return out;
}

Result<std::vector<Tag>> ParseTagSet(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("wheel tag \"" + std::string(text) + "\": " + std::string(why));
  };
  std::vector<std::string_view> components = Split(text, '-');
  if (components.size() != 3) return bad("expected <python>-<abi>-<platform>");
  std::array<std::vector<std::string_view>, 3> parts;
  size_t count = 1;
  for (size_t i = 0; i < 3; ++i) {
    parts[i] = Split(components[i], '.');
    for (std::string_view part : parts[i]) {
      if (part.empty()) return bad("empty component in \"" + std::string(components[i]) + "\"");
    }
    count *= parts[i].size();  // each factor <= text.size(), and the product is checked at once
    if (count > kMaxTagsPerSet) return bad("expands to more than " + std::to_string(kMaxTagsPerSet) + " tags");
  }
  for (std::string_view interpreter : parts[0]) {
    if (!IsIdentifier(interpreter)) return bad("invalid interpreter \"" + std::string(interpreter) + "\"");
  }
  std::vector<Tag> tags;
  for (std::string_view interpreter : parts[0]) {
    for (std::string_view abi : parts[1]) {
      for (std::string_view platform : parts[2]) {
        Tag tag{AsciiLower(interpreter), AsciiLower(abi), AsciiLower(platform)};
        if (std::find(tags.begin(), tags.end(), tag) == tags.end()) tags.push_back(std::move(tag));
      }
    }
  }
  return tags;
}

Result<WheelName> ParseWheelFilename(std::string_view filename) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("wheel file name \"" + std::string(filename) + "\": " + std::string(why));
  };
  if (!filename.ends_with(".whl")) return bad("does not end in .whl");
  std::string_view stem = filename.substr(0, filename.size() - 4);
  const size_t dashes = static_cast<size_t>(std::count(stem.begin(), stem.end(), '-'));
  if (dashes != 4 && dashes != 5) return bad("expected {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl");

  // name, version, the build tag when there are five dashes, then the tag set with its two dashes.
  std::vector<std::string_view> parts;
  for (size_t i = 0; i < dashes - 2; ++i) {
    size_t dash = stem.find('-');
    parts.push_back(stem.substr(0, dash));
    stem.remove_prefix(dash + 1);
  }
  WheelName wheel;
  wheel.name = std::string(parts[0]);
  // PEP 427 escapes runs of other characters to '_'. packaging's \w also admits non-ASCII letters,
  // which no valid project name has.
  const bool name_ok = !parts[0].empty() && parts[0].find("__") == std::string_view::npos &&
                       std::all_of(parts[0].begin(), parts[0].end(),
                                   [](char c) { return IsAsciiLetter(c) || IsDigit(c) || c == '_' || c == '.'; });
  if (!name_ok) return bad("invalid project name \"" + wheel.name + "\"");
  wheel.version = std::string(parts[1]);
  if (!Version::Parse(parts[1])) return bad("invalid version \"" + wheel.version + "\"");
  if (dashes == 5) {
    wheel.build = std::string(parts[2]);
    if (wheel.build.empty() || !IsDigit(wheel.build[0])) {
      return bad("the build tag \"" + wheel.build + "\" does not start with a digit");
    }
  }
  Result<std::vector<Tag>> tags = ParseTagSet(stem);
  if (!tags) return bad(tags.error().message());
  wheel.tags = std::move(*tags);
  return wheel;
}

std::optional<size_t> BestTagRank(const WheelName& wheel, const std::vector<Tag>& supported) {
  for (size_t i = 0; i < supported.size(); ++i) {
    if (std::find(wheel.tags.begin(), wheel.tags.end(), supported[i]) != wheel.tags.end()) return i;
  }
  return std::nullopt;
}

bool IsSdistFilename(std::string_view filename) {
  const std::string lower = AsciiLower(filename);
  for (std::string_view ext : {".tar.gz", ".zip", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar"}) {
    if (lower.size() > ext.size() && lower.ends_with(ext)) return true;
  }
  return false;
}

}  // namespace lazyfs::pkg
