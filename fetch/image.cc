// Parsing and emitting OCI / Docker schema2 manifests, image indexes and descriptors (nlohmann-json).
//
// Every byte parsed here may come from a hostile registry, so nothing is trusted: each field we rely on is
// type-checked, and nlohmann exceptions are caught at the parse boundary (the public functions) and become
// kCorrupt. Fields we do not use are ignored, never rejected, so newer spec versions still parse.
//
// Thread safety: free functions on values, reentrant.
#include "fetch/image.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <array>
#include <utility>

namespace lazyfs::fetch {
namespace {

using nlohmann::json;

constexpr std::string_view kMediaTypeDockerConfig = "application/vnd.docker.container.image.v1+json";
constexpr std::string_view kMediaTypeDockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
constexpr std::string_view kMediaTypeDockerForeignLayerGzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
constexpr std::string_view kMediaTypeOciNondistLayer = "application/vnd.oci.image.layer.nondistributable.v1.tar";
constexpr std::string_view kMediaTypeOciNondistLayerGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
constexpr std::string_view kMediaTypeOciNondistLayerZstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

// Parses text into a json value; syntax errors become kCorrupt naming `what`.
Result<json> ParseJson(std::string_view text, std::string_view what) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return Corrupt(fmt::format("{}: not valid JSON: {}", what, e.what()));
  }
}

// Returns `obj[key]` as a string; nullopt if absent; kCorrupt if present with another type.
Result<std::optional<std::string>> OptionalString(const json& obj, const char* key, std::string_view where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return Corrupt(fmt::format("{}: \"{}\" must be a string, got {}", where, key, it->type_name()));
  return std::optional<std::string>(it->get<std::string>());
}

Result<std::map<std::string, std::string>> ParseAnnotations(const json& obj, std::string_view where) {
  std::map<std::string, std::string> out;
  auto it = obj.find("annotations");
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_object()) {
    return Corrupt(fmt::format("{}: \"annotations\" must be an object, got {}", where, it->type_name()));
  }
  for (const auto& [key, value] : it->items()) {
    if (!value.is_string()) {
      return Corrupt(fmt::format("{}: annotation \"{}\" must be a string, got {}", where, key, value.type_name()));
    }
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

Result<Platform> ParsePlatform(const json& value, std::string_view where) {
  if (!value.is_object()) return Corrupt(fmt::format("{}: \"platform\" must be an object", where));
  Platform p;
  auto os = LAZYFS_TRY(OptionalString(value, "os", where));
  auto arch = LAZYFS_TRY(OptionalString(value, "architecture", where));
  auto variant = LAZYFS_TRY(OptionalString(value, "variant", where));
  if (!os || !arch) return Corrupt(fmt::format("{}: platform needs \"os\" and \"architecture\"", where));
  p.os = *os;
  p.architecture = *arch;
  p.variant = variant.value_or("");
  return p;
}

Result<Descriptor> DescriptorFromJson(const json& value, std::string_view where) {
  if (!value.is_object()) return Corrupt(fmt::format("{}: descriptor must be an object, got {}", where, value.type_name()));
  Descriptor d;
  d.media_type = LAZYFS_TRY(OptionalString(value, "mediaType", where)).value_or("");

  auto digest_text = LAZYFS_TRY(OptionalString(value, "digest", where));
  if (!digest_text) return Corrupt(fmt::format("{}: descriptor has no \"digest\"", where));
  auto digest = Sha256Digest::Parse(*digest_text);
  if (!digest) {
    // Other algorithms are well-formed but not something we can verify; say so rather than "corrupt".
    if (digest_text->starts_with("sha512:") || digest_text->starts_with("blake3:")) {
      return Unsupported(fmt::format("{}: digest \"{}\": only sha256 digests are supported", where, *digest_text));
    }
    return Corrupt(fmt::format("{}: digest \"{}\" is not sha256:<64 lowercase hex>", where, *digest_text));
  }
  d.digest = *digest;

  auto size = value.find("size");
  if (size == value.end()) return Corrupt(fmt::format("{}: descriptor has no \"size\"", where));
  if (size->is_number_unsigned()) {
    d.size = size->get<uint64_t>();
  } else if (size->is_number_integer()) {
    return Corrupt(fmt::format("{}: size {} is negative", where, size->get<int64_t>()));
  } else {
    return Corrupt(fmt::format("{}: size must be a non-negative integer, got {}", where, size->dump()));
  }

  d.annotations = LAZYFS_TRY(ParseAnnotations(value, where));
  if (auto platform = value.find("platform"); platform != value.end() && !platform->is_null()) {
    d.platform = LAZYFS_TRY(ParsePlatform(*platform, where));
  }
  return d;
}

// Checks "schemaVersion" when present: 2 is the only version with descriptors (schema1 is long dead).
Status CheckSchemaVersion(const json& obj, std::string_view what) {
  auto it = obj.find("schemaVersion");
  if (it == obj.end()) return Ok();
  if (!it->is_number_integer()) return Corrupt(fmt::format("{}: \"schemaVersion\" must be an integer", what));
  if (it->get<int64_t>() != 2) {
    return Unsupported(fmt::format("{}: schemaVersion {} is not supported (only 2)", what, it->get<int64_t>()));
  }
  return Ok();
}

Result<Manifest> ManifestFromJson(const json& doc) {
  constexpr std::string_view kWhat = "manifest";
  if (!doc.is_object()) return Corrupt(fmt::format("manifest: must be a JSON object, got {}", doc.type_name()));
  LAZYFS_TRY(CheckSchemaVersion(doc, kWhat));
  Manifest m;
  m.media_type = LAZYFS_TRY(OptionalString(doc, "mediaType", kWhat)).value_or("");
  if (IsIndexMediaType(m.media_type)) {
    return Corrupt(fmt::format("manifest: is an image index ({}), not a manifest", m.media_type));
  }
  if (!m.media_type.empty() && m.media_type != kMediaTypeOciManifest && m.media_type != kMediaTypeDockerManifest) {
    return Unsupported(fmt::format("manifest: media type \"{}\" is not an image manifest", m.media_type));
  }
  auto config = doc.find("config");
  if (config == doc.end()) return Corrupt("manifest: has no \"config\"");
  m.config = LAZYFS_TRY(DescriptorFromJson(*config, "manifest config"));

  auto layers = doc.find("layers");
  if (layers == doc.end()) return Corrupt("manifest: has no \"layers\"");
  if (!layers->is_array()) return Corrupt(fmt::format("manifest: \"layers\" must be an array, got {}", layers->type_name()));
  m.layers.reserve(layers->size());
  for (size_t i = 0; i < layers->size(); ++i) {
    m.layers.push_back(LAZYFS_TRY(DescriptorFromJson((*layers)[i], fmt::format("manifest layer {}", i))));
  }
  m.annotations = LAZYFS_TRY(ParseAnnotations(doc, kWhat));
  return m;
}

Result<ImageIndex> IndexFromJson(const json& doc) {
  constexpr std::string_view kWhat = "image index";
  if (!doc.is_object()) return Corrupt(fmt::format("image index: must be a JSON object, got {}", doc.type_name()));
  LAZYFS_TRY(CheckSchemaVersion(doc, kWhat));
  auto media_type = LAZYFS_TRY(OptionalString(doc, "mediaType", kWhat));
  if (media_type && !media_type->empty() && !IsIndexMediaType(*media_type)) {
    return Corrupt(fmt::format("image index: media type \"{}\" is not an index", *media_type));
  }
  auto manifests = doc.find("manifests");
  if (manifests == doc.end()) return Corrupt("image index: has no \"manifests\"");
  if (!manifests->is_array()) {
    return Corrupt(fmt::format("image index: \"manifests\" must be an array, got {}", manifests->type_name()));
  }
  ImageIndex index;
  index.manifests.reserve(manifests->size());
  for (size_t i = 0; i < manifests->size(); ++i) {
    index.manifests.push_back(LAZYFS_TRY(DescriptorFromJson((*manifests)[i], fmt::format("index entry {}", i))));
  }
  return index;
}

// Docker media types have OCI equivalents with identical content; an OCI manifest should name the OCI ones.
std::string ToOciMediaType(const std::string& media_type) {
  if (media_type == kMediaTypeDockerConfig) return std::string(kMediaTypeOciConfig);
  if (media_type == kMediaTypeDockerLayerGzip) return std::string(kMediaTypeOciLayerGzip);
  if (media_type == kMediaTypeDockerLayer) return std::string(kMediaTypeOciLayer);
  if (media_type == kMediaTypeDockerForeignLayerGzip) return std::string(kMediaTypeOciNondistLayerGzip);
  if (media_type == kMediaTypeDockerManifest) return std::string(kMediaTypeOciManifest);
  if (media_type == kMediaTypeDockerManifestList) return std::string(kMediaTypeOciIndex);
  return media_type;
}

nlohmann::ordered_json DescriptorJson(const Descriptor& d, bool oci_media_types) {
  nlohmann::ordered_json out;
  out["mediaType"] = oci_media_types ? ToOciMediaType(d.media_type) : d.media_type;
  out["digest"] = d.digest.ToString();
  out["size"] = d.size;
  if (!d.annotations.empty()) out["annotations"] = d.annotations;
  if (d.platform) {
    nlohmann::ordered_json p;
    p["architecture"] = d.platform->architecture;
    p["os"] = d.platform->os;
    if (!d.platform->variant.empty()) p["variant"] = d.platform->variant;
    out["platform"] = std::move(p);
  }
  return out;
}

// Normalizes architecture spellings the way container runtimes do, so "linux/x86_64" finds amd64 images.
std::string NormalizeArch(std::string_view arch) {
  if (arch == "x86_64" || arch == "x86-64") return "amd64";
  if (arch == "aarch64") return "arm64";
  return std::string(arch);
}

// arm64 images usually carry no variant, which means v8.
std::string NormalizeVariant(std::string_view arch, std::string_view variant) {
  if (arch == "arm64" && variant == "v8") return "";
  return std::string(variant);
}

std::string PlatformString(const Platform& p) {
  return p.variant.empty() ? p.os + "/" + p.architecture : p.os + "/" + p.architecture + "/" + p.variant;
}

}  // namespace

std::optional<std::string> Descriptor::Annotation(std::string_view key) const {
  auto it = annotations.find(std::string(key));
  if (it == annotations.end()) return std::nullopt;
  return it->second;
}

Result<LayerCompression> LayerCompressionOf(std::string_view media_type) {
  static constexpr std::array<std::pair<std::string_view, LayerCompression>, 10> kTypes{{
      {kMediaTypeOciLayer, LayerCompression::kNone},
      {kMediaTypeOciLayerGzip, LayerCompression::kGzip},
      {kMediaTypeOciLayerZstd, LayerCompression::kZstd},
      {kMediaTypeOciNondistLayer, LayerCompression::kNone},
      {kMediaTypeOciNondistLayerGzip, LayerCompression::kGzip},
      {kMediaTypeOciNondistLayerZstd, LayerCompression::kZstd},
      {kMediaTypeDockerLayerGzip, LayerCompression::kGzip},
      {kMediaTypeDockerLayer, LayerCompression::kNone},
      {kMediaTypeDockerForeignLayerGzip, LayerCompression::kGzip},
      {"application/vnd.docker.image.rootfs.diff.tar.zstd", LayerCompression::kZstd},
  }};
  for (const auto& [type, compression] : kTypes) {
    if (type == media_type) return compression;
  }
  return Unsupported(fmt::format("layer media type \"{}\" is not a tar layer we can read", media_type));
}

bool IsIndexMediaType(std::string_view media_type) {
  return media_type == kMediaTypeOciIndex || media_type == kMediaTypeDockerManifestList;
}

Result<std::string> SniffMediaType(std::string_view text) {
  json doc = LAZYFS_TRY(ParseJson(text, "manifest"));
  if (!doc.is_object()) return Corrupt(fmt::format("manifest: must be a JSON object, got {}", doc.type_name()));
  auto media_type = LAZYFS_TRY(OptionalString(doc, "mediaType", "manifest"));
  if (media_type && !media_type->empty()) return *media_type;
  if (doc.contains("manifests") && !doc.contains("layers")) return std::string(kMediaTypeOciIndex);
  return std::string(kMediaTypeOciManifest);
}

Result<Manifest> ParseManifest(std::string_view text) {
  json doc = LAZYFS_TRY(ParseJson(text, "manifest"));
  try {
    return ManifestFromJson(doc);
  } catch (const json::exception& e) {  // defensive: the checks above should leave nothing to throw
    return Corrupt(fmt::format("manifest: {}", e.what()));
  }
}

Result<ImageIndex> ParseImageIndex(std::string_view text) {
  json doc = LAZYFS_TRY(ParseJson(text, "image index"));
  try {
    return IndexFromJson(doc);
  } catch (const json::exception& e) {
    return Corrupt(fmt::format("image index: {}", e.what()));
  }
}

Result<Descriptor> ParseDescriptor(std::string_view text) {
  json doc = LAZYFS_TRY(ParseJson(text, "descriptor"));
  try {
    return DescriptorFromJson(doc, "descriptor");
  } catch (const json::exception& e) {
    return Corrupt(fmt::format("descriptor: {}", e.what()));
  }
}

Result<Descriptor> SelectPlatform(const ImageIndex& index, std::string_view platform) {
  // "os/arch[/variant]"
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    size_t slash = platform.find('/', start);
    parts.emplace_back(platform.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty() ||
      (parts.size() == 3 && parts[2].empty())) {
    return InvalidArgument(fmt::format("platform \"{}\" is not OS/ARCH[/VARIANT] (e.g. linux/amd64)", platform));
  }
  std::string want_os = parts[0];
  std::string want_arch = NormalizeArch(parts[1]);
  std::string want_variant = parts.size() == 3 ? NormalizeVariant(want_arch, parts[2]) : "";
  bool variant_given = parts.size() == 3;

  const Descriptor* best = nullptr;
  const Descriptor* untagged_only = nullptr;
  size_t manifests = 0;
  std::string available;
  for (const Descriptor& d : index.manifests) {
    // Nested indexes are not followed; attestation manifests carry platform "unknown/unknown".
    if (IsIndexMediaType(d.media_type)) continue;
    ++manifests;
    if (!d.platform) {
      untagged_only = &d;
      continue;
    }
    if (!available.empty()) available += ", ";
    available += PlatformString(*d.platform);
    if (d.platform->os != want_os || NormalizeArch(d.platform->architecture) != want_arch) continue;
    std::string variant = NormalizeVariant(want_arch, d.platform->variant);
    if (variant == want_variant) return d;  // exact match wins
    // Without a requested variant, any variant of the architecture will do (the first one listed).
    if (!variant_given && best == nullptr) best = &d;
  }
  if (best != nullptr) return *best;
  // An index with a single manifest and no platform (some tools write these) means "this is the image".
  if (manifests == 1 && untagged_only != nullptr) return *untagged_only;
  return NotFound(fmt::format("no manifest for platform {} in image index (available: {})", platform,
                              available.empty() ? "none" : available));
}

std::string DescriptorToJson(const Descriptor& descriptor) {
  // Replace, not throw, on invalid UTF-8: annotations set by callers are not validated anywhere else.
  return DescriptorJson(descriptor, false).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string ManifestToJson(const Manifest& manifest) {
  nlohmann::ordered_json out;
  out["schemaVersion"] = 2;
  out["mediaType"] = kMediaTypeOciManifest;
  out["config"] = DescriptorJson(manifest.config, true);
  auto layers = nlohmann::ordered_json::array();
  for (const Descriptor& layer : manifest.layers) layers.push_back(DescriptorJson(layer, true));
  out["layers"] = std::move(layers);
  if (!manifest.annotations.empty()) out["annotations"] = manifest.annotations;
  return out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace lazyfs::fetch
