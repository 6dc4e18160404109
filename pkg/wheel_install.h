// Installing one wheel into a directory of its own, as `pip install --no-deps --target DIR` lays it out
// (OpenLambda's /packages/NAME==VERSION/files): the wheel's root and its .data/purelib and .data/platlib at
// the top, .data/scripts in bin/ (a `#!python` line becomes the target interpreter), .data/headers in
// include/python/NAME/, .data/data at the top; console and GUI scripts from entry_points.txt generated
// in bin/; INSTALLER written and RECORD rewritten for what is on disk. No .pyc is compiled here: that is
// the target interpreter's job, in its own sandbox.
//
// A wheel is hostile until proven otherwise, and the checks run before anything is visible:
//   - the file's sha256 is the one the lock (or index) gives, before the zip is opened;
//   - member names are relative, without "..", backslashes or empty parts, each unique; members are
//     regular files or directories (a symlink member is refused);
//   - the central directory is what libarchive reads (its seekable zip reader), sizes as declared;
//   - every file is listed in RECORD with its hash and size, and every RECORD row names a file that is
//     there; METADATA's Name and Version are the file name's; WHEEL says Wheel-Version 1.x;
//   - bounded: members, total bytes, and total bytes per byte of wheel (a zip bomb).
// The tree is written into a temporary sibling of `target` and renamed into place, so `target` either is
// a complete install or does not exist.
//
// Thread safety: reentrant; concurrent installs into the same target race for the rename (one wins, the
// others fail with kIo and leave nothing).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"

namespace lazyfs::pkg {

struct WheelLimits {
  uint64_t max_members = 200'000;
  uint64_t max_total_bytes = uint64_t{8} << 30;  // what the biggest real wheels unpack to, with room
  uint64_t max_expansion = 200;                  // total bytes per byte of the wheel file ...
  uint64_t expansion_floor = uint64_t{64} << 20;  // ... once past this much
};

struct WheelInstallOptions {
  std::string interpreter = "/usr/bin/python3";  // the #! of scripts: the target's python3
  std::string installer = "lazyfs";              // written to INSTALLER
  WheelLimits limits;
  // Runs on the complete tree (given its path) before RECORD is rewritten and the tree renamed into
  // place: the .pyc compile by the target interpreter. Regular files it adds are recorded; a link or
  // special file it leaves fails the install. Null: nothing runs.
  using FinishTree = std::function<Status(const std::string& tree)>;
  FinishTree finish_tree;
};

struct InstalledWheel {
  std::string name;       // as METADATA writes it
  std::string version;    // as METADATA writes it
  std::string dist_info;  // "Flask-2.2.2.dist-info", relative to the target
  std::vector<std::string> scripts;  // bin/ entries, generated or from .data/scripts, sorted
  uint64_t files = 0;
  uint64_t bytes = 0;     // of the files written
};

// Installs the wheel at `wheel_path` (its file name must be a wheel's) into `target`, which must not
// exist; its parent must. `sha256_hex` is the lower-case hex digest the file must have. Errors name the
// wheel's file name and the member: kCorrupt for anything the checks above refuse, kUnsupported for a
// Wheel-Version 2 wheel, kIo for the local file system (including an existing `target`).
Result<InstalledWheel> InstallWheel(const std::string& wheel_path, const std::string& sha256_hex,
                                    const std::string& target, const WheelInstallOptions& options = {});

}  // namespace lazyfs::pkg
