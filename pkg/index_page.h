// One project page of a Python package index's "simple" API, parsed into data: the files it lists with
// their URLs, hashes, Requires-Python, yank state and metadata-file hints. Both formats:
//   - PEP 503 HTML (and PEP 691's application/vnd.pypi.simple.v1+html), read with libxml2's HTML parser
//     leniently, since real indexes (and web servers' directory listings) emit sloppy HTML;
//   - PEP 691 JSON (application/vnd.pypi.simple.v1+json), read strictly.
// Also the Accept header that asks for them and the URL of a project's page. Nothing here does I/O: the
// index client (pkg/index_client.h) fetches the page and picks the format from its Content-Type.
//
// Thread safety: values and pure functions; ParseProjectPage may run on several threads at once
// (libxml2 is initialised once, thread-safely, on first use; nothing here calls xmlCleanupParser).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace lazyfs::pkg {

// The largest page ParseProjectPage reads. PyPI's biggest pages are a few MiB; the transport has its own
// cap (IndexClientOptions::max_page_bytes), this one holds for any caller.
inline constexpr size_t kMaxProjectPageBytes = size_t{64} << 20;

struct IndexFile {
  // The file's name. JSON: "filename". HTML: the last path segment of the link's URL, percent-decoded,
  // as pip and uv take it (PEP 503 makes the link text equal to it, but nginx's and Apache's directory
  // listings cut long link texts to "name..>", and PyTorch's index writes "%2B" for "+" in the URL).
  // Never empty; never holds '/' or NUL.
  std::string filename;
  std::string url;                             // absolute, fragment removed
  std::map<std::string, std::string> hashes;   // "sha256" -> lower-case hex (see below)
  std::optional<std::string> requires_python;  // raw specifier text; nullopt when absent or empty
  std::optional<std::string> yanked;           // nullopt: not yanked; "" or the reason (PEP 592)
  bool has_metadata = false;                   // PEP 658/714 metadata file at url + ".metadata"
  std::map<std::string, std::string> metadata_hashes;  // of that metadata file, as `hashes`
  std::optional<uint64_t> size;                // bytes (PEP 700; JSON only)
};

struct ProjectPage {
  // JSON: the page's "name" (checked to be `project` under PEP 503 normalisation). HTML has no name
  // field, so there it is CanonicalName(project).
  std::string name;
  std::vector<IndexFile> files;  // page order
};

enum class PageFormat { kHtml, kJson };

// The format a Content-Type header value announces: application/vnd.pypi.simple.v1+json is kJson;
// application/vnd.pypi.simple.v1+html and text/html are kHtml. Case-insensitive, parameters (charset)
// ignored. nullopt for anything else (the caller refuses the page, naming the type).
std::optional<PageFormat> PageFormatOf(std::string_view content_type);

// The Accept header for project pages, as pip sends it: PEP 691 JSON preferred, then PEP 691 HTML, then
// legacy text/html. A static string.
std::string_view IndexAccept();

// The URL of `project`'s page on the index at `index_url` ("https://pypi.org/simple" with or without a
// trailing slash): index + "/" + CanonicalName(project) + "/". `project` should be a valid name
// (IsValidName): nothing is percent-encoded, and `index_url` should have no query or fragment.
std::string ProjectPageUrl(std::string_view index_url, std::string_view project);

// Parses `body`, served at `page_url` (the URL that answered, after redirects: relative links resolve
// against it) for `project` (any spelling; for messages and the JSON name check).
//
// Hashes: names lower-cased; only hashlib's fixed-size algorithms are kept (md5, sha1, sha224, sha256,
// sha384, sha512, sha512_224, sha512_256, sha3_*, blake2b, blake2s), others (and an HTML link's "#egg="
// fragment) are ignored. A kept hash must be hex of its algorithm's length (sha256: 64), else the page
// is refused (a file whose hash is wrong can never be verified, and one silently left without a hash
// could be installed unverified). Hex is stored lower-case.
//
// HTML: every <a> with a non-empty href is a file (the caller filters by filename), in document order,
// except links whose URL libcurl does not resolve (mailto:, javascript:) and links with no file
// name (a path ending in '/', such as a listing's "../"): those are skipped. The first <base href>
// (resolved against `page_url`) is the base for the rest. The fragment of an href gives the hashes
// (#sha256=HEX, several joined by '&'). data-yanked present, even empty, means yanked.
// data-core-metadata (PEP 714), or data-dist-info-metadata when that is absent or empty: "true" means a
// metadata file without a hash, "<alg>=<hex>" one with that hash, anything else ("false") none. A body
// with no elements at all is a page without files.
//
// JSON: meta.api-version must be "1.<minor>" (any minor); name, files[], and in each file filename, url
// (relative allowed) and hashes are required, with the types PEP 691 gives them. yanked is a bool or a
// reason; core-metadata (or, when absent, dist-info-metadata) a bool or a hash map; size (PEP 700) an
// unsigned integer. null counts as absent for optional keys. Other keys (upload-time, versions, ...)
// are not read.
//
// Errors name the project and the page URL (without credentials or query) and, for a file, its index
// (JSON) or name (HTML):
//   kInvalidArgument: `page_url` is not an absolute URL.
//   kCorrupt: body larger than kMaxProjectPageBytes; a bad hash; a <base href> that does not resolve;
//     HTML holding a NUL byte (libxml2 would stop there), or HTML libxml2 stops reading before its end;
//     JSON that does not parse, lacks a required key, has a key of the wrong type, a url that does not
//     resolve, a filename holding '/' or NUL, or names another project.
//   kInternal: libxml2 could not allocate its parser, or memory ran out while reading the HTML.
//   kUnsupported: a JSON api-version whose major version is not 1 (the message gives it).
Result<ProjectPage> ParseProjectPage(std::string_view body, PageFormat format, std::string_view page_url,
                                     std::string_view project);

}  // namespace lazyfs::pkg
