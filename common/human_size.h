// Byte counts for people: "812 B", "17.5 KiB", "120.0 MiB", "64.0 GiB" (binary units, one decimal). Output
// meant for machines (--json) keeps exact byte counts instead.
#pragma once

#include <cstdint>
#include <string>

namespace lazyfs {

std::string HumanSize(uint64_t bytes);

}  // namespace lazyfs
