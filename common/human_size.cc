#include "common/human_size.h"

#include <fmt/format.h>

namespace lazyfs {

std::string HumanSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  // Round first, so 1023.96 KiB reads "1.0 MiB", not "1024.0 KiB".
  while (value >= 1024 * 0.99995 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

}  // namespace lazyfs
