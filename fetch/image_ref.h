// Image references in skopeo's transport syntax:
//   oci:DIR[:TAG]                          an OCI image layout directory (no tag: the layout's only
//                                          manifest, else the one tagged "latest"; see OciLayout::Resolve)
//   docker-archive:FILE                    a `docker save` tarball (convert input only)
//   docker://HOST[:PORT]/NAME[:TAG|@sha256:HEX]   an OCI distribution registry
//
// Thread safety: plain values.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/digest.h"
#include "common/result.h"

namespace lazyfs::fetch {

struct ImageRef {
  enum class Transport { kOciLayout, kDockerArchive, kDocker };
  Transport transport = Transport::kOciLayout;
  std::string path;        // oci: / docker-archive: path
  std::string host;        // docker: "HOST[:PORT]"
  std::string repository;  // docker: "NAME" (may contain '/')
  std::string tag;         // docker: "latest" by default, empty when pinned by digest; oci: empty when not given
  std::optional<Sha256Digest> digest;  // docker: @sha256:...

  static Result<ImageRef> Parse(std::string_view text);
  std::string ToString() const;
};

}  // namespace lazyfs::fetch
