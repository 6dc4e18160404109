// A temporary directory for one test, removed with everything in it when the test ends.
#pragma once

#include "tests/test_support.h"

namespace lazyfs::fetch::testing {
using lazyfs::testing::TempDir;
}  // namespace lazyfs::fetch::testing
