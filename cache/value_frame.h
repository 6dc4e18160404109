// The on-disk framing of every cache value: [8-byte little-endian XXH3-64 of the data][data].
// XXH3 needs no trust here (keys are sha256 and callers store only verified bytes); it catches on-disk
// corruption (bit rot, a torn page after a host crash under MDB_NOSYNC) before bad bytes reach a reader.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#include "common/digest.h"

namespace lazyfs::cache {

inline constexpr size_t kFrameHeaderBytes = 8;

inline size_t FramedSize(size_t data_size) { return kFrameHeaderBytes + data_size; }

// Writes the framed value into `dst`, which has room for FramedSize(data.size()) bytes.
inline void WriteFrame(std::string_view data, char* dst) {
  uint64_t sum = Xxh3(data);
  for (size_t i = 0; i < kFrameHeaderBytes; ++i) dst[i] = static_cast<char>((sum >> (8 * i)) & 0xff);
  if (!data.empty()) std::memcpy(dst + kFrameHeaderBytes, data.data(), data.size());
}

// The payload of a stored value if its checksum matches, else nullopt (too short or mismatched).
// The view aliases `stored`: with LMDB it is valid only while the transaction lives.
inline std::optional<std::string_view> VerifiedPayload(std::string_view stored) {
  if (stored.size() < kFrameHeaderBytes) return std::nullopt;
  uint64_t want = 0;
  for (size_t i = 0; i < kFrameHeaderBytes; ++i) {
    want |= uint64_t{static_cast<unsigned char>(stored[i])} << (8 * i);
  }
  std::string_view data = stored.substr(kFrameHeaderBytes);
  if (Xxh3(data) != want) return std::nullopt;
  return data;
}

}  // namespace lazyfs::cache
