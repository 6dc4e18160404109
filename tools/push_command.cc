// `lazyfs push` (see push_command.h).
//
// Thread safety: single-threaded command.
#include "tools/push_command.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "common/log.h"
#include "fetch/image_ref.h"
#include "fetch/oci_layout.h"
#include "fetch/registry_push.h"
#include "tools/commands.h"
#include "tools/source_flags.h"

namespace lazyfs::tools {

int RunPush(const std::string& src, const std::string& dst, const fetch::SourceOptions& options, bool quiet) {
  Result<fetch::ImageRef> from = fetch::ImageRef::Parse(src);
  Result<fetch::ImageRef> to = fetch::ImageRef::Parse(dst);
  if (!from || !to) {
    std::fprintf(stderr, "lazyfs: push: %s\n", (!from ? from.error() : to.error()).ToString().c_str());
    return 2;
  }
  if (from->transport != fetch::ImageRef::Transport::kOciLayout) {
    std::fprintf(stderr, "lazyfs: push: source %s: want oci:DIR[:TAG]\n", src.c_str());
    return 2;
  }
  if (to->transport != fetch::ImageRef::Transport::kDocker) {
    std::fprintf(stderr, "lazyfs: push: destination %s: want docker://HOST[:PORT]/NAME[:TAG]\n", dst.c_str());
    return 2;
  }
  auto started = std::chrono::steady_clock::now();
  Status pushed = [&]() -> Status {
    fetch::OciLayout layout = LAZYFS_TRY(fetch::OciLayout::Open(from->path));
    fetch::PushProgress progress = [quiet](const std::string& line) {
      if (!quiet) std::fprintf(stderr, "%s\n", line.c_str());
    };
    return fetch::PushImage(layout, from->tag, *to, options.registry, progress);
  }();
  if (!pushed) {
    std::fprintf(stderr, "lazyfs: push: %s\n", pushed.error().ToString().c_str());
    return 1;
  }
  if (!quiet) {
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::fprintf(stderr, "pushed %s to %s (%.1f s)\n", src.c_str(), to->ToString().c_str(), seconds);
  }
  return 0;
}

void AddPushCommand(CLI::App& app, int& exit_code) {
  struct Options {
    std::string src;
    std::string dst;
    SourceFlags source;
    bool quiet = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("push", "Copy an image from an OCI layout to a registry (missing blobs only)");
  cmd->add_option("source", options->src, "oci:DIR[:TAG]")->required();
  cmd->add_option("destination", options->dst, "docker://HOST[:PORT]/NAME[:TAG]")->required();
  AddSourceFlags(*cmd, options->source);
  cmd->add_flag("-q,--quiet", options->quiet, "no progress output");
  cmd->callback([options, &exit_code] {
    Result<fetch::SourceOptions> source = ToSourceOptions(options->source);
    if (!source) {
      std::fprintf(stderr, "lazyfs: %s\n", source.error().ToString().c_str());
      exit_code = 2;
      return;
    }
    exit_code = RunPush(options->src, options->dst, *source, options->quiet);
  });
}

}  // namespace lazyfs::tools
