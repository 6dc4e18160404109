// SHA-256 hashing (OpenSSL), apart from the digest value type in digest.cc so that a binary that only
// parses and prints digests (the lazyfs front end, tools/lazyfs.cc) does not load libcrypto.
#include <openssl/evp.h>

#include "common/digest.h"

namespace lazyfs {

struct Sha256Hasher::Ctx {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256Hasher::Sha256Hasher() : ctx_(std::make_unique<Ctx>()) { EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr); }
Sha256Hasher::~Sha256Hasher() = default;

void Sha256Hasher::Update(std::string_view data) { EVP_DigestUpdate(ctx_->md, data.data(), data.size()); }

Sha256Digest Sha256Hasher::Finish() {
  Sha256Digest d;
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md, d.bytes.data(), &len);
  return d;
}

Sha256Digest Sha256Of(std::string_view data) {
  Sha256Digest d;
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), d.bytes.data(), &len, EVP_sha256(), nullptr);
  return d;
}

}  // namespace lazyfs
