// RegistryOptions: everything a user can say about registries (insecure hosts, CA, mirrors, credentials,
// timeouts, retries, the read deadline). The CLI fills it in (tools/source_flags.h); SourceOptions carries
// it so OpenImageSource can open docker:// references; NewRegistryClient (registry_source.h) turns it into
// a configured RegistryClient. Its own header so image_source.h can hold one without the registry source.
//
// Thread safety: a plain value.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fetch/http_transport.h"
#include "fetch/registry_auth.h"
#include "fetch/registry_client.h"

namespace lazyfs::fetch {

struct RegistryOptions {
  // Hosts ("HOST[:PORT]", exactly as in the reference) spoken to over plain http. None by default: TLS
  // with verification is the rule, plain http the explicit exception (a loopback registry in tests).
  std::vector<std::string> insecure_registries;
  std::string ca_file;  // extra trust anchor (PEM) for a private registry's CA
  // Base URLs tried in order before the origin for manifest and blob reads.
  std::vector<std::string> mirrors;
  // Whether a tag may be resolved at a mirror (--mirror-tags yes, containerd's default). Off, tags go to the
  // origin only; digests still use mirrors, whose answers are checked against the digest.
  bool mirror_tags = true;
  // Explicit credentials; when absent and `search_auth_files`, looked up in the standard auth files.
  std::optional<Credentials> credentials;
  bool search_auth_files = true;
  AuthFileLocations auth_files = AuthFileLocations::FromProcess();

  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds request_timeout{60'000};  // manifests, HEAD, ranges, tokens (cut to read_timeout's rest)
  // Bound on one read operation (a manifest, or the ranges one FUSE read needs), every retry and mirror
  // included: past it the read fails (kTimeout) so the reader gets EIO instead of hanging. 0: no bound.
  std::chrono::milliseconds read_timeout{30'000};
  long low_speed_bytes = 1024;                        // streams and uploads: fail when slower than this…
  std::chrono::seconds low_speed_time{30};            // …for this long
  RetryPolicy retry;

  // Seams for tests: the transport (null: libcurl), the wait between attempts (null: sleep) and the
  // clock deadlines are measured on (null: steady_clock).
  std::shared_ptr<HttpTransport> transport;
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<std::chrono::steady_clock::time_point()> now;
};

}  // namespace lazyfs::fetch
