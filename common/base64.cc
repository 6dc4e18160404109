// Base64 through OpenSSL's EVP_EncodeBlock / EVP_DecodeBlock (see base64.h). A file of its own, like
// sha256.cc, so a binary that never encodes does not pull in libcrypto for it.
#include "common/base64.h"

#include <openssl/evp.h>

#include <algorithm>

namespace lazyfs {
namespace {

// EVP takes int lengths: longer input goes through in pieces of whole 3-byte / 4-character groups.
constexpr size_t kRawPiece = size_t{3} << 20;
constexpr size_t kTextPiece = kRawPiece / 3 * 4;

bool IsBase64Digit(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

}  // namespace

std::string Base64Encode(std::string_view raw) {
  std::string out((raw.size() + 2) / 3 * 4 + 1, '\0');  // + 1: EVP_EncodeBlock writes a NUL
  size_t written = 0;
  for (size_t pos = 0; pos < raw.size(); pos += kRawPiece) {
    std::string_view piece = raw.substr(pos, kRawPiece);
    written += static_cast<size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + written),
                                                   reinterpret_cast<const unsigned char*>(piece.data()),
                                                   static_cast<int>(piece.size())));
  }
  out.resize(written);
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  size_t padding = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
  // EVP_DecodeBlock alone is laxer than the format: it skips leading and trailing whitespace and reads
  // '=' anywhere. So the alphabet is checked here, and only the final group may be padded.
  if (!std::all_of(text.begin(), text.end() - static_cast<std::ptrdiff_t>(padding), IsBase64Digit)) {
    return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  size_t written = 0;
  for (size_t pos = 0; pos < text.size(); pos += kTextPiece) {
    std::string_view piece = text.substr(pos, kTextPiece);
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data() + written),
                            reinterpret_cast<const unsigned char*>(piece.data()), static_cast<int>(piece.size()));
    if (n < 0) return std::nullopt;
    written += static_cast<size_t>(n);
  }
  // EVP_DecodeBlock counts the bytes that padding stands for; drop them.
  out.resize(written - padding);
  return out;
}

}  // namespace lazyfs
