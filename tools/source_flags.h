// Source flags: the one place that adds the image-source options (platform, registries, TLS, mirrors,
// read bound, retries) to a subcommand and turns them into fetch::SourceOptions. Every command that opens
// an image (mount, convert, push, run) uses it, so the flags mean the same everywhere.
//
//   --platform OS/ARCH[/VARIANT]    picks the manifest from a multi-platform index (default linux/amd64)
//   --insecure-registry HOST:PORT   plain http to this registry (repeatable; nothing is insecure by default)
//   --ca-file PEM                   trust this CA for registries (private CAs)
//   --mirror URL                    mirror tried before the origin for reads (repeatable, in order)
//   --mirror-tags yes|no            may a mirror resolve tags (default yes); no: tags at the origin only
//   --read-timeout SECONDS          a read fails (EIO) after this long, retries included (default 30)
//   --retries N                     retries after a failed attempt on the origin (default 4)
//
// Proxies come from the standard environment (http_proxy, https_proxy, no_proxy), which libcurl reads.
//
// Thread safety: CLI parsing happens on one thread; SourceFlags is a plain value.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "common/result.h"
#include "fetch/image_source.h"

namespace lazyfs::tools {

struct SourceFlags {
  std::string platform = "linux/amd64";
  std::vector<std::string> insecure_registries;
  std::string ca_file;
  std::vector<std::string> mirrors;
  std::string mirror_tags = "yes";  // "yes" or "no"
  double read_timeout_seconds = 30;
  int retries = 4;
};

// Adds the flags to `cmd`, bound to `flags`, which must outlive the parse (hold it in a shared_ptr the
// callback captures).
void AddSourceFlags(CLI::App& cmd, SourceFlags& flags);

// The flags as command-line arguments again, for a command that hands them on (lazyfs run to the mount
// it starts). Relative paths are made absolute.
std::vector<std::string> SourceFlagArgs(const SourceFlags& flags);

// The options the flags describe. kInvalidArgument for values the parser cannot judge alone (a mirror
// that is not an http(s) URL, an insecure registry that is not HOST[:PORT], --mirror-tags other than yes
// or no). --read-timeout and --retries are range-checked by the parser.
Result<fetch::SourceOptions> ToSourceOptions(const SourceFlags& flags);

}  // namespace lazyfs::tools
