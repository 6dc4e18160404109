// Source flags -> fetch::SourceOptions (see source_flags.h).
//
// Thread safety: no shared state.
#include "tools/source_flags.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>

namespace lazyfs::tools {

void AddSourceFlags(CLI::App& cmd, SourceFlags& flags) {
  cmd.add_option("--platform", flags.platform, "platform to pick from a multi-platform image")->capture_default_str();
  // One value per occurrence (repeat the flag), so `--insecure-registry HOST IMAGE` does not swallow IMAGE.
  cmd.add_option("--insecure-registry", flags.insecure_registries,
                 "HOST:PORT of a registry spoken to over plain http (repeatable)")
      ->allow_extra_args(false);
  cmd.add_option("--ca-file", flags.ca_file, "PEM file of a CA to trust for registries")->check(CLI::ExistingFile);
  cmd.add_option("--mirror", flags.mirrors, "mirror base URL tried before the origin, in order (repeatable)")
      ->allow_extra_args(false);
  cmd.add_option("--mirror-tags", flags.mirror_tags,
                 "yes: a mirror may resolve tags; no: tags at the origin only, digests still via mirrors")
      ->check(CLI::IsMember({"yes", "no"}))
      ->capture_default_str();
  // CLI::Range compares, and every comparison with NaN is false: "nan", which CLI11 reads as a double,
  // would pass it. Its lower bound is 1 ms, not 0, because fetch/ counts in milliseconds and takes 0 as
  // "no bound".
  const CLI::Validator finite(
      [](std::string& text) {
        if (std::isfinite(std::strtod(text.c_str(), nullptr))) return std::string();
        return "Value " + text + " is not a finite number";
      },
      "");
  cmd.add_option("--read-timeout", flags.read_timeout_seconds,
                 "seconds after which a read fails with EIO, retries included")
      ->check(finite)
      ->check(CLI::Range(0.001, 86'400.0))
      ->capture_default_str();
  cmd.add_option("--retries", flags.retries, "retries after a failed request to the registry")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
}

std::vector<std::string> SourceFlagArgs(const SourceFlags& flags) {
  std::vector<std::string> args = {"--platform", flags.platform};
  for (const std::string& host : flags.insecure_registries) args.insert(args.end(), {"--insecure-registry", host});
  if (!flags.ca_file.empty()) args.insert(args.end(), {"--ca-file", std::filesystem::absolute(flags.ca_file).string()});
  for (const std::string& mirror : flags.mirrors) args.insert(args.end(), {"--mirror", mirror});
  args.insert(args.end(), {"--mirror-tags", flags.mirror_tags});
  args.insert(args.end(), {"--read-timeout", fmt::format("{}", flags.read_timeout_seconds), "--retries",
                           std::to_string(flags.retries)});
  return args;
}

Result<fetch::SourceOptions> ToSourceOptions(const SourceFlags& flags) {
  fetch::SourceOptions options;
  options.platform = flags.platform;
  for (const std::string& host : flags.insecure_registries) {
    if (host.empty() || host.find_first_of("/@ ") != std::string::npos) {
      return InvalidArgument(fmt::format("--insecure-registry {}: want HOST[:PORT]", host));
    }
  }
  for (const std::string& mirror : flags.mirrors) {
    if (!mirror.starts_with("http://") && !mirror.starts_with("https://")) {
      return InvalidArgument(fmt::format("--mirror {}: want an http:// or https:// URL", mirror));
    }
  }
  if (flags.mirror_tags != "yes" && flags.mirror_tags != "no") {
    return InvalidArgument(fmt::format("--mirror-tags {}: want yes or no", flags.mirror_tags));
  }
  fetch::RegistryOptions& registry = options.registry;
  registry.insecure_registries = flags.insecure_registries;
  // Absolute: the mount daemon changes its directory to / before it opens the source.
  if (!flags.ca_file.empty()) registry.ca_file = std::filesystem::absolute(flags.ca_file).string();
  registry.mirrors = flags.mirrors;
  registry.mirror_tags = flags.mirror_tags == "yes";
  registry.read_timeout = std::chrono::milliseconds(static_cast<int64_t>(flags.read_timeout_seconds * 1000));
  // One attempt per request must fit in the read bound, so no single request may outlast it.
  registry.request_timeout = std::min(registry.request_timeout, registry.read_timeout);
  registry.retry.max_attempts = flags.retries + 1;
  return options;
}

}  // namespace lazyfs::tools
