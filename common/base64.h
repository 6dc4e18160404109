// Standard base64 (RFC 4648 section 4, with padding) through OpenSSL, for the places formats carry bytes
// as text: xattr values in eStargz TOCs, "auth" in registry credential files, Basic authorization.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lazyfs {

std::string Base64Encode(std::string_view raw);

// The bytes `text` encodes, or nullopt unless it is padded standard base64 and nothing else (no
// whitespace, no URL-safe alphabet): what Go's encoding/base64 StdEncoding, which writes both the TOCs and
// the credential files we read, produces.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace lazyfs
