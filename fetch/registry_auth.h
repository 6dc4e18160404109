// Registry authentication: credentials from the standard auth files, WWW-Authenticate parsing, and
// RegistryAuth, which turns a 401 challenge into an Authorization header (Basic, or a Bearer token
// fetched from the challenge's realm and cached per scope).
//
// Secrets: passwords and tokens only ever travel in Authorization headers. Nothing here logs them, and
// error messages name the host and scope, never a credential.
//
// Thread safety: the free functions are reentrant. RegistryAuth is thread-safe; its token cache is
// guarded by a mutex that is never held across HTTP.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "fetch/http_transport.h"

namespace lazyfs::fetch {

struct Credentials {
  std::string username;
  std::string password;
};

// One challenge of a WWW-Authenticate header: the scheme lower-cased ("bearer", "basic") and its
// parameters with lower-cased names and unquoted values.
struct AuthChallenge {
  std::string scheme;
  std::map<std::string, std::string> params;

  std::string Param(const std::string& name) const {
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  }
};

// Parses a WWW-Authenticate value (RFC 7235): several challenges, quoted strings with backslash escapes
// and commas inside quotes (scope="repository:a:pull,push"), spaces around '=' and ','. Malformed tails
// are dropped rather than failing: a challenge we half understand is still worth trying.
std::vector<AuthChallenge> ParseWwwAuthenticate(std::string_view header);

std::string Base64Encode(std::string_view data);
// nullopt on characters outside the standard alphabet or bad padding.
std::optional<std::string> Base64Decode(std::string_view text);

// "Basic base64(user:password)".
std::string BasicAuthorization(const Credentials& credentials);

// Where the auth files are looked for; FromProcess reads the environment. Tests fill it by hand.
struct AuthFileLocations {
  std::string registry_auth_file;  // $REGISTRY_AUTH_FILE
  std::string xdg_runtime_dir;     // $XDG_RUNTIME_DIR -> containers/auth.json
  std::string home;                // $HOME -> .config/containers/auth.json, .docker/config.json

  static AuthFileLocations FromProcess();
  // The candidate files in precedence order (empty locations skipped).
  std::vector<std::string> Files() const;
};

// Credentials for `host` ("HOST[:PORT]") in one auth.json / config.json document: `auths` keyed by host,
// "https://host" or "host/path" (docker.io's aliases included), with `auth` = base64("user:password") or
// separate `username`/`password`. nullopt when the document has no entry; kInvalidArgument when the
// JSON or the entry is malformed.
Result<std::optional<Credentials>> CredentialsFromAuthJson(std::string_view json, std::string_view host);

// Searches the auth files in order ($REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
// ~/.config/containers/auth.json, ~/.docker/config.json); the first file with an entry for `host` wins.
// Missing files are skipped; a malformed one is an error naming the file.
Result<std::optional<Credentials>> FindCredentials(std::string_view host, const AuthFileLocations& where);

// The auth state for one registry endpoint. The client asks Authorization(scope) before each request and
// calls OnUnauthorized once when the answer is 401.
class RegistryAuth {
 public:
  RegistryAuth(std::optional<Credentials> credentials, std::shared_ptr<HttpTransport> transport,
               std::chrono::milliseconds token_timeout = std::chrono::seconds(30));

  // The Authorization header value for a request needing `scope` ("repository:NAME:pull"), or nullopt to
  // go anonymous (nothing learnt yet, or no credentials for a Basic registry).
  std::optional<std::string> Authorization(const std::string& scope);

  // Learns from a 401 response: remembers a Basic scheme, or fetches a Bearer token for `scope` from the
  // challenge's realm (with Basic credentials if we have any) and caches it, dropping any token the
  // server just refused. Errors: kPermission when no challenge we support is offered, when credentials
  // are needed but absent, or when the token server refuses; kNetwork/kTimeout (retryable as the
  // transport says) when the token server cannot be reached; kCorrupt when its answer has no token.
  Status OnUnauthorized(const HttpResponse& response, const std::string& scope);

 private:
  struct Token {
    std::string value;
    std::chrono::steady_clock::time_point expires;
  };

  Result<Token> FetchToken(const AuthChallenge& challenge, const std::string& scope);

  // Constant after construction.
  const std::optional<Credentials> credentials_;
  const std::shared_ptr<HttpTransport> transport_;
  const std::chrono::milliseconds token_timeout_;

  std::mutex mu_;
  bool basic_ = false;                   // guarded by mu_: the registry asked for Basic
  std::map<std::string, Token> tokens_;  // guarded by mu_: bearer tokens by scope
};

}  // namespace lazyfs::fetch
