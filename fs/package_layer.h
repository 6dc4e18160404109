// Package layers: an installed Python dist (a `pip install --no-deps -t` tree, pkg/wheel_install.h) packed
// as an eStargz layer, and the layer's entries placed under a path of a composed mount
// (`/packages/NAME==VERSION/files`, `/packages/site`).
//
// A package layer is written by the converter's own writer (WriteEstargzLayer) from a tar of the tree made
// in a fixed form: entries sorted by path, owner 0:0, one fixed mtime, permission bits as installed. The
// same tree therefore packs to the same blob on every host, and a file that did not change between two
// versions of a dist is the same chunks.
//
// Thread safety: free functions, reentrant.
#pragma once

#include <string>

#include "common/result.h"
#include "fs/estargz.h"
#include "fs/layer_index.h"
#include "fs/union_tree.h"

namespace lazyfs::fs {

// The mtime every entry of a package layer carries: 1980-01-01, the zip epoch (a wheel's own timestamps
// say nothing the importer needs: .pyc are compiled with unchecked hashes).
inline constexpr int64_t kPackageLayerMtime = 315532800;

// Packs the tree at `dir` into an eStargz blob written to `out_fd` from its current position.
// Directories, regular files and symlinks only; kCorrupt for anything else (devices, sockets, fifos) and
// for a name a union would read as a whiteout (`.wh.*`), naming the path. The tar is spooled to an
// unlinked file in `options.spool_dir` (TempRoot() when empty).
Result<EstargzLayerInfo> PackTreeAsEstargz(const std::string& dir, int out_fd, const EstargzWriterOptions& options);

// `index` with every entry moved under `prefix` ("packages/six==1.16.0/files"): names and hardlink
// targets get the prefix, the layer root becomes the prefix directory itself. Whiteouts are dropped and
// reported through `report_skip` (a package layer has nothing below it to hide, and in the merged site
// view one dist's whiteout would hide another dist's file).
LayerIndex PlaceUnder(const LayerIndex& index, const std::string& prefix, uint32_t layer,
                      const SkipReporter& report_skip);

}  // namespace lazyfs::fs
