// Registry authentication: auth files, WWW-Authenticate parsing, Basic and Bearer (see registry_auth.h).
//
// Thread safety: RegistryAuth guards its state with mu_, released before any HTTP request.
#include "fetch/registry_auth.h"

#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/fd.h"
#include "common/log.h"

namespace lazyfs::fetch {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

// Tokens stop at whitespace, commas and '='; quoted strings are read separately.
size_t ScanToken(std::string_view text, size_t pos) {
  while (pos < text.size() && !IsSpace(text[pos]) && text[pos] != ',' && text[pos] != '=') ++pos;
  return pos;
}

size_t SkipSpaces(std::string_view text, size_t pos) {
  while (pos < text.size() && IsSpace(text[pos])) ++pos;
  return pos;
}

// Reads a parameter value at `pos` (a quoted-string with backslash escapes, or a bare token that may
// contain '=' as in base64) and returns the position after it.
size_t ScanValue(std::string_view text, size_t pos, std::string* value) {
  value->clear();
  if (pos < text.size() && text[pos] == '"') {
    ++pos;
    while (pos < text.size() && text[pos] != '"') {
      if (text[pos] == '\\' && pos + 1 < text.size()) ++pos;
      value->push_back(text[pos++]);
    }
    return pos < text.size() ? pos + 1 : pos;  // an unterminated quote takes the rest
  }
  while (pos < text.size() && !IsSpace(text[pos]) && text[pos] != ',') value->push_back(text[pos++]);
  return pos;
}

// The host part of an auth file key: "https://host:5000/v1/" and "host:5000/ns/repo" both give
// "host:5000".
std::string_view AuthKeyHost(std::string_view key) {
  if (size_t scheme = key.find("://"); scheme != std::string_view::npos) key.remove_prefix(scheme + 3);
  return key.substr(0, key.find('/'));
}

bool IsDockerHub(std::string_view host) {
  return host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io";
}

Result<Credentials> CredentialsFromEntry(const nlohmann::json& entry, std::string_view key) {
  if (!entry.is_object()) return Error(ErrorCode::kInvalidArgument, "auth entry for " + std::string(key) + " is not an object");
  if (auto auth = entry.find("auth"); auth != entry.end() && auth->is_string() && !auth->get<std::string>().empty()) {
    std::optional<std::string> decoded = Base64Decode(auth->get<std::string>());
    size_t colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos) {
      return Error(ErrorCode::kInvalidArgument, "auth entry for " + std::string(key) + " is not base64(user:password)");
    }
    return Credentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
  }
  auto username = entry.find("username");
  auto password = entry.find("password");
  if (username != entry.end() && password != entry.end() && username->is_string() && password->is_string()) {
    return Credentials{username->get<std::string>(), password->get<std::string>()};
  }
  return Error(ErrorCode::kInvalidArgument, "auth entry for " + std::string(key) + " has no auth or username/password");
}

}  // namespace

std::vector<AuthChallenge> ParseWwwAuthenticate(std::string_view header) {
  std::vector<AuthChallenge> challenges;
  size_t pos = 0;
  while (pos < header.size()) {
    while (pos < header.size() && (IsSpace(header[pos]) || header[pos] == ',')) ++pos;
    size_t end = ScanToken(header, pos);
    if (end == pos) {  // a stray '=' or similar: skip it
      ++pos;
      continue;
    }
    AuthChallenge challenge;
    challenge.scheme = AsciiLower(header.substr(pos, end - pos));
    pos = end;
    // Parameters follow until a token that is not followed by '=', which starts the next challenge.
    while (true) {
      size_t name_start = SkipSpaces(header, pos);
      while (name_start < header.size() && header[name_start] == ',') name_start = SkipSpaces(header, name_start + 1);
      size_t name_end = ScanToken(header, name_start);
      size_t equals = SkipSpaces(header, name_end);
      if (name_end == name_start || equals >= header.size() || header[equals] != '=') {
        pos = name_start;
        break;
      }
      std::string value;
      pos = ScanValue(header, SkipSpaces(header, equals + 1), &value);
      challenge.params[AsciiLower(header.substr(name_start, name_end - name_start))] = std::move(value);
      // Anything between the value and the next comma is junk we tolerate.
      while (pos < header.size() && header[pos] != ',') ++pos;
    }
    challenges.push_back(std::move(challenge));
  }
  return challenges;
}

std::string BasicAuthorization(const Credentials& credentials) {
  return "Basic " + Base64Encode(credentials.username + ":" + credentials.password);
}


std::vector<std::string> AuthFileLocations::Files() const {
  std::vector<std::string> files;
  if (!registry_auth_file.empty()) files.push_back(registry_auth_file);
  if (!xdg_runtime_dir.empty()) files.push_back(xdg_runtime_dir + "/containers/auth.json");
  if (!home.empty()) {
    files.push_back(home + "/.config/containers/auth.json");
    files.push_back(home + "/.docker/config.json");
  }
  return files;
}

Result<std::optional<Credentials>> CredentialsFromAuthJson(std::string_view json, std::string_view host) {
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Error(ErrorCode::kInvalidArgument, "auth file is not a JSON object");
  auto auths = doc.find("auths");
  if (auths == doc.end()) return std::optional<Credentials>();
  if (!auths->is_object()) return Error(ErrorCode::kInvalidArgument, "auth file: \"auths\" is not an object");
  // An exact host key wins over a URL or repository-scoped key for the same host.
  const nlohmann::json* best = nullptr;
  std::string best_key;
  for (const auto& [key, entry] : auths->items()) {
    std::string_view key_host = AuthKeyHost(key);
    bool match = key_host == host || (IsDockerHub(host) && IsDockerHub(key_host));
    if (!match) continue;
    if (best == nullptr || key == host) {
      best = &entry;
      best_key = key;
    }
  }
  if (best == nullptr) return std::optional<Credentials>();
  return std::optional<Credentials>(LAZYFS_TRY(CredentialsFromEntry(*best, best_key)));
}

Result<std::optional<Credentials>> FindCredentials(std::string_view host, const AuthFileLocations& where) {
  for (const std::string& file : where.Files()) {
    Result<std::string> text = ReadWholeFile(file);
    if (!text) {
      if (text.error().code() == ErrorCode::kNotFound) continue;
      return std::move(text).error();
    }
    Result<std::optional<Credentials>> found = CredentialsFromAuthJson(*text, host);
    if (!found) return std::move(found).error().Context(file);
    if (*found) {
      LogDebug("registry {}: credentials from {}", host, file);
      return found;
    }
  }
  return std::optional<Credentials>();
}

RegistryAuth::RegistryAuth(std::string base_url, std::optional<Credentials> credentials,
                           std::shared_ptr<HttpTransport> transport, std::vector<std::string> insecure_hosts)
    : base_url_(std::move(base_url)),
      credentials_(std::move(credentials)),
      transport_(std::move(transport)),
      insecure_hosts_(std::move(insecure_hosts)) {}

std::optional<std::string> RegistryAuth::Authorization(const std::string& scope) {
  std::lock_guard lock(mu_);
  if (auto it = tokens_.find(scope); it != tokens_.end()) {
    if (std::chrono::steady_clock::now() < it->second.expires) return "Bearer " + it->second.value;
    tokens_.erase(it);
  }
  // Basic goes out only once the registry asked for it, so credentials never reach a server that did not
  // request them.
  if (basic_ && credentials_) return BasicAuthorization(*credentials_);
  return std::nullopt;
}

Status RegistryAuth::OnUnauthorized(const HttpResponse& response, const std::string& scope,
                                    std::chrono::milliseconds token_timeout) {
  {
    std::lock_guard lock(mu_);
    tokens_.erase(scope);  // the server just refused it (expired or revoked), whatever its expiry said
  }
  std::vector<AuthChallenge> challenges;
  for (const std::string& value : response.HeaderValues("www-authenticate")) {
    for (AuthChallenge& challenge : ParseWwwAuthenticate(value)) challenges.push_back(std::move(challenge));
  }
  for (const AuthChallenge& challenge : challenges) {
    if (challenge.scheme == "bearer" && !challenge.Param("realm").empty()) {
      Token token = LAZYFS_TRY(FetchToken(challenge, scope, token_timeout));
      std::lock_guard lock(mu_);
      tokens_[scope] = std::move(token);
      return Ok();
    }
  }
  for (const AuthChallenge& challenge : challenges) {
    if (challenge.scheme == "basic") {
      std::lock_guard lock(mu_);
      if (!credentials_) return Error(ErrorCode::kPermission, "registry requires credentials (Basic) and none are configured");
      if (basic_) return Error(ErrorCode::kPermission, "registry refused our credentials (Basic)");
      basic_ = true;
      return Ok();
    }
  }
  return Error(ErrorCode::kPermission, "401 without a Basic or Bearer challenge we can answer");
}

Status RegistryAuth::CheckRealm(const std::string& realm) const {
  Result<UrlOrigin> where = ParseUrlOrigin(realm);
  if (!where) {
    return Error(ErrorCode::kPermission, "registry " + RedactUrl(base_url_) + " names a token realm that is not a URL (" +
                                             where.error().message() + ")");
  }
  if (where->scheme == "https") return Ok();
  // Plain http is what the user chose for a registry listed as insecure; its realm can be no safer.
  Result<UrlOrigin> endpoint = ParseUrlOrigin(base_url_);
  if (where->scheme == "http" && ((endpoint && endpoint->scheme == "http") || OriginNamedIn(*where, insecure_hosts_))) {
    return Ok();
  }
  return Error(ErrorCode::kPermission,
               "registry " + RedactUrl(base_url_) + " names token realm " + RedactUrl(realm) +
                   ", which is not https: credentials and tokens would travel in cleartext, so it is not asked. "
                   "Fix the registry's token realm, or, if plain http to that server is intended, pass "
                   "--insecure-registry " + where->host + ":" + where->port);
}

Result<RegistryAuth::Token> RegistryAuth::FetchToken(const AuthChallenge& challenge, const std::string& scope,
                                                     std::chrono::milliseconds timeout) {
  std::string realm = challenge.Param("realm");
  LAZYFS_TRY(CheckRealm(realm));
  std::vector<std::pair<std::string, std::string>> params;
  if (std::string service = challenge.Param("service"); !service.empty()) params.emplace_back("service", service);
  // Ask for the scope our request needs; the challenge's own scope is the server's hint for the same.
  if (std::string wanted = scope.empty() ? challenge.Param("scope") : scope; !wanted.empty()) {
    params.emplace_back("scope", wanted);
  }
  std::string url = LAZYFS_TRY(WithQuery(realm, params));
  HttpRequest request;
  request.url = url;
  request.timeout = timeout;
  request.max_body_bytes = 1 << 20;
  if (credentials_) request.headers.emplace_back("Authorization", BasicAuthorization(*credentials_));
  HttpResponse response = LAZYFS_TRY(transport_->Perform(request));
  std::string where = "token server " + RedactUrl(realm) + " for scope " + scope;
  if (response.status == 401 || response.status == 403) {
    return Error(ErrorCode::kPermission, where + ": access denied (" + std::to_string(response.status) + ")");
  }
  if (response.status == 429 || response.status >= 500) {
    return Error(ErrorCode::kNetwork, where + ": status " + std::to_string(response.status), /*retryable=*/true);
  }
  if (response.status != 200) {
    return Error(ErrorCode::kPermission, where + ": status " + std::to_string(response.status));
  }
  nlohmann::json doc = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Corrupt(where + ": answer is not a JSON object");
  std::string value;
  for (const char* field : {"token", "access_token"}) {
    auto it = doc.find(field);
    if (it != doc.end() && it->is_string() && !it->get<std::string>().empty()) {
      value = it->get<std::string>();
      break;
    }
  }
  if (value.empty()) return Corrupt(where + ": answer has neither token nor access_token");
  // The spec's default lifetime is 60 s; renew a little early so a request never carries a dying token.
  int64_t expires_in = 60;
  if (auto it = doc.find("expires_in"); it != doc.end() && it->is_number_integer()) expires_in = it->get<int64_t>();
  if (expires_in < 10) expires_in = 10;
  auto lifetime = std::chrono::seconds(expires_in - std::min<int64_t>(expires_in / 10, 30));
  LogDebug("registry auth: got a bearer token for scope {} (valid {} s)", scope, lifetime.count());
  return Token{std::move(value), std::chrono::steady_clock::now() + lifetime};
}

}  // namespace lazyfs::fetch
