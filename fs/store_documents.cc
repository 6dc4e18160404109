#include "fs/store_documents.h"

#include "common/log.h"

namespace lazyfs::fs {
namespace {

class StoreDocumentCache final : public fetch::DocumentCache {
 public:
  explicit StoreDocumentCache(cache::ChunkStore& store) : store_(store) {}

  std::optional<std::string> Get(const Sha256Digest& digest) override {
    Result<std::optional<std::string>> value = store_.GetMeta(Key(digest));
    if (!value) {
      LogWarn("document cache: {}", value.error().ToString());
      return std::nullopt;
    }
    return std::move(*value);
  }

  void Put(const Sha256Digest& digest, std::string_view value) override {
    if (Status stored = store_.PutMeta(Key(digest), value); !stored) {
      LogWarn("document cache: keeping {}: {}", digest.ToString(), stored.error().ToString());
    }
  }

 private:
  static std::string Key(const Sha256Digest& digest) { return "doc:" + digest.ToString(); }

  cache::ChunkStore& store_;
};

}  // namespace

std::shared_ptr<fetch::DocumentCache> StoreDocuments(cache::ChunkStore& store) {
  return std::make_shared<StoreDocumentCache>(store);
}

}  // namespace lazyfs::fs
