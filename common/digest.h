// Content digests: SHA-256 (OpenSSL) is the content address and the trust anchor; XXH3 is the cheap hash
// for places that need no trust (hash tables, on-disk checksums, trace fingerprints).
//
// Thread safety: Sha256Digest is a value. A Sha256Hasher is used by one thread at a time.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace lazyfs {

struct Sha256Digest {
  std::array<uint8_t, 32> bytes{};

  // Parses "sha256:<64 lowercase hex>" (OCI digest form). Anything else is nullopt.
  static std::optional<Sha256Digest> Parse(std::string_view text);
  // Builds a digest from its 32 raw bytes (LMDB keys store digests raw).
  static std::optional<Sha256Digest> FromRaw(std::string_view raw);

  std::string Hex() const;
  std::string ToString() const { return "sha256:" + Hex(); }  // OCI digest form
  std::string_view Raw() const { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
  std::string Short() const { return Hex().substr(0, 12); }  // for log lines

  auto operator<=>(const Sha256Digest&) const = default;
};

Sha256Digest Sha256Of(std::string_view data);

// Streaming SHA-256 for data that does not fit in memory at once (whole layers).
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Update(std::string_view data);
  // Finishes the hash; the hasher must not be updated afterwards.
  Sha256Digest Finish();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

uint64_t Xxh3(std::string_view data);

struct Sha256DigestHash {
  size_t operator()(const Sha256Digest& d) const {
    size_t h;  // the digest is already uniformly distributed: its first bytes are a fine hash
    std::memcpy(&h, d.bytes.data(), sizeof h);
    return h;
  }
};

}  // namespace lazyfs
