#include "run/oci_bundle.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace lazyfs::run {
namespace {

using nlohmann::json;

constexpr const char* kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Docker's default capability set: enough for ordinary services and package managers, without
// SYS_ADMIN, NET_ADMIN, SYS_PTRACE and the like.
constexpr const char* kDefaultCapabilities[] = {
    "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",     "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",           "CAP_SETFCAP",    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",     "CAP_AUDIT_WRITE",
};

// Docker's masked and read-only paths: kernel interfaces a container must not read or change.
constexpr const char* kMaskedPaths[] = {
    "/proc/asound", "/proc/acpi",        "/proc/kcore",       "/proc/keys",          "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
};
constexpr const char* kReadonlyPaths[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};

Result<std::vector<std::string>> StringArray(const json& object, const char* key) {
  std::vector<std::string> out;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return out;
  if (!it->is_array()) return Corrupt(std::string("image config: ") + key + " is not an array");
  for (const json& v : *it) {
    if (!v.is_string()) return Corrupt(std::string("image config: ") + key + " holds a non-string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<std::string> StringField(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Corrupt(std::string("image config: ") + key + " is not a string");
  return it->get<std::string>();
}

std::optional<uint32_t> ParseId(std::string_view text) {
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t pos = text.find(sep, start);
    out.push_back(text.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) return out;
    start = pos + 1;
  }
}

// Calls fn(fields) for each well-formed line of a colon-separated database (/etc/passwd, /etc/group).
template <class Fn>
void ForEachRecord(std::string_view db, size_t min_fields, Fn fn) {
  for (std::string_view line : Split(db, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string_view> fields = Split(line, ':');
    if (fields.size() >= min_fields) fn(fields);
  }
}

std::string_view EnvKey(std::string_view entry) { return entry.substr(0, entry.find('=')); }

json Mount(const char* destination, const char* type, const char* source, std::vector<std::string> options) {
  return {{"destination", destination}, {"type", type}, {"source", source}, {"options", std::move(options)}};
}

}  // namespace

Result<ImageConfig> ParseImageConfig(std::string_view config_json) {
  json doc = json::parse(config_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return Corrupt("image config is not a JSON object");
  ImageConfig out;
  auto it = doc.find("config");
  if (it == doc.end() || it->is_null()) return out;
  if (!it->is_object()) return Corrupt("image config: config is not an object");
  out.env = LAZYFS_TRY(StringArray(*it, "Env"));
  out.entrypoint = LAZYFS_TRY(StringArray(*it, "Entrypoint"));
  out.cmd = LAZYFS_TRY(StringArray(*it, "Cmd"));
  out.working_dir = LAZYFS_TRY(StringField(*it, "WorkingDir"));
  out.user = LAZYFS_TRY(StringField(*it, "User"));
  return out;
}

Result<UserIds> ResolveUser(std::string_view spec, std::string_view passwd, std::string_view group) {
  UserIds ids;
  if (spec.empty()) spec = "0";
  std::string_view user_part = spec.substr(0, spec.find(':'));
  std::optional<std::string_view> group_part;
  if (size_t colon = spec.find(':'); colon != std::string_view::npos) group_part = spec.substr(colon + 1);

  std::string user_name;
  bool found = false;
  std::optional<uint32_t> numeric_uid = ParseId(user_part);
  ForEachRecord(passwd, 4, [&](const std::vector<std::string_view>& f) {
    if (found) return;
    std::optional<uint32_t> uid = ParseId(f[2]);
    std::optional<uint32_t> gid = ParseId(f[3]);
    if (!uid || !gid) return;
    if (numeric_uid ? *uid == *numeric_uid : f[0] == user_part) {
      ids.uid = *uid;
      ids.gid = *gid;
      user_name = std::string(f[0]);
      found = true;
    }
  });
  if (!found) {
    if (!numeric_uid) return NotFound("user " + std::string(user_part) + " is not in the image's /etc/passwd");
    ids.uid = *numeric_uid;
    ids.gid = 0;
  }
  if (group_part) {
    if (std::optional<uint32_t> gid = ParseId(*group_part)) {
      ids.gid = *gid;
    } else {
      bool group_found = false;
      ForEachRecord(group, 3, [&](const std::vector<std::string_view>& f) {
        std::optional<uint32_t> gid = ParseId(f[2]);
        if (!group_found && gid && f[0] == *group_part) {
          ids.gid = *gid;
          group_found = true;
        }
      });
      if (!group_found) return NotFound("group " + std::string(*group_part) + " is not in the image's /etc/group");
    }
  }
  // Supplementary groups: those that list the user by name, as login(1) and Docker do.
  if (!user_name.empty()) {
    ForEachRecord(group, 4, [&](const std::vector<std::string_view>& f) {
      std::optional<uint32_t> gid = ParseId(f[2]);
      if (!gid || *gid == ids.gid) return;
      for (std::string_view member : Split(f[3], ',')) {
        if (member == user_name) {
          ids.additional_gids.push_back(*gid);
          break;
        }
      }
    });
  }
  return ids;
}

Result<Volume> ParseVolume(std::string_view text) {
  std::vector<std::string_view> parts = Split(text, ':');
  if (parts.size() < 2 || parts.size() > 3) return InvalidArgument("volume " + std::string(text) + ": want SRC:DST[:ro]");
  Volume v{std::string(parts[0]), std::string(parts[1]), false};
  if (parts.size() == 3) {
    if (parts[2] == "ro") {
      v.read_only = true;
    } else if (parts[2] != "rw") {
      return InvalidArgument("volume " + std::string(text) + ": mode must be ro or rw");
    }
  }
  if (v.source.empty() || v.source[0] != '/' || v.destination.empty() || v.destination[0] != '/') {
    return InvalidArgument("volume " + std::string(text) + ": both paths must be absolute");
  }
  return v;
}

Result<uint64_t> ParseByteSize(std::string_view text) {
  std::string bytes(text);
  try {
    // A transformer: it rewrites `bytes` as a plain number; bad input throws (or, as any Validator may,
    // returns a message).
    if (std::string why = CLI::AsSizeValue(false)(bytes); !why.empty()) {
      return InvalidArgument(fmt::format("size {}: {}", text, why));
    }
  } catch (const CLI::ValidationError& e) {
    return InvalidArgument(fmt::format("size {}: {}", text, e.what()));
  }
  // It passes a bare number through unchecked ("-1" included), so the number is read strictly here.
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(bytes.data(), bytes.data() + bytes.size(), value);
  if (ec != std::errc() || end != bytes.data() + bytes.size()) {
    return InvalidArgument(fmt::format("size {}: not a number of bytes", text));
  }
  return value;
}

Result<std::vector<std::string>> ProcessArgs(const ImageConfig& image, const RunOptions& run) {
  std::vector<std::string> args = image.entrypoint;
  const std::vector<std::string>& cmd = run.command ? *run.command : image.cmd;
  args.insert(args.end(), cmd.begin(), cmd.end());
  if (args.empty()) return InvalidArgument("the image has no Entrypoint or Cmd: give a command after --");
  if (!run.init_path.empty()) {
    // tini reaps zombies and forwards SIGTERM/SIGINT: a plain process as PID 1 would ignore them.
    args.insert(args.begin(), {kInitPath, "--"});
  }
  return args;
}

std::vector<std::string> MergeEnv(const std::vector<std::string>& image_env, const std::vector<std::string>& overrides) {
  std::vector<std::string> env = image_env;
  for (const std::string& entry : overrides) {
    auto same_key = [&](const std::string& e) { return EnvKey(e) == EnvKey(entry); };
    if (auto it = std::find_if(env.begin(), env.end(), same_key); it != env.end()) {
      *it = entry;
    } else {
      env.push_back(entry);
    }
  }
  if (std::none_of(env.begin(), env.end(), [](const std::string& e) { return EnvKey(e) == "PATH"; })) {
    env.insert(env.begin(), kDefaultPath);
  }
  return env;
}

Result<nlohmann::json> BuildRuntimeSpec(const ImageConfig& image, const RunOptions& run, const UserIds& user) {
  if (run.rootfs.empty() || run.rootfs[0] != '/') return InvalidArgument("rootfs must be an absolute path");
  std::vector<std::string> args = LAZYFS_TRY(ProcessArgs(image, run));
  std::string cwd = !run.workdir.empty() ? run.workdir : (!image.working_dir.empty() ? image.working_dir : "/");
  if (cwd[0] != '/') return InvalidArgument("working directory " + cwd + " is not absolute");

  // Root keeps the default set; another user starts with none in effect, as in Docker.
  json caps = json::array();
  for (const char* c : kDefaultCapabilities) caps.push_back(c);
  json effective = user.uid == 0 ? caps : json::array();

  // No rlimits: the container inherits those of `lazyfs run`, which the host set (raising them may fail).
  json process = {
      {"terminal", false},
      {"user", {{"uid", user.uid}, {"gid", user.gid}}},
      {"args", args},
      {"env", MergeEnv(image.env, run.env)},
      {"cwd", cwd},
      {"capabilities",
       {{"bounding", caps}, {"effective", effective}, {"permitted", effective}, {"inheritable", json::array()}}},
      {"noNewPrivileges", !run.allow_setuid},
  };
  if (!user.additional_gids.empty()) process["user"]["additionalGids"] = user.additional_gids;

  json mounts = json::array({
      Mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
      Mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      Mount("/dev/pts", "devpts", "devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      Mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      Mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      Mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
      Mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}),
  });
  if (!run.init_path.empty()) {
    mounts.push_back(Mount(kInitPath, "bind", run.init_path.c_str(), {"bind", "ro", "nosuid", "nodev"}));
  }
  if (run.host_network && !run.resolv_conf.empty()) {
    mounts.push_back(Mount("/etc/resolv.conf", "bind", run.resolv_conf.c_str(), {"bind", "ro", "nosuid", "nodev", "noexec"}));
  }
  for (const Volume& v : run.volumes) {
    std::vector<std::string> options = {"rbind", "nosuid", "nodev"};
    options.push_back(v.read_only ? "ro" : "rw");
    mounts.push_back(Mount(v.destination.c_str(), "bind", v.source.c_str(), std::move(options)));
  }

  json namespaces = json::array({{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}},
                                 {{"type", "cgroup"}}});
  if (!run.host_network) namespaces.push_back({{"type", "network"}});

  json resources = {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})}};
  if (run.memory_bytes) {
    // swap == limit: memory plus swap may not exceed the limit, so the container cannot swap its way past it.
    resources["memory"] = {{"limit", *run.memory_bytes}, {"swap", *run.memory_bytes}};
  }
  if (run.cpus) {
    if (*run.cpus <= 0) return InvalidArgument("--cpus must be positive");
    resources["cpu"] = {{"quota", static_cast<int64_t>(std::llround(*run.cpus * kCpuPeriodMicros))},
                        {"period", kCpuPeriodMicros}};
  }
  if (run.pids) resources["pids"] = {{"limit", *run.pids}};

  json linux_section = {
      {"namespaces", namespaces},
      {"resources", resources},
      {"maskedPaths", json::array()},
      {"readonlyPaths", json::array()},
  };
  for (const char* p : kMaskedPaths) linux_section["maskedPaths"].push_back(p);
  for (const char* p : kReadonlyPaths) linux_section["readonlyPaths"].push_back(p);
  if (!run.cgroups_path.empty()) linux_section["cgroupsPath"] = run.cgroups_path;

  json spec = {
      {"ociVersion", "1.0.2"},
      {"process", process},
      {"root", {{"path", run.rootfs}, {"readonly", false}}},
      {"mounts", mounts},
      {"linux", linux_section},
  };
  if (!run.hostname.empty()) spec["hostname"] = run.hostname;
  return spec;
}

}  // namespace lazyfs::run
