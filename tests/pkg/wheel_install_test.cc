// Installing a wheel as `pip install --no-deps -t` lays it out, and refusing hostile wheels before
// anything is visible: wrong hash, zip bombs, escaping or absolute names, symlink members, a RECORD that
// lies, an unknown .data directory, a METADATA that names another dist.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>

#include "common/digest.h"
#include "common/fd.h"
#include "pkg/entry_points.h"
#include "pkg/wheel_install.h"
#include "pkg/wheel_record.h"
#include "tests/pkg/zip_builder.h"
#include "tests/test_support.h"

namespace lazyfs::pkg {
namespace {

using testing::ZipMemberSpec;

constexpr const char* kInfo = "Demo_Pkg-1.0.dist-info";
constexpr const char* kData = "Demo_Pkg-1.0.data";

struct WheelSpec {
  std::vector<ZipMemberSpec> members;
  bool with_record = true;
  std::string metadata = "Metadata-Version: 2.1\nName: Demo.Pkg\nVersion: 1.0\n\n";
  std::string wheel_file = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
  std::function<void(std::vector<RecordRow>&)> edit_record;
};

WheelSpec GoodWheel() {
  WheelSpec spec;
  spec.members = {
      {"demo_pkg/__init__.py", "VERSION = '1.0'\n"},
      {"demo_pkg/tool.py", "def main():\n    return 0\n"},
      {std::string(kData) + "/purelib/demo_extra.py", "X = 1\n"},
      {std::string(kData) + "/platlib/demo_native.so", "\x7f" "ELF not really"},
      {std::string(kData) + "/scripts/demo-run", "#!python\nimport demo_pkg\nprint(demo_pkg.VERSION)\n"},
      {std::string(kData) + "/headers/demo.h", "#define DEMO 1\n"},
      {std::string(kData) + "/data/share/demo/readme.txt", "data file\n"},
      {std::string(kInfo) + "/entry_points.txt", "[console_scripts]\ndemo = demo_pkg.tool:main\n[other]\nx = y:z\n"},
  };
  spec.members.back().unix_mode = 0100644;
  spec.members[1].unix_mode = 0100755;  // keeps its executable bit
  return spec;
}

// Writes the wheel (METADATA, WHEEL and a RECORD over everything added) and returns its path.
std::string WriteWheel(const std::string& dir, WheelSpec spec, const std::string& filename = "Demo_Pkg-1.0-py3-none-any.whl") {
  spec.members.push_back({std::string(kInfo) + "/METADATA", spec.metadata});
  spec.members.push_back({std::string(kInfo) + "/WHEEL", spec.wheel_file});
  if (spec.with_record) {
    std::vector<RecordRow> rows;
    for (const ZipMemberSpec& m : spec.members) {
      if (!m.name.ends_with("/")) rows.push_back({m.name, RecordHash(m.data), m.data.size()});
    }
    rows.push_back({std::string(kInfo) + "/RECORD", "", std::nullopt});
    if (spec.edit_record) spec.edit_record(rows);
    spec.members.push_back({std::string(kInfo) + "/RECORD", RecordText(rows)});
  }
  std::string path = dir + "/" + filename;
  std::string bytes = testing::BuildZip(spec.members).bytes;
  UniqueFd fd = OpenFile(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC).value();
  REQUIRE(WriteAll(fd.get(), bytes, path));
  return path;
}

std::string Sha256OfFile(const std::string& path) { return Sha256Of(ReadWholeFile(path).value()).Hex(); }

std::string InstallError(const std::string& wheel, const std::string& target, const WheelInstallOptions& options = {}) {
  Result<InstalledWheel> installed = InstallWheel(wheel, Sha256OfFile(wheel), target, options);
  REQUIRE(!installed);
  CHECK_FALSE(std::filesystem::exists(target));  // nothing installed ...
  for (const auto& e : std::filesystem::directory_iterator(target.substr(0, target.rfind('/')))) {
    CHECK_MESSAGE(e.path().string().find(".tmp-") == std::string::npos, e.path());  // ... nor left behind
  }
  return installed.error().message();
}

}  // namespace

TEST_CASE("InstallWheel: pip's --target layout, scripts, launchers, INSTALLER and a RECORD of what is on disk") {
  testing::TempDir dir;
  std::string wheel = WriteWheel(dir.path, GoodWheel());
  std::string target = dir.path + "/demo-pkg==1.0";
  WheelInstallOptions options;
  options.interpreter = "/usr/local/bin/python3.12";
  Result<InstalledWheel> installed = InstallWheel(wheel, Sha256OfFile(wheel), target, options);
  REQUIRE_MESSAGE(installed, installed.error().ToString());
  CHECK(installed->name == "Demo.Pkg");
  CHECK(installed->version == "1.0");
  CHECK(installed->dist_info == kInfo);
  CHECK(installed->scripts == std::vector<std::string>{"demo", "demo-run"});

  auto read = [&](const std::string& rel) { return ReadWholeFile(target + "/" + rel).value(); };
  auto mode = [&](const std::string& rel) {
    struct stat st;
    REQUIRE(::stat((target + "/" + rel).c_str(), &st) == 0);
    return st.st_mode & 07777;
  };
  CHECK(read("demo_pkg/__init__.py") == "VERSION = '1.0'\n");
  CHECK(read("demo_extra.py") == "X = 1\n");          // .data/purelib at the top
  CHECK(read("demo_native.so").starts_with("\x7f" "ELF"));  // .data/platlib too
  CHECK(read("include/python/Demo_Pkg/demo.h") == "#define DEMO 1\n");
  CHECK(read("share/demo/readme.txt") == "data file\n");  // .data/data at the top
  CHECK(read("bin/demo-run") == "#!/usr/local/bin/python3.12\nimport demo_pkg\nprint(demo_pkg.VERSION)\n");
  CHECK(mode("bin/demo-run") == 0755);
  CHECK(mode("demo_pkg/tool.py") == 0755);
  CHECK(mode("demo_pkg/__init__.py") == 0644);
  std::string launcher = read("bin/demo");
  CHECK(launcher.starts_with("#!/usr/local/bin/python3.12\n"));
  CHECK(launcher.find("from demo_pkg.tool import main\n") != std::string::npos);
  CHECK(launcher.find("sys.exit(main())") != std::string::npos);
  CHECK(mode("bin/demo") == 0755);
  CHECK(read(std::string(kInfo) + "/INSTALLER") == "lazyfs\n");
  CHECK_FALSE(std::filesystem::exists(target + "/" + kData));

  // The new RECORD lists every file on disk with its hash (and itself without one).
  std::vector<RecordRow> rows = ParseRecord(read(std::string(kInfo) + "/RECORD"), "RECORD").value();
  size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(target)) files += e.is_regular_file();
  CHECK(rows.size() == files);
  CHECK(installed->files == files);
  for (const RecordRow& row : rows) {
    INFO(row.path);
    REQUIRE(std::filesystem::exists(target + "/" + row.path));
    if (row.path == std::string(kInfo) + "/RECORD") {
      CHECK(row.hash.empty());
    } else {
      CHECK(row.hash == RecordHash(read(row.path)));
      CHECK(row.size == read(row.path).size());
    }
  }
}

TEST_CASE("InstallWheel: the sha256 is checked before anything else, and the target must not exist") {
  testing::TempDir dir;
  std::string wheel = WriteWheel(dir.path, GoodWheel());
  std::string target = dir.path + "/t";
  Result<InstalledWheel> wrong = InstallWheel(wheel, std::string(64, '0'), target);
  REQUIRE(!wrong);
  CHECK(wrong.error().code() == ErrorCode::kCorrupt);
  CHECK(wrong.error().message().find("wheel Demo_Pkg-1.0-py3-none-any.whl: sha256 is") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(target));

  REQUIRE(InstallWheel(wheel, Sha256OfFile(wheel), target));
  Result<InstalledWheel> again = InstallWheel(wheel, Sha256OfFile(wheel), target);
  REQUIRE(!again);
  CHECK(again.error().code() == ErrorCode::kIo);
  CHECK(again.error().message().find("exists already") != std::string::npos);
}

TEST_CASE("InstallWheel: hostile member names and types") {
  testing::TempDir dir;
  std::string target = dir.path + "/t";
  auto with = [&](ZipMemberSpec extra) {
    WheelSpec spec = GoodWheel();
    spec.members.push_back(std::move(extra));
    return WriteWheel(dir.path, spec);
  };
  CHECK(InstallError(with({"../escape.py", "x"}), target).find("'../escape.py' has a '..' part") != std::string::npos);
  CHECK(InstallError(with({"/etc/evil", "x"}), target).find("'/etc/evil' is an absolute path") != std::string::npos);
  CHECK(InstallError(with({"demo_pkg/./a.py", "x"}), target).find("has a '.' part") != std::string::npos);
  // libarchive reads a backslash as '/'; the name then differs from the one RECORD lists.
  CHECK(InstallError(with({"demo_pkg\\win.py", "x"}), target).find("'demo_pkg/win.py' is not in RECORD") !=
        std::string::npos);
  CHECK(InstallError(with({std::string(kData) + "/../../etc/x", "x"}), target).find("'..' part") != std::string::npos);
  CHECK(InstallError(with({std::string(kData) + "/evil/x", "x"}), target).find("unknown .data directory 'evil'") !=
        std::string::npos);
  ZipMemberSpec link("demo_pkg/link", "/etc/passwd");
  link.unix_mode = 0120777;
  CHECK(InstallError(with(link), target).find("'demo_pkg/link' is a symbolic link") != std::string::npos);
  CHECK(InstallError(with({"demo_pkg/__init__.py", "again"}), target).find("appears twice") != std::string::npos);
  CHECK(InstallError(with({std::string(kData) + "/purelib/demo_pkg/__init__.py", "x"}), target)
            .find("both install to demo_pkg/__init__.py") != std::string::npos);
}

TEST_CASE("InstallWheel: a RECORD that lies, or is missing") {
  testing::TempDir dir;
  std::string target = dir.path + "/t";
  WheelSpec spec = GoodWheel();
  spec.edit_record = [](std::vector<RecordRow>& rows) { rows[0].hash = RecordHash("something else"); };
  CHECK(InstallError(WriteWheel(dir.path, spec), target).find("'demo_pkg/__init__.py' hashes to sha256=") !=
        std::string::npos);
  spec.edit_record = [](std::vector<RecordRow>& rows) { rows[0].size = 1; };
  CHECK(InstallError(WriteWheel(dir.path, spec), target).find("RECORD says 1") != std::string::npos);
  spec.edit_record = [](std::vector<RecordRow>& rows) { rows.erase(rows.begin()); };
  CHECK(InstallError(WriteWheel(dir.path, spec), target).find("'demo_pkg/__init__.py' is not in RECORD") !=
        std::string::npos);
  spec.edit_record = [](std::vector<RecordRow>& rows) { rows.push_back({"demo_pkg/ghost.py", RecordHash("g"), 1}); };
  CHECK(InstallError(WriteWheel(dir.path, spec), target).find("lists 'demo_pkg/ghost.py', which the wheel does not") !=
        std::string::npos);
  WheelSpec unrecorded = GoodWheel();
  unrecorded.with_record = false;
  CHECK(InstallError(WriteWheel(dir.path, unrecorded), target).find("no Demo_Pkg-1.0.dist-info/RECORD") !=
        std::string::npos);
}

TEST_CASE("InstallWheel: METADATA and WHEEL must describe this wheel") {
  testing::TempDir dir;
  std::string target = dir.path + "/t";
  WheelSpec other = GoodWheel();
  other.metadata = "Metadata-Version: 2.1\nName: other\nVersion: 1.0\n\n";
  CHECK(InstallError(WriteWheel(dir.path, other), target).find("METADATA says other 1.0, the file name Demo_Pkg 1.0") !=
        std::string::npos);
  WheelSpec newer = GoodWheel();
  newer.wheel_file = "Wheel-Version: 2.0\n";
  std::string v2_wheel = WriteWheel(dir.path, newer);
  Result<InstalledWheel> v2 = InstallWheel(v2_wheel, Sha256OfFile(v2_wheel), target);
  REQUIRE(!v2);
  CHECK_MESSAGE(v2.error().code() == ErrorCode::kUnsupported, v2.error().ToString());
  CHECK_FALSE(std::filesystem::exists(target));

  WheelSpec two = GoodWheel();
  two.members.push_back({"Demo_Pkg-2.0.dist-info/METADATA", "x"});
  CHECK(InstallError(WriteWheel(dir.path, two), target).find("2 Demo_Pkg-*.dist-info directories") != std::string::npos);
  WheelSpec bad_entry = GoodWheel();
  bad_entry.members[7].data = "[console_scripts]\n../evil = demo_pkg.tool:main\n";
  CHECK(InstallError(WriteWheel(dir.path, bad_entry), target).find("script name '../evil' is not a file name") !=
        std::string::npos);
}

TEST_CASE("InstallWheel: a zip bomb is refused from its declared sizes, and from what it really unpacks to") {
  testing::TempDir dir;
  std::string target = dir.path + "/t";
  WheelSpec bomb = GoodWheel();
  bomb.members.push_back({"demo_pkg/zeros.bin", std::string(8 << 20, '\0')});  // deflates ~1000:1
  std::string wheel = WriteWheel(dir.path, bomb);
  WheelInstallOptions options;
  options.limits.expansion_floor = 1 << 20;
  options.limits.max_expansion = 50;
  CHECK(InstallError(wheel, target, options).find("a zip bomb?") != std::string::npos);
  options.limits = WheelLimits{};
  options.limits.max_total_bytes = 4 << 20;
  CHECK(InstallError(wheel, target, options).find("a zip bomb?") != std::string::npos);
  // The same wheel under the default limits installs.
  CHECK(InstallWheel(wheel, Sha256OfFile(wheel), target));
}

TEST_CASE("RECORD and entry_points.txt: quoting, CRLF, and errors naming the line") {
  std::vector<RecordRow> rows = ParseRecord("a.py,sha256=x,3\r\n\"b,c.py\",,\n\"q\"\"d.py\",sha256=y,\n", "R").value();
  REQUIRE(rows.size() == 3);
  CHECK(rows[1].path == "b,c.py");
  CHECK_FALSE(rows[1].size);
  CHECK(rows[2].path == "q\"d.py");
  CHECK(ParseRecord(RecordText(rows), "R").value()[1].path == "b,c.py");
  CHECK(ParseRecord("a.py,sha256=x\n", "R").error().message() == "R:1: a row of 2 fields, RECORD rows have 3 (path,hash,size)");
  CHECK(ParseRecord("ok,,\na,b,12x\n", "R").error().message().find("R:2: size '12x'") != std::string::npos);
  CHECK(!ParseRecord("\"open,,\n", "R"));
  CHECK(RecordHash("") == "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");

  std::vector<ScriptEntryPoint> scripts =
      ParseScriptEntryPoints("; c\n[console_scripts]\nblack = black:patched_main [d]\n[gui_scripts]\ng=pkg.ui:App.run\n", "E")
          .value();
  REQUIRE(scripts.size() == 2);
  CHECK(scripts[0].name == "black");
  CHECK(scripts[0].object == "patched_main");
  CHECK(scripts[1].gui);
  CHECK(scripts[1].object == "App.run");
  CHECK(LauncherScript(scripts[1], "/usr/bin/python3").find("from pkg.ui import App\n") != std::string::npos);
  CHECK(ParseScriptEntryPoints("[console_scripts]\nx = y\n", "E").error().message().find("E:2:") != std::string::npos);
  CHECK(!ParseScriptEntryPoints("[console_scripts]\nx = 1y:z\n", "E"));
  CHECK(ParseScriptEntryPoints("[other]\nx = y\n", "E").value().empty());
}

}  // namespace lazyfs::pkg
