// Unit tests of run/sandbox_state (the record `lazyfs ps` reads) and run/process (exit statuses and
// RemoveTree), with no /run/lazyfs and no crun.
#include "run/sandbox_state.h"

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

#include "run/process.h"
#include "tests/test_support.h"

namespace lazyfs::run {
namespace {

TEST_CASE("SandboxRecord: FromJson of ToJson gives the same record") {
  SandboxRecord r{"0123456789ab", "oci:/img", "sha256:00", 42, {"sh", "-c", "true"}, 1700000000, "/var/tmp/x"};
  std::optional<SandboxRecord> back = SandboxRecord::FromJson(r.ToJson());
  REQUIRE(back);
  CHECK(back->id == r.id);
  CHECK(back->image == r.image);
  CHECK(back->manifest_digest == r.manifest_digest);
  CHECK(back->pid == r.pid);
  CHECK(back->command == r.command);
  CHECK(back->started == r.started);
  CHECK(back->dir == r.dir);
}

TEST_CASE("SandboxRecord: FromJson refuses a record without a string id or with a mistyped field") {
  CHECK_FALSE(SandboxRecord::FromJson(nlohmann::json::array()));
  CHECK_FALSE(SandboxRecord::FromJson({{"id", 7}}));
  CHECK_FALSE(SandboxRecord::FromJson({{"id", "a"}, {"pid", "not a number"}}));
}

TEST_CASE("NewSandboxId: 12 hex digits") {
  std::string id = NewSandboxId();
  CHECK(id.size() == 12);
  CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(SandboxDir(id) == std::string(kSandboxTmpBase) + "/lazyfs-run." + id);
}

TEST_CASE("SpawnAndWait: exit codes and signals as a shell reports them") {
  Result<ExitStatus> ok = SpawnAndWait({"true"}, true);
  REQUIRE(ok);
  CHECK(ok->code == 0);
  Result<ExitStatus> killed = SpawnAndWait({"sh", "-c", "kill -9 $$"}, true);
  REQUIRE(killed);
  CHECK(killed->code == 128 + 9);
  CHECK(killed->signal == 9);
  CHECK_FALSE(SpawnAndWait({"/nonexistent/lazyfs-test-binary"}, true));
}

TEST_CASE("RemoveTree: removes a tree on one file system") {
  testing::TempDir tmp;
  std::string root = tmp.path + "/tree";
  std::filesystem::create_directories(root + "/a/b");
  std::ofstream(root + "/a/b/file") << "x";
  RemoveTree(root);
  CHECK_FALSE(std::filesystem::exists(root));
  RemoveTree(root);  // absent: a quiet no-op
}

}  // namespace
}  // namespace lazyfs::run
