#!/usr/bin/env bash
# The test command (README, second command; .ci/run calls exactly this): installs what the tests need from
# apt, builds, and runs every test — unit tests, the unit tests again under AddressSanitizer + UBSan, and the
# integration tests that mount real FUSE file systems and start real servers on 127.0.0.1. Needs root: as
# another user it re-runs itself through sudo (tools/require-root.sh).
set -euo pipefail
source "$(dirname "$0")/../tools/require-root.sh" "$@"
cd "$(dirname "$0")/.."

bash tools/install-deps.sh

build=${LAZYFS_BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=debugoptimized
ninja -C "$build"

asan=${LAZYFS_ASAN_BUILD_DIR:-build-asan}
[ -f "$asan/build.ninja" ] || meson setup "$asan" --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
ninja -C "$asan"

echo "== unit tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C "$asan" --suite unit --print-errorlogs

echo "== all tests"
meson test -C "$build" --print-errorlogs "$@"
