// The FUSE low-level operations table: one short adapter per op over a Filesystem. Each adapter replies
// exactly once; errors become errno here and nowhere else (ToErrno), and a failed read is logged once
// with image, file and the chunk-level cause. Every write op answers EROFS.
//
// Thread safety: adapters run on libfuse's worker threads; all state is in the FuseContext (userdata).
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "fs/filesystem.h"

namespace lazyfs::fs {

struct FuseContext {
  Filesystem* fs = nullptr;
  // The content never changes, so the kernel may cache entries and attributes for as long as it likes.
  double timeout_seconds = 365.0 * 24 * 3600;
  // Set in init when the kernel opens files without asking us (FUSE_CAP_NO_OPEN_SUPPORT / ..._OPENDIR_...).
  bool zero_message_open = false;
  bool zero_message_opendir = false;
};

const fuse_lowlevel_ops& LowlevelOps();

}  // namespace lazyfs::fs
