// Trace artifacts: a lazyfs access trace stored in a registry next to the image it was recorded on, so
// every host that mounts the image can prefetch what its start-up reads (`lazyfs trace push`,
// `lazyfs mount --prefetch auto`).
//
// The artifact is an OCI image manifest (artifactType kTraceArtifactType) whose one layer is the trace
// file (media type kTraceArtifactType), whose config is the OCI empty descriptor, and whose `subject` is
// the image manifest. Registries without the referrers API (Debian's docker-registry among them) cannot
// list referrers, so the manifest is also tagged with the referrers tag schema's fallback form
// `sha256-<image manifest hex>.lazyfs-trace` (the spec's `sha256-<hex>` tag, suffixed so it never clashes
// with the index a referrers-aware client keeps there). Lookup is a GET of that tag; pushing again
// replaces the tag (the newest trace wins).
//
// Thread safety: reentrant; the client is thread-safe.
#pragma once

#include <optional>
#include <string>

#include "common/digest.h"
#include "common/result.h"
#include "fetch/registry_client.h"

namespace lazyfs::fetch {

inline constexpr const char* kTraceArtifactType = "application/vnd.lazyfs.trace.v1";
inline constexpr uint64_t kMaxTraceArtifactBytes = 256ull << 20;

std::string TraceArtifactTag(const Sha256Digest& image_manifest);

// Uploads the trace file at `trace_path` (its blob and the empty config, skipping blobs the registry has)
// and tags the artifact manifest; `subject` is the image manifest as fetched from `repo`. Returns the
// artifact manifest's digest. Errors are the client's; kIo when the trace file cannot be read.
Result<Sha256Digest> PushTraceArtifact(RegistryClient& client, const std::string& repo,
                                       const FetchedManifest& subject, const std::string& trace_path);

// The trace bytes stored for image manifest `image_manifest` in `repo`, verified against the artifact's
// descriptor; nullopt when there is none. kCorrupt when the tag holds something else (wrong subject or
// type, oversized).
Result<std::optional<std::string>> FetchTraceArtifact(RegistryClient& client, const std::string& repo,
                                                      const Sha256Digest& image_manifest);

}  // namespace lazyfs::fetch
