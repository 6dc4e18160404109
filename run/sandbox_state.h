// The host state of running sandboxes: their ids, records and liveness locks, and the cleanup after a
// runner that died.
//
//   /run/lazyfs/sandboxes/<id>.lock   flock'ed by the sandbox's runner for as long as it lives
//   /run/lazyfs/sandboxes/<id>.json   its record (what `lazyfs ps` shows)
//   /var/tmp/lazyfs-run.<id>/         its overlay upper/, work/, merged/ and bundle (run/container.h)
// A record whose lock is free belongs to a runner that died: CleanStaleSandboxes removes its container,
// overlay, temp dir and image reference.
//
// Thread safety: plain values and reentrant functions; cross-process safety comes from the flocks.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace lazyfs::run {

// What `lazyfs ps` shows of one sandbox.
struct SandboxRecord {
  std::string id;
  std::string image;            // the reference as given
  std::string manifest_digest;  // "sha256:..."
  int64_t pid = 0;              // the runner's process (`lazyfs run`)
  std::vector<std::string> command;
  int64_t started = 0;          // unix seconds
  std::string dir;              // the sandbox's temp dir (overlay + bundle)

  nlohmann::json ToJson() const;
  static std::optional<SandboxRecord> FromJson(const nlohmann::json& j);
};

// Fixed, not TempRoot(): cleaning up after a dead run removes only directories under this prefix, which
// must not depend on the $TMPDIR of whichever run does the cleaning.
inline constexpr const char* kSandboxTmpBase = "/var/tmp";

std::string SandboxesDir();                         // /run/lazyfs/sandboxes
std::string SandboxDir(const std::string& id);      // its temp dir: kSandboxTmpBase/lazyfs-run.<id>
std::string SandboxLockPath(const std::string& id);
std::string SandboxRecordPath(const std::string& id);

// A fresh random sandbox id (12 hex digits); uniqueness is checked by taking its lock.
std::string NewSandboxId();

// Records of running sandboxes (those whose lock is held), oldest first.
std::vector<SandboxRecord> ListLiveSandboxes();

// The record file; removed on destruction (its lock is released after, by its owner).
class RecordFile {
 public:
  static Result<std::unique_ptr<RecordFile>> Write(const SandboxRecord& record);
  ~RecordFile();
  RecordFile(const RecordFile&) = delete;
  RecordFile& operator=(const RecordFile&) = delete;

 private:
  explicit RecordFile(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Cleans up after runners that died: their lock is free but their record is still there. `keep`: as
// --keep-mount > 0 for the image mounts they leave unused (ReleaseImageUser). Failures are logged.
void CleanStaleSandboxes(bool keep);

}  // namespace lazyfs::run
