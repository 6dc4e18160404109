// DocumentCache: small content-addressed documents (image manifests and configs) kept between processes,
// so that a mount of a digest-pinned reference that `lazyfs run` has just resolved, or a mount made again,
// reads its manifest and config locally instead of in two more round trips. An interface so fetch/ stays
// free of cache/: fs/store_documents.h keeps them in the shared chunk store.
//
// Nothing read from it is trusted: callers check the bytes against the digest they asked for and fall back
// to the network on a mismatch.
//
// Thread safety: implementations are safe to call from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/digest.h"

namespace lazyfs::fetch {

class DocumentCache {
 public:
  virtual ~DocumentCache() = default;
  // The value stored under `digest`, if any.
  virtual std::optional<std::string> Get(const Sha256Digest& digest) = 0;
  // Stores `value` under `digest`; best effort (a failure only costs a later fetch).
  virtual void Put(const Sha256Digest& digest, std::string_view value) = 0;
};

}  // namespace lazyfs::fetch
