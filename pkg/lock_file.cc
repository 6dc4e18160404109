#include "pkg/lock_file.h"

#include <set>

#include "fetch/http_transport.h"
#include "pkg/names.h"
#include "pkg/version.h"

namespace lazyfs::pkg {
namespace {

using Json = nlohmann::json;

bool IsSha256Hex(std::string_view text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

Result<std::string> StringField(const Json& object, const char* field, std::string_view where) {
  auto it = object.find(field);
  if (it == object.end() || !it->is_string()) {
    return Corrupt(std::string(where) + ": '" + field + "' is missing or not a string");
  }
  return it->get<std::string>();
}

Result<std::vector<std::string>> StringList(const Json& object, const char* field, std::string_view where) {
  auto it = object.find(field);
  if (it == object.end()) return std::vector<std::string>{};
  if (!it->is_array()) return Corrupt(std::string(where) + ": '" + field + "' is not a list");
  std::vector<std::string> out;
  for (const Json& item : *it) {
    if (!item.is_string()) return Corrupt(std::string(where) + ": '" + field + "' holds something not a string");
    out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace

Json EnvironmentJson(const TargetEnvironment& target) {
  Json markers = Json::object();
  for (const auto& [name, value] : target.Markers().values) {
    if (name != "extra") markers[name] = value;
  }
  std::vector<Tag> tags = target.Tags();
  return Json{
      {"markers", markers},
      {"python", {{"implementation", target.python.implementation},
                  {"version", target.PythonVersion()},
                  {"abi", tags.empty() ? "" : tags.front().abi}}},
      {"platform_tags", PlatformTags(target.python.platform)},
      {"preferred_tag", tags.empty() ? "" : tags.front().ToString()},
  };
}

Result<LockFile> MakeLockFile(const ResolveRequest& request, const Resolution& resolution) {
  LockFile lock;
  lock.environment = EnvironmentJson(request.target);
  for (const RequirementLine& line : request.requirements) lock.requirements.push_back(line.requirement.ToString());
  for (const RequirementLine& line : request.constraints) lock.constraints.push_back(line.requirement.ToString());
  for (const ResolvedDist& dist : resolution.dists) {
    auto sha256 = dist.file.hashes.find("sha256");
    if (sha256 == dist.file.hashes.end()) {
      return InvalidArgument("the index gives no sha256 for " + dist.file.filename + " (" + dist.name + " " +
                             dist.version + "), and lazyfs installs only wheels it can verify; use an index "
                             "that lists sha256 hashes (PEP 503 #sha256= or PEP 691 'hashes')");
    }
    lock.packages.push_back(LockedPackage{dist.name, dist.version, dist.file.filename, fetch::RedactUrl(dist.file.url),
                                          sha256->second, dist.file.size,
                                          std::vector<std::string>(dist.extras.begin(), dist.extras.end()),
                                          dist.depends_on, dist.required_by});
  }
  return lock;
}

std::string LockFileText(const LockFile& lock) {
  Json packages = Json::array();
  for (const LockedPackage& p : lock.packages) {
    packages.push_back(Json{{"name", p.name},
                            {"version", p.version},
                            {"filename", p.filename},
                            {"url", p.url},
                            {"sha256", p.sha256},
                            {"size", p.size ? Json(*p.size) : Json()},
                            {"extras", p.extras},
                            {"requires", p.depends_on},
                            {"required_by", p.required_by}});
  }
  Json j{{"lock_version", kLockVersion},
         {"environment", lock.environment},
         {"requirements", lock.requirements},
         {"constraints", lock.constraints},
         {"packages", packages}};
  return j.dump(2) + "\n";
}

Result<LockFile> ParseLockFile(std::string_view text, std::string_view where) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Corrupt(std::string(where) + ": not a JSON object");
  auto version = j.find("lock_version");
  if (version == j.end() || !version->is_number_integer() || version->get<int64_t>() != kLockVersion) {
    return Corrupt(std::string(where) + ": lock_version is not " + std::to_string(kLockVersion) +
                   " (written by another lazyfs? resolve again)");
  }
  LockFile lock;
  lock.environment = j.value("environment", Json::object());
  if (!lock.environment.is_object()) return Corrupt(std::string(where) + ": 'environment' is not an object");
  lock.requirements = LAZYFS_TRY(StringList(j, "requirements", where));
  lock.constraints = LAZYFS_TRY(StringList(j, "constraints", where));
  auto packages = j.find("packages");
  if (packages == j.end() || !packages->is_array()) return Corrupt(std::string(where) + ": 'packages' is not a list");
  std::set<std::string> seen;
  for (size_t i = 0; i < packages->size(); ++i) {
    const Json& p = (*packages)[i];
    std::string at = std::string(where) + ": packages[" + std::to_string(i) + "]";
    if (!p.is_object()) return Corrupt(at + " is not an object");
    LockedPackage out;
    out.name = LAZYFS_TRY(StringField(p, "name", at));
    if (!IsValidName(out.name) || CanonicalName(out.name) != out.name) {
      return Corrupt(at + ": name '" + out.name + "' is not a canonical project name");
    }
    if (!seen.insert(out.name).second) return Corrupt(at + ": " + out.name + " is listed twice");
    out.version = LAZYFS_TRY(StringField(p, "version", at));
    if (!Version::Parse(out.version)) return Corrupt(at + ": version '" + out.version + "' is not a PEP 440 version");
    out.filename = LAZYFS_TRY(StringField(p, "filename", at));
    out.url = LAZYFS_TRY(StringField(p, "url", at));
    out.sha256 = LAZYFS_TRY(StringField(p, "sha256", at));
    if (!IsSha256Hex(out.sha256)) return Corrupt(at + ": sha256 '" + out.sha256 + "' is not 64 lower-case hex digits");
    auto size = p.find("size");
    if (size != p.end() && !size->is_null()) {
      if (!size->is_number_unsigned()) return Corrupt(at + ": size is not a byte count");
      out.size = size->get<uint64_t>();
    }
    out.extras = LAZYFS_TRY(StringList(p, "extras", at));
    out.depends_on = LAZYFS_TRY(StringList(p, "requires", at));
    out.required_by = LAZYFS_TRY(StringList(p, "required_by", at));
    lock.packages.push_back(std::move(out));
  }
  return lock;
}

}  // namespace lazyfs::pkg
