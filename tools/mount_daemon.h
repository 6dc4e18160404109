// MountDaemon: everything one `lazyfs mount` serves, owned in the order it must be torn down.
//
// Start opens the cache and the image source, loads the image, mounts it and starts the control socket,
// the idle watch and prefetching; Serve runs the FUSE loop until the mount goes away. Teardown is the
// members' reverse declaration order, so nothing is hand-ordered: the control socket and the idle watch
// stop first (their handlers read the rest), then the mount (no more FUSE requests), then the trace and
// prefetcher finish, and only then the reader, the source and the store that every earlier member used.
//
// Thread safety: Start and Serve are called from one thread; the members' own threads stop in teardown.
#pragma once

#include <memory>
#include <string>

#include "cache/chunk_store.h"
#include "common/result.h"
#include "fetch/image_source.h"
#include "fs/blob_order.h"
#include "fs/chunk_reader.h"
#include "fs/filesystem.h"
#include "fs/fuse_mount.h"
#include "fs/image_loader.h"
#include "run/control_socket.h"
#include "tools/idle_watch.h"
#include "tools/mount_command.h"
#include "tools/mount_observability.h"

namespace lazyfs::tools {

class MountDaemon {
 public:
  static Result<std::unique_ptr<MountDaemon>> Start(const MountCommandOptions& options);
  ~MountDaemon() = default;
  MountDaemon(const MountDaemon&) = delete;
  MountDaemon& operator=(const MountDaemon&) = delete;

  // Serves FUSE requests until the mount is unmounted or the process is told to stop.
  Status Serve() { return mount_->Serve(); }

 private:
  MountDaemon() = default;
  std::string StatsRequest(const std::string& request) const;

  // Runs when the mount is gone and before the observability and reader it uses: finishes the trace and
  // prefetcher and logs what the mount read.
  struct FinishAfterUnmount {
    const MountDaemon* daemon = nullptr;
    ~FinishAfterUnmount();
  };

  MountCommandOptions options_;
  std::string mountpoint_;  // canonical
  std::unique_ptr<cache::ChunkStore> store_;
  std::unique_ptr<fetch::ImageSource> source_;              // null for a packages-only mount
  std::vector<std::unique_ptr<fetch::ImageSource>> part_sources_;  // one per package layer
  fs::LoadedImage image_;
  std::unique_ptr<fs::LayerRestreamers> restreamers_;
  fs::BlobOrder blob_order_;  // before the reader, which points into it
  std::unique_ptr<fs::ChunkReader> reader_;
  std::unique_ptr<fs::Filesystem> filesystem_;
  std::unique_ptr<MountObservability> observability_;
  FinishAfterUnmount finish_;
  std::unique_ptr<fs::FuseMount> mount_;
  std::unique_ptr<IdleWatch> idle_;  // before the control server, whose handler reads it
  std::unique_ptr<run::ControlServer> control_;
};

}  // namespace lazyfs::tools
