// The OCI runtime bundle of one `lazyfs run` sandbox: parses the image config, resolves the user against
// the image's /etc/passwd and /etc/group, and builds the runtime spec (config.json) that crun runs.
//
// Everything here is a pure function of its inputs (no syscalls), so the unit tests check the generated
// spec field by field. tools/run_command.cc does the I/O: reads the files, writes config.json.
//
// Thread safety: plain values and reentrant functions.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace lazyfs::run {

// The fields of an OCI image config ("config" object) that decide how the container starts.
struct ImageConfig {
  std::vector<std::string> env;         // "K=V"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;              // empty: "/"
  std::string user;                     // empty: root
};

// Parses the image config JSON blob (the whole document; its "config" object may be absent).
// kCorrupt when it is not JSON or a field has the wrong type.
Result<ImageConfig> ParseImageConfig(std::string_view config_json);

// A numeric identity for the container process.
struct UserIds {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;  // supplementary groups the user is listed in (/etc/group)
};

// Resolves a Docker-style user spec ("", "uid", "uid:gid", "name", "name:group", "uid:group") against
// the contents of the image's /etc/passwd and /etc/group (either may be empty). A numeric uid not in
// /etc/passwd is fine (gid 0 unless given), as in Docker; an unknown name is kNotFound.
Result<UserIds> ResolveUser(std::string_view spec, std::string_view passwd, std::string_view group);

struct Volume {
  std::string source;       // absolute host path
  std::string destination;  // absolute container path
  bool read_only = false;
};

// Parses "SRC:DST[:ro|:rw]". kInvalidArgument unless both paths are absolute.
Result<Volume> ParseVolume(std::string_view text);

// Parses a byte size ("268435456", "256M", "1G", "512k", "64MiB": binary units, any case) with CLI11's
// AsSizeValue, the parser of --cache-size, so every size on the command line reads the same. Here rather
// than as the flag's transform so that a bad --memory fails `lazyfs run` with 125 (CLI11's parse errors
// exit 105), and the message can quote the limit as the user wrote it.
Result<uint64_t> ParseByteSize(std::string_view text);

// What `lazyfs run` asks of one container beyond the image's config.
struct RunOptions {
  std::string rootfs;                          // absolute path: the overlay's merged directory
  std::optional<std::vector<std::string>> command;  // CMD ARGS after `--`: replace the image's Cmd
  std::vector<std::string> env;                // --env K=V, override the image's
  std::vector<Volume> volumes;
  bool host_network = false;                   // --network host: share the host's network namespace
  std::string workdir;                         // --workdir: overrides WorkingDir
  std::optional<uint64_t> memory_bytes;
  std::optional<double> cpus;                  // CFS quota = cpus * period
  std::optional<int64_t> pids;
  std::string hostname;
  std::string cgroups_path;                    // e.g. "/lazyfs/<sandbox-id>"
  std::string init_path;                       // host path of a static init (tini); empty: none
  std::string resolv_conf;                     // host resolv.conf bound read-only with host_network; empty: none
  // --allow-setuid: setuid/setgid files and file capabilities raise privileges, as in Docker. Off by
  // default: the container's processes run with no_new_privs (and the rootfs nosuid), so `-u nobody`
  // stays nobody whatever setuid-root binary the image ships.
  bool allow_setuid = false;
};

// The mount point of the init inside the container (on the /dev tmpfs, so the image is untouched).
inline constexpr const char* kInitPath = "/dev/init";
inline constexpr uint64_t kCpuPeriodMicros = 100000;

// The process arguments: Entrypoint + (command or Cmd), behind the init when there is one.
// kInvalidArgument when the result is empty (no Entrypoint, Cmd or command).
Result<std::vector<std::string>> ProcessArgs(const ImageConfig& image, const RunOptions& run);

// Image Env overridden by run.env (by key, in order); PATH defaults to the usual one when absent.
std::vector<std::string> MergeEnv(const std::vector<std::string>& image_env, const std::vector<std::string>& overrides);

// The runtime spec (OCI runtime-spec 1.0 config.json) for `run` with `user`.
Result<nlohmann::json> BuildRuntimeSpec(const ImageConfig& image, const RunOptions& run, const UserIds& user);

}  // namespace lazyfs::run
