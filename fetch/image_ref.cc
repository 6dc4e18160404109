// Parsing and printing image references in skopeo's transport syntax (see image_ref.h).
//
// The grammar follows the distribution reference rules (lowercase path components, tag grammar) so a
// reference that parses here is one a registry accepts; malformed input gets an error saying which part is
// wrong and what was expected.
//
// Thread safety: free functions on values, reentrant.
#include "fetch/image_ref.h"

#include <fmt/format.h>

#include <charconv>

namespace lazyfs::fetch {
namespace {

constexpr std::string_view kOciPrefix = "oci:";
constexpr std::string_view kDockerArchivePrefix = "docker-archive:";
constexpr std::string_view kDockerPrefix = "docker://";

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

// Tag grammar of the distribution spec: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
bool ValidTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  if (!IsAlnum(tag[0]) && tag[0] != '_') return false;
  for (char c : tag) {
    if (!IsAlnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

// One path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*.
bool ValidComponent(std::string_view c) {
  if (c.empty() || !IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (IsLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < c.size() && !IsLowerAlnum(c[i])) ++i;
    std::string_view sep = c.substr(start, i - start);
    bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (sep != "." && sep != "_" && sep != "__" && !dashes) return false;
  }
  return true;
}

Status ValidateRepository(std::string_view repo, std::string_view text) {
  if (repo.empty()) return InvalidArgument(fmt::format("image reference \"{}\": missing repository name", text));
  if (repo.size() > 255) return InvalidArgument(fmt::format("image reference \"{}\": repository name too long", text));
  for (size_t start = 0;;) {
    size_t slash = repo.find('/', start);
    std::string_view component = repo.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (!ValidComponent(component)) {
      bool upper = false;
      for (char c : component) upper |= (c >= 'A' && c <= 'Z');
      return InvalidArgument(fmt::format(
          "image reference \"{}\": repository path component \"{}\" is invalid{}", text, component,
          upper ? " (repository names must be lowercase)" : " (allowed: a-z 0-9 separated by '.', '_', '__' or '-')"));
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Ok();
}

// HOST[:PORT], where HOST is a DNS name, an IPv4 address or a bracketed IPv6 address.
Status ValidateHost(std::string_view host, std::string_view text) {
  std::string_view name = host;
  std::string_view port;
  if (host.starts_with('[')) {
    size_t close = host.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgument(fmt::format("image reference \"{}\": unterminated IPv6 address in host", text));
    }
    name = host.substr(0, close + 1);
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return InvalidArgument(fmt::format("image reference \"{}\": bad host \"{}\"", text, host));
      port = rest.substr(1);
      if (port.empty()) return InvalidArgument(fmt::format("image reference \"{}\": empty port in \"{}\"", text, host));
    }
  } else {
    size_t colon = host.find(':');
    if (colon != std::string_view::npos) {
      name = host.substr(0, colon);
      port = host.substr(colon + 1);
      if (port.empty()) return InvalidArgument(fmt::format("image reference \"{}\": empty port in \"{}\"", text, host));
    }
    if (name.empty()) return InvalidArgument(fmt::format("image reference \"{}\": empty registry host", text));
    for (char c : name) {
      if (!IsAlnum(c) && c != '.' && c != '-') {
        return InvalidArgument(fmt::format("image reference \"{}\": invalid character '{}' in host \"{}\"", text, c, host));
      }
    }
  }
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return InvalidArgument(fmt::format("image reference \"{}\": port \"{}\" is not a number in 1..65535", text, port));
    }
  }
  return Ok();
}

Result<ImageRef> ParseOci(std::string_view text, std::string_view rest) {
  ImageRef ref;
  ref.transport = ImageRef::Transport::kOciLayout;
  // Split at the last ':' only when what follows cannot be part of a path (has no '/'), so "oci:/a:b/c"
  // is the directory "/a:b/c" while "oci:/a/b:v1" is "/a/b" tagged v1.
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && rest.find('/', colon) == std::string_view::npos) {
    ref.path = std::string(rest.substr(0, colon));
    ref.tag = std::string(rest.substr(colon + 1));
    if (!ValidTag(ref.tag)) {
      return InvalidArgument(fmt::format("image reference \"{}\": tag \"{}\" is invalid (expected [A-Za-z0-9_][A-Za-z0-9_.-]*, "
                                         "at most 128 characters)", text, ref.tag));
    }
  } else {
    ref.path = std::string(rest);
  }
  if (ref.path.empty()) return InvalidArgument(fmt::format("image reference \"{}\": missing layout directory (oci:DIR[:TAG])", text));
  return ref;
}

Result<ImageRef> ParseDocker(std::string_view text, std::string_view rest) {
  ImageRef ref;
  ref.transport = ImageRef::Transport::kDocker;
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return InvalidArgument(fmt::format(
        "image reference \"{}\": expected docker://HOST[:PORT]/NAME[:TAG|@sha256:HEX] (a registry host is required)", text));
  }
  std::string_view host = rest.substr(0, slash);
  if (host.find('.') == std::string_view::npos && host.find(':') == std::string_view::npos && host != "localhost") {
    return InvalidArgument(fmt::format(
        "image reference \"{}\": \"{}\" is not a registry host (a host contains '.' or ':' or is localhost; "
        "short names are not expanded: write e.g. docker://docker.io/library/NAME)", text, host));
  }
  LAZYFS_TRY(ValidateHost(host, text));
  ref.host = std::string(host);

  std::string_view name = rest.substr(slash + 1);
  if (size_t at = name.find('@'); at != std::string_view::npos) {
    std::string_view digest = name.substr(at + 1);
    auto parsed = Sha256Digest::Parse(digest);
    if (!parsed) {
      return InvalidArgument(fmt::format("image reference \"{}\": digest \"{}\" is not sha256:<64 lowercase hex>", text, digest));
    }
    ref.digest = *parsed;
    name = name.substr(0, at);
  }
  // A tag is after the last ':' that follows the last '/'.
  size_t last_slash = name.rfind('/');
  size_t colon = name.find(':', last_slash == std::string_view::npos ? 0 : last_slash);
  if (colon != std::string_view::npos) {
    std::string_view tag = name.substr(colon + 1);
    if (!ValidTag(tag)) {
      return InvalidArgument(fmt::format("image reference \"{}\": tag \"{}\" is invalid (expected [A-Za-z0-9_][A-Za-z0-9_.-]*, "
                                         "at most 128 characters)", text, tag));
    }
    if (ref.digest) {
      return InvalidArgument(fmt::format("image reference \"{}\": give either a tag or a digest, not both", text));
    }
    ref.tag = std::string(tag);
    name = name.substr(0, colon);
  }
  LAZYFS_TRY(ValidateRepository(name, text));
  ref.repository = std::string(name);
  // Docker Hub's official images live under library/ (what `docker pull ubuntu` means).
  if (ref.host == "docker.io" && ref.repository.find('/') == std::string::npos) ref.repository = "library/" + ref.repository;
  if (!ref.digest && ref.tag.empty()) ref.tag = "latest";
  return ref;
}

}  // namespace

Result<ImageRef> ImageRef::Parse(std::string_view text) {
  if (text.starts_with(kOciPrefix)) return ParseOci(text, text.substr(kOciPrefix.size()));
  if (text.starts_with(kDockerArchivePrefix)) {
    ImageRef ref;
    ref.transport = Transport::kDockerArchive;
    ref.path = std::string(text.substr(kDockerArchivePrefix.size()));
    if (ref.path.empty()) return InvalidArgument(fmt::format("image reference \"{}\": missing file (docker-archive:FILE)", text));
    return ref;
  }
  if (text.starts_with(kDockerPrefix)) return ParseDocker(text, text.substr(kDockerPrefix.size()));
  if (text.starts_with("docker:")) {
    return InvalidArgument(fmt::format("image reference \"{}\": the docker transport is written docker://HOST/NAME", text));
  }
  return InvalidArgument(fmt::format(
      "image reference \"{}\": unknown transport (expected oci:DIR[:TAG], docker-archive:FILE or "
      "docker://HOST[:PORT]/NAME[:TAG|@sha256:HEX])", text));
}

std::string ImageRef::ToString() const {
  switch (transport) {
    case Transport::kOciLayout:
      return tag.empty() ? fmt::format("oci:{}", path) : fmt::format("oci:{}:{}", path, tag);
    case Transport::kDockerArchive:
      return fmt::format("docker-archive:{}", path);
    case Transport::kDocker:
      if (digest) return fmt::format("docker://{}/{}@{}", host, repository, digest->ToString());
      return fmt::format("docker://{}/{}:{}", host, repository, tag.empty() ? "latest" : tag);
  }
  return "?";
}

}  // namespace lazyfs::fetch
