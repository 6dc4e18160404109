// registry_probe: a small CLI over the registry client, so tests/integration/test_registry_fetch.py can
// drive fetch/ against a real docker-registry. Not installed; not a user tool.
//
//   registry_probe [OPTIONS] get-manifest REF            digest, media type and size, then the bytes
//   registry_probe [OPTIONS] resolve REF                 manifest digest, config digest, "layer DIGEST SIZE"
//   registry_probe [OPTIONS] get-range REF DIGEST OFFSET LENGTH   the raw bytes on stdout
//   registry_probe [OPTIONS] get-blob REF DIGEST         the whole blob (sha256-verified) on stdout
//   registry_probe [OPTIONS] head REF DIGEST             the size, or "absent"
//   registry_probe [OPTIONS] push OCIDIR TAG REF         push a layout's tagged image
// OPTIONS: --insecure (plain http to REF's host), --ca-file FILE, --user U --password P,
//          --no-auth-files, --mirror URL (repeatable), --platform OS/ARCH, --attempts N, --debug.
// Exit status: 0 on success, 1 with "error: CODE: MESSAGE" on stderr, 2 on bad usage.
//
// Thread safety: single-threaded tool.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "common/log.h"
#include "fetch/image.h"
#include "fetch/image_ref.h"
#include "fetch/oci_layout.h"
#include "fetch/registry_push.h"
#include "fetch/registry_source.h"

namespace lazyfs::fetch {
namespace {

int Usage() {
  std::cerr << "usage: registry_probe [--insecure] [--ca-file F] [--user U --password P] [--no-auth-files]\n"
               "         [--mirror URL] [--platform P] [--attempts N] [--debug] COMMAND ARGS...\n"
               "commands: get-manifest REF | resolve REF | get-range REF DIGEST OFFSET LENGTH |\n"
               "          get-blob REF DIGEST | head REF DIGEST | push OCIDIR TAG REF\n";
  return 2;
}

Status WriteOut(std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(STDOUT_FILENO, data.data() + done, data.size() - done);
    if (n < 0) return PosixError(errno, "write stdout");
    done += static_cast<size_t>(n);
  }
  return Ok();
}

Result<ImageRef> ParseDockerRef(const std::string& text) {
  ImageRef ref = LAZYFS_TRY(ImageRef::Parse(text));
  if (ref.transport != ImageRef::Transport::kDocker) return InvalidArgument("not a docker:// reference: " + text);
  return ref;
}

Result<Sha256Digest> ParseDigest(const std::string& text) {
  auto digest = Sha256Digest::Parse(text);
  if (!digest) return InvalidArgument("not a sha256 digest: " + text);
  return *digest;
}

Status Run(const std::vector<std::string>& args, RegistryOptions& options, const std::string& platform, bool insecure) {
  const std::string& command = args[0];
  auto client_for = [&](const ImageRef& ref) -> Result<std::shared_ptr<RegistryClient>> {
    if (insecure) options.insecure_registries.push_back(ref.host);
    return NewRegistryClient(ref.host, options);
  };
  if (command == "get-manifest" && args.size() == 2) {
    ImageRef ref = LAZYFS_TRY(ParseDockerRef(args[1]));
    auto client = LAZYFS_TRY(client_for(ref));
    FetchedManifest m = LAZYFS_TRY(client->GetManifest(ref.repository, ref.digest ? ref.digest->ToString() : ref.tag));
    return WriteOut("digest " + m.digest.ToString() + "\nmedia_type " + m.media_type + "\nsize " +
                    std::to_string(m.bytes.size()) + "\n" + m.bytes + "\n");
  }
  if (command == "resolve" && args.size() == 2) {
    ImageRef ref = LAZYFS_TRY(ParseDockerRef(args[1]));
    if (insecure) options.insecure_registries.push_back(ref.host);
    auto source = LAZYFS_TRY(OpenRegistrySource(ref, SourceOptions{platform, {}, nullptr}, options));
    ResolvedImage image = LAZYFS_TRY(source->Resolve());
    std::string out = "manifest " + image.manifest_digest.ToString() + "\nconfig " +
                      image.manifest.config.digest.ToString() + "\n";
    for (const Descriptor& layer : image.manifest.layers) {
      out += "layer " + layer.digest.ToString() + " " + std::to_string(layer.size) + "\n";
    }
    return WriteOut(out);
  }
  if (command == "get-range" && args.size() == 5) {
    ImageRef ref = LAZYFS_TRY(ParseDockerRef(args[1]));
    Sha256Digest digest = LAZYFS_TRY(ParseDigest(args[2]));
    auto client = LAZYFS_TRY(client_for(ref));
    std::string bytes = LAZYFS_TRY(client->GetBlobRange(ref.repository, digest, std::stoull(args[3]), std::stoull(args[4])));
    return WriteOut(bytes);
  }
  if (command == "get-blob" && args.size() == 3) {
    ImageRef ref = LAZYFS_TRY(ParseDockerRef(args[1]));
    Sha256Digest digest = LAZYFS_TRY(ParseDigest(args[2]));
    auto client = LAZYFS_TRY(client_for(ref));
    return client->GetBlobStream(ref.repository, digest, WriteOut);
  }
  if (command == "head" && args.size() == 3) {
    ImageRef ref = LAZYFS_TRY(ParseDockerRef(args[1]));
    Sha256Digest digest = LAZYFS_TRY(ParseDigest(args[2]));
    auto client = LAZYFS_TRY(client_for(ref));
    std::optional<uint64_t> size = LAZYFS_TRY(client->HeadBlob(ref.repository, digest));
    return WriteOut(size ? std::to_string(*size) + "\n" : "absent\n");
  }
  if (command == "push" && args.size() == 4) {
    OciLayout layout = LAZYFS_TRY(OciLayout::Open(args[1]));
    ImageRef ref = LAZYFS_TRY(ParseDockerRef(args[3]));
    if (insecure) options.insecure_registries.push_back(ref.host);
    return PushImage(layout, args[2], ref, options, [](const std::string& line) { std::cerr << line << "\n"; });
  }
  return InvalidArgument("bad command or argument count: " + command);
}

}  // namespace
}  // namespace lazyfs::fetch

int main(int argc, char** argv) {
  using namespace lazyfs;
  using namespace lazyfs::fetch;
  RegistryOptions options;
  std::string platform = "linux/amd64";
  bool insecure = false;
  std::optional<std::string> user;
  std::optional<std::string> password;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    if (!args.empty()) {
      args.push_back(arg);
    } else if (arg == "--insecure") {
      insecure = true;
    } else if (arg == "--no-auth-files") {
      options.search_auth_files = false;
    } else if (arg == "--debug") {
      SetLogLevel(LogLevel::kDebug);
    } else if (arg == "--ca-file" || arg == "--user" || arg == "--password" || arg == "--mirror" ||
               arg == "--platform" || arg == "--attempts") {
      std::optional<std::string> v = value();
      if (!v) return fetch::Usage();
      if (arg == "--ca-file") options.ca_file = *v;
      if (arg == "--user") user = *v;
      if (arg == "--password") password = *v;
      if (arg == "--mirror") options.mirrors.push_back(*v);
      if (arg == "--platform") platform = *v;
      if (arg == "--attempts") options.retry.max_attempts = std::stoi(*v);
    } else if (arg.starts_with("--")) {
      return fetch::Usage();
    } else {
      args.push_back(arg);
    }
  }
  if (args.empty() || user.has_value() != password.has_value()) return fetch::Usage();
  if (user) options.credentials = Credentials{*user, *password};
  Status status = fetch::Run(args, options, platform, insecure);
  if (!status) {
    std::cerr << "error: " << status.error().ToString() << "\n";
    return 1;
  }
  return 0;
}
