// Registry authentication: credentials from the standard auth files, WWW-Authenticate parsing, and
// RegistryAuth, which turns a 401 challenge into an Authorization header (Basic, or a Bearer token
// fetched from the challenge's realm and cached per scope).
//
// Secrets: passwords and tokens only ever travel in Authorization headers, and only over https unless the
// user said plain http is fine (the registry, or the token realm's host, named with --insecure-registry).
// Nothing here logs them, and error messages name the host and scope, never a credential.
//
// Thread safety: the free functions are reentrant. RegistryAuth is thread-safe; its token cache is
// guarded by a mutex that is never held across HTTP.
#pragma once

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "fetch/url.h"
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

// "Basic base64(user:password)".
std::string BasicAuthorization(const Credentials& credentials);

// Where the auth files are looked for; FromProcess reads the environment. Tests fill it by hand.
struct AuthFileLocations {
  std::string registry_auth_file;  // $REGISTRY_AUTH_FILE
  std::string xdg_runtime_dir;     // $XDG_RUNTIME_DIR -> containers/auth.json
  std::string home;                // $HOME -> .config/containers/auth.json, .docker/config.json

  // Inline, so code that only holds a RegistryOptions (the `lazyfs` front end, which must not load
  // libcurl: tools/meson.build) links no object of the registry client.
  static AuthFileLocations FromProcess() {
    auto get = [](const char* name) -> std::string {
      const char* value = std::getenv(name);
      return value != nullptr ? value : "";
    };
    return AuthFileLocations{get("REGISTRY_AUTH_FILE"), get("XDG_RUNTIME_DIR"), get("HOME")};
  }
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

// The auth state for one registry endpoint (a base URL: the origin or a mirror). The client asks
// Authorization(scope) before each request to that endpoint's own origin and calls OnUnauthorized once
// when that origin answers 401. Judging where a 401 came from is the client's job (it knows the URL that
// answered); this class trusts that the challenge is the endpoint's own.
class RegistryAuth {
 public:
  // `base_url` is the endpoint's ("https://HOST[:PORT]"); `insecure_hosts` are the --insecure-registry
  // names, the hosts a token realm may be reached at over plain http.
  RegistryAuth(std::string base_url, std::optional<Credentials> credentials, std::shared_ptr<HttpTransport> transport,
               std::vector<std::string> insecure_hosts = {});

  // The Authorization header value for a request needing `scope` ("repository:NAME:pull"), or nullopt to
  // go anonymous (nothing learnt yet, or no credentials for a Basic registry).
  std::optional<std::string> Authorization(const std::string& scope);

  // Learns from a 401 response: remembers a Basic scheme, or fetches a Bearer token for `scope` from the
  // challenge's realm (with Basic credentials if we have any) and caches it, dropping any token the
  // server just refused. The token request gets `token_timeout` (0: none), which the caller cuts to the
  // time its operation has left. The realm may be on another host (auth.docker.io for Docker Hub) but
  // must be https unless the endpoint itself is plain http or the realm's HOST:PORT is an insecure host.
  // Errors: kPermission when no challenge we support is offered, when credentials are needed but
  // absent, when the token server refuses, or when the realm is not https (permanent, nothing is sent);
  // kNetwork/kTimeout (retryable as the transport says) when the token server cannot be reached;
  // kCorrupt when its answer has no token.
  Status OnUnauthorized(const HttpResponse& response, const std::string& scope,
                        std::chrono::milliseconds token_timeout);

 private:
  struct Token {
    std::string value;
    std::chrono::steady_clock::time_point expires;
  };

  Result<Token> FetchToken(const AuthChallenge& challenge, const std::string& scope,
                           std::chrono::milliseconds timeout);
  // Ok when a token request to `realm` keeps credentials off plain http (see OnUnauthorized).
  Status CheckRealm(const std::string& realm) const;

  // Constant after construction.
  const std::string base_url_;
  const std::optional<Credentials> credentials_;
  const std::shared_ptr<HttpTransport> transport_;
  const std::vector<std::string> insecure_hosts_;

  std::mutex mu_;
  bool basic_ = false;                   // guarded by mu_: the registry asked for Basic
  std::map<std::string, Token> tokens_;  // guarded by mu_: bearer tokens by scope
};

}  // namespace lazyfs::fetch
