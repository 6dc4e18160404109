// Unit tests of run/oci_bundle: image config parsing, user resolution, option parsing and the runtime
// spec that `lazyfs run` hands to crun.
#include "run/oci_bundle.h"

#include <doctest/doctest.h>

namespace lazyfs::run {
namespace {

using nlohmann::json;

constexpr const char* kPasswd =
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "# a comment\n"
    "app:x:1000:1000::/home/app:/bin/sh\n";
constexpr const char* kGroup =
    "root:x:0:\n"
    "adm:x:4:app\n"
    "staff:x:50:other,app\n"
    "app:x:1000:\n";

RunOptions BasicRun() {
  RunOptions run;
  run.rootfs = "/var/tmp/lazyfs-run.x/merged";
  return run;
}

bool HasNamespace(const json& spec, const char* type) {
  for (const json& ns : spec["linux"]["namespaces"]) {
    if (ns["type"] == type) return true;
  }
  return false;
}

const json* FindMount(const json& spec, const char* destination) {
  for (const json& m : spec["mounts"]) {
    if (m["destination"] == destination) return &m;
  }
  return nullptr;
}

TEST_CASE("ParseImageConfig: reads Env, Entrypoint, Cmd, WorkingDir and User") {
  Result<ImageConfig> c = ParseImageConfig(R"({"architecture":"amd64","config":{"Env":["PATH=/bin","A=1"],
      "Entrypoint":["/entry"],"Cmd":["-x"],"WorkingDir":"/srv","User":"app"}})");
  REQUIRE(c);
  CHECK(c->env == std::vector<std::string>{"PATH=/bin", "A=1"});
  CHECK(c->entrypoint == std::vector<std::string>{"/entry"});
  CHECK(c->cmd == std::vector<std::string>{"-x"});
  CHECK(c->working_dir == "/srv");
  CHECK(c->user == "app");
}

TEST_CASE("ParseImageConfig: a missing config or null fields are empty, wrong types are corrupt") {
  REQUIRE(ParseImageConfig(R"({"os":"linux"})"));
  Result<ImageConfig> nulls = ParseImageConfig(R"({"config":{"Cmd":null,"Entrypoint":null}})");
  REQUIRE(nulls);
  CHECK(nulls->cmd.empty());
  CHECK(ParseImageConfig(R"({"config":{"Cmd":"sh"}})").error().code() == ErrorCode::kCorrupt);
  CHECK(ParseImageConfig("not json").error().code() == ErrorCode::kCorrupt);
}

TEST_CASE("ResolveUser: names, numbers and groups") {
  SUBCASE("empty is root") {
    Result<UserIds> u = ResolveUser("", kPasswd, kGroup);
    REQUIRE(u);
    CHECK(u->uid == 0);
    CHECK(u->gid == 0);
  }
  SUBCASE("a name takes its primary group and the groups listing it") {
    Result<UserIds> u = ResolveUser("app", kPasswd, kGroup);
    REQUIRE(u);
    CHECK(u->uid == 1000);
    CHECK(u->gid == 1000);
    CHECK(u->additional_gids == std::vector<uint32_t>{4, 50});
  }
  SUBCASE("a known uid is looked up; an unknown one gets gid 0") {
    CHECK(ResolveUser("1", kPasswd, kGroup)->gid == 1);
    Result<UserIds> u = ResolveUser("4242", kPasswd, kGroup);
    REQUIRE(u);
    CHECK(u->uid == 4242);
    CHECK(u->gid == 0);
  }
  SUBCASE("name:group and uid:gid") {
    CHECK(ResolveUser("app:staff", kPasswd, kGroup)->gid == 50);
    Result<UserIds> u = ResolveUser("12:34", "", "");
    REQUIRE(u);
    CHECK(u->uid == 12);
    CHECK(u->gid == 34);
  }
  SUBCASE("unknown names are not found") {
    CHECK(ResolveUser("nobody-here", kPasswd, kGroup).error().code() == ErrorCode::kNotFound);
    CHECK(ResolveUser("app:nogroup", kPasswd, kGroup).error().code() == ErrorCode::kNotFound);
  }
}

TEST_CASE("ParseVolume and ParseByteSize") {
  Result<Volume> v = ParseVolume("/src:/dst:ro");
  REQUIRE(v);
  CHECK(v->source == "/src");
  CHECK(v->destination == "/dst");
  CHECK(v->read_only);
  CHECK_FALSE(ParseVolume("/src:/dst")->read_only);
  CHECK_FALSE(ParseVolume("src:/dst"));
  CHECK_FALSE(ParseVolume("/src:/dst:rx"));
  CHECK_FALSE(ParseVolume("/src"));

  CHECK(*ParseByteSize("256M") == 256ull << 20);
  CHECK(*ParseByteSize("1G") == 1ull << 30);
  CHECK(*ParseByteSize("64MiB") == 64ull << 20);
  CHECK(*ParseByteSize("512k") == 512ull << 10);
  CHECK(*ParseByteSize("1000") == 1000);
  CHECK(*ParseByteSize("2 g") == 2ull << 30);
  CHECK(*ParseByteSize("M") == 1ull << 20);  // CLI11 reads a bare unit as one of it
  CHECK_FALSE(ParseByteSize("12X"));
  CHECK_FALSE(ParseByteSize("lots"));
  CHECK_FALSE(ParseByteSize("1.5G"));
  CHECK_FALSE(ParseByteSize("-1"));
  CHECK_FALSE(ParseByteSize(""));
  CHECK_FALSE(ParseByteSize("99999999999999T"));
}

TEST_CASE("ProcessArgs: Entrypoint + Cmd, a command replaces Cmd, tini goes first") {
  ImageConfig image;
  image.entrypoint = {"/entry"};
  image.cmd = {"default"};
  RunOptions run = BasicRun();
  CHECK(*ProcessArgs(image, run) == std::vector<std::string>{"/entry", "default"});
  run.command = std::vector<std::string>{"echo", "hi"};
  CHECK(*ProcessArgs(image, run) == std::vector<std::string>{"/entry", "echo", "hi"});
  run.init_path = "/usr/bin/tini-static";
  CHECK(*ProcessArgs(image, run) == std::vector<std::string>{kInitPath, "--", "/entry", "echo", "hi"});
  CHECK(ProcessArgs(ImageConfig{}, BasicRun()).error().code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("MergeEnv: overrides by key, keeps order, adds PATH when missing") {
  CHECK(MergeEnv({"PATH=/bin", "A=1"}, {"A=2", "B=3"}) == std::vector<std::string>{"PATH=/bin", "A=2", "B=3"});
  std::vector<std::string> env = MergeEnv({"A=1"}, {});
  REQUIRE(env.size() == 2);
  CHECK(env[0].starts_with("PATH=/usr/local/sbin"));
}

TEST_CASE("BuildRuntimeSpec: process, namespaces, mounts and limits") {
  ImageConfig image;
  image.cmd = {"sh"};
  image.env = {"PATH=/usr/bin:/bin"};
  image.working_dir = "/srv";
  RunOptions run = BasicRun();
  run.command = std::vector<std::string>{"echo", "hello"};
  run.env = {"X=1"};
  run.memory_bytes = 256ull << 20;
  run.cpus = 1.5;
  run.pids = 128;
  run.hostname = "lazyfs-abc";
  run.cgroups_path = "/lazyfs/abc";
  run.init_path = "/usr/bin/tini-static";
  run.volumes = {{"/host/data", "/data", true}};

  Result<json> spec = BuildRuntimeSpec(image, run, UserIds{});
  REQUIRE(spec);
  const json& s = *spec;
  CHECK(s["root"]["path"] == run.rootfs);
  CHECK(s["process"]["terminal"] == false);
  CHECK(s["process"]["args"] == json({"/dev/init", "--", "echo", "hello"}));
  CHECK(s["process"]["env"] == json({"PATH=/usr/bin:/bin", "X=1"}));
  CHECK(s["process"]["cwd"] == "/srv");
  CHECK(s["process"]["user"]["uid"] == 0);
  CHECK(s["process"]["capabilities"]["effective"].size() == 14);
  CHECK(s["hostname"] == "lazyfs-abc");
  for (const char* ns : {"pid", "ipc", "uts", "mount", "network", "cgroup"}) CHECK(HasNamespace(s, ns));
  for (const char* m : {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/dev/init"}) {
    CHECK_MESSAGE(FindMount(s, m) != nullptr, m);
  }
  const json* data = FindMount(s, "/data");
  REQUIRE(data);
  CHECK((*data)["source"] == "/host/data");
  CHECK(std::find((*data)["options"].begin(), (*data)["options"].end(), "ro") != (*data)["options"].end());
  const json& r = s["linux"]["resources"];
  CHECK(r["memory"]["limit"] == 256ull << 20);
  CHECK(r["memory"]["swap"] == 256ull << 20);
  CHECK(r["cpu"]["quota"] == 150000);
  CHECK(r["cpu"]["period"] == 100000);
  CHECK(r["pids"]["limit"] == 128);
  CHECK(s["linux"]["cgroupsPath"] == "/lazyfs/abc");
  CHECK(!s["linux"]["maskedPaths"].empty());
  CHECK(!s["linux"]["readonlyPaths"].empty());
}

TEST_CASE("BuildRuntimeSpec: host network, no limits, a non-root user") {
  ImageConfig image;
  image.cmd = {"sh"};
  RunOptions run = BasicRun();
  run.host_network = true;
  run.resolv_conf = "/etc/resolv.conf";
  UserIds user{1000, 1000, {4}};
  Result<json> spec = BuildRuntimeSpec(image, run, user);
  REQUIRE(spec);
  CHECK_FALSE(HasNamespace(*spec, "network"));
  CHECK(FindMount(*spec, "/etc/resolv.conf") != nullptr);
  CHECK(FindMount(*spec, "/dev/init") == nullptr);
  CHECK_FALSE((*spec)["linux"]["resources"].contains("memory"));
  CHECK((*spec)["process"]["cwd"] == "/");
  CHECK((*spec)["process"]["user"]["uid"] == 1000);
  CHECK((*spec)["process"]["user"]["additionalGids"] == json({4}));
  CHECK((*spec)["process"]["capabilities"]["effective"].empty());
  CHECK(!(*spec)["process"]["capabilities"]["bounding"].empty());
  CHECK((*spec)["process"]["noNewPrivileges"] == true);  // setuid files raise nothing by default
  run.allow_setuid = true;
  CHECK(BuildRuntimeSpec(image, run, user).value()["process"]["noNewPrivileges"] == false);
}

TEST_CASE("BuildRuntimeSpec: rejects a relative rootfs or working directory") {
  ImageConfig image;
  image.cmd = {"sh"};
  RunOptions run = BasicRun();
  run.rootfs = "merged";
  CHECK_FALSE(BuildRuntimeSpec(image, run, UserIds{}));
  run = BasicRun();
  run.workdir = "relative";
  CHECK_FALSE(BuildRuntimeSpec(image, run, UserIds{}));
}

}  // namespace
}  // namespace lazyfs::run
