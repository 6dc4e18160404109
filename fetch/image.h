// The OCI image model lazyfs needs: descriptors, manifests, image indexes and configs, parsed from JSON
// with nlohmann-json and checked for the fields we rely on.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/result.h"

namespace lazyfs::fetch {

inline constexpr std::string_view kMediaTypeOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kMediaTypeOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kMediaTypeOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kMediaTypeOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kMediaTypeOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kMediaTypeOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kMediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kMediaTypeDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kMediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";

// eStargz layer annotations (see DESIGN.md).
inline constexpr std::string_view kAnnotationTocDigest = "containerd.io/snapshot/stargz/toc.digest";
inline constexpr std::string_view kAnnotationUncompressedSize = "io.containers.estargz.uncompressed-size";
// Ours (lazyfs convert): where the TOC member starts, so a mount reads footer and TOC in one request
// whatever the TOC's size. A hint only: the footer says the same or the reader ignores it.
inline constexpr std::string_view kAnnotationTocOffset = "dev.lazyfs.estargz.toc-offset";
inline constexpr std::string_view kAnnotationRefName = "org.opencontainers.image.ref.name";

// Upper bounds for JSON documents we read whole, so a hostile registry cannot make us allocate gigabytes.
inline constexpr uint64_t kMaxManifestSize = 4 << 20;
inline constexpr uint64_t kMaxConfigSize = 16 << 20;

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
};

struct Descriptor {
  std::string media_type;
  Sha256Digest digest;
  uint64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;  // only in image indexes

  std::optional<std::string> Annotation(std::string_view key) const;
};

enum class LayerCompression { kNone, kGzip, kZstd };

// Maps a layer media type (OCI or Docker) to its compression; kUnsupported for anything else.
Result<LayerCompression> LayerCompressionOf(std::string_view media_type);

struct Manifest {
  std::string media_type;  // may be empty: eStargz tools omit it
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
};

struct ImageIndex {
  std::vector<Descriptor> manifests;
};

// What a manifest-typed blob turned out to be.
bool IsIndexMediaType(std::string_view media_type);
// The media type of a manifest or index document: its top-level mediaType, or, when absent (eStargz
// tools omit it), inferred from its fields ("manifests" -> OCI index, otherwise OCI manifest).
// kCorrupt if `json` is not a JSON object.
Result<std::string> SniffMediaType(std::string_view json);

Result<Manifest> ParseManifest(std::string_view json);
Result<ImageIndex> ParseImageIndex(std::string_view json);
// Chooses the manifest for `platform` ("linux/amd64", "linux/arm64/v8") from an index.
Result<Descriptor> SelectPlatform(const ImageIndex& index, std::string_view platform);

Result<Descriptor> ParseDescriptor(std::string_view json);
std::string DescriptorToJson(const Descriptor& descriptor);
std::string ManifestToJson(const Manifest& manifest);

}  // namespace lazyfs::fetch
