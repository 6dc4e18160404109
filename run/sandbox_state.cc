// Sandbox records, liveness locks and stale cleanup (see sandbox_state.h).
//
// Thread safety: no shared state; every function is reentrant.
#include "run/sandbox_state.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "common/digest.h"
#include "common/fd.h"
#include "common/log.h"
#include "run/control_socket.h"
#include "run/image_dir.h"
#include "run/image_use.h"
#include "run/process.h"

namespace lazyfs::run {

namespace stdfs = std::filesystem;
using nlohmann::json;

std::string SandboxesDir() { return std::string(kRunDir) + "/sandboxes"; }
std::string SandboxDir(const std::string& id) { return std::string(kSandboxTmpBase) + "/lazyfs-run." + id; }
std::string SandboxLockPath(const std::string& id) { return SandboxesDir() + "/" + id + ".lock"; }
std::string SandboxRecordPath(const std::string& id) { return SandboxesDir() + "/" + id + ".json"; }

std::string NewSandboxId() {
  std::random_device rd;
  return fmt::format("{:08x}{:04x}", rd(), rd() & 0xffff);
}

nlohmann::json SandboxRecord::ToJson() const {
  return {{"id", id},           {"image", image}, {"manifest_digest", manifest_digest}, {"pid", pid},
          {"command", command}, {"started", started}, {"dir", dir}};
}

std::optional<SandboxRecord> SandboxRecord::FromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("id") || !j["id"].is_string()) return std::nullopt;
  SandboxRecord r;
  try {
    r.id = j.at("id").get<std::string>();
    r.image = j.value("image", "");
    r.manifest_digest = j.value("manifest_digest", "");
    r.pid = j.value("pid", int64_t{0});
    r.command = j.value("command", std::vector<std::string>{});
    r.started = j.value("started", int64_t{0});
    r.dir = j.value("dir", "");
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  return r;
}

std::vector<SandboxRecord> ListLiveSandboxes() {
  std::vector<SandboxRecord> out;
  std::error_code ec;
  for (const auto& entry : stdfs::directory_iterator(SandboxesDir(), ec)) {
    if (entry.path().extension() != ".json") continue;
    Result<FileLock> lock = FileLock::Acquire(SandboxLockPath(entry.path().stem().string()), true);
    if (!lock || lock->held()) continue;  // free: its `lazyfs run` is gone
    Result<std::string> text = ReadWholeFile(entry.path().string());
    if (!text) continue;
    if (std::optional<SandboxRecord> r = SandboxRecord::FromJson(json::parse(*text, nullptr, false))) out.push_back(*r);
  }
  std::sort(out.begin(), out.end(), [](const SandboxRecord& a, const SandboxRecord& b) {
    return a.started != b.started ? a.started < b.started : a.id < b.id;
  });
  return out;
}

Result<std::unique_ptr<RecordFile>> RecordFile::Write(const SandboxRecord& record) {
  std::string path = SandboxRecordPath(record.id);
  LAZYFS_TRY(WriteFileAtomic(path, record.ToJson().dump() + "\n"));
  return std::unique_ptr<RecordFile>(new RecordFile(path));
}

RecordFile::~RecordFile() { ::unlink(path_.c_str()); }

void CleanStaleSandboxes(bool keep) {
  std::error_code ec;
  for (const auto& entry : stdfs::directory_iterator(SandboxesDir(), ec)) {
    if (entry.path().extension() != ".json") continue;
    std::string id = entry.path().stem().string();
    Result<FileLock> lock = FileLock::Acquire(SandboxLockPath(id), true);
    if (!lock || !lock->held()) continue;  // alive (or not ours to judge)
    Result<std::string> text = ReadWholeFile(entry.path().string());
    std::optional<SandboxRecord> record;
    if (text) record = SandboxRecord::FromJson(json::parse(*text, nullptr, false));
    LogInfo("cleaning up sandbox {} of a lazyfs run that died", id);
    [[maybe_unused]] Result<ExitStatus> deleted = SpawnAndWait({"crun", "delete", "-f", id}, true);
    std::string dir = record && !record->dir.empty() ? record->dir : SandboxDir(id);
    if (dir.starts_with(std::string(kSandboxTmpBase) + "/lazyfs-run.")) {
      Unmount(dir + "/merged");
      RemoveTree(dir);
    }
    if (record) {
      if (std::optional<Sha256Digest> digest = Sha256Digest::Parse(record->manifest_digest)) {
        ReleaseImageUser(ImageDir::ForManifest(*digest), id, keep);
      }
    }
    ::unlink(entry.path().c_str());
    ::unlink(SandboxLockPath(id).c_str());
  }
}

}  // namespace lazyfs::run
