// Simple-API project pages (see index_page.h): HTML through libxml2's HTML parser, JSON through
// nlohmann::json, URLs through fetch::ResolveUrl, so no HTML, JSON or URL syntax is parsed by hand here.
// What is left is the meaning of the attributes and keys, which the two formats share: hashes, yanked,
// the metadata-file hint.
//
// Owns: nothing beyond one call; ParseHtml's libxml2 parser context lives in an HtmlParser (RAII).
// Thread safety: pure functions. libxml2 2.9 (Debian 12) needs xmlInitParser to have finished once
// before threads parse; InitLibxml does that under C++'s thread-safe static initialisation.
#include "pkg/index_page.h"

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/human_size.h"
#include "fetch/http_transport.h"
#include "fetch/url.h"
#include "pkg/names.h"
#include "pkg/text.h"

namespace lazyfs::pkg {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kJsonContentType = "application/vnd.pypi.simple.v1+json";
constexpr std::string_view kHtmlContentType = "application/vnd.pypi.simple.v1+html";
constexpr std::string_view kLegacyHtmlContentType = "text/html";

// pip's header (pip/_internal/index/collector.py): a server that speaks PEP 691 answers JSON, an older
// one HTML. The q-values only rank; every format listed is one we parse.
constexpr std::string_view kIndexAccept =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";

// RECOVER, NOERROR, NOWARNING: real pages are tag soup (unclosed <a>, stray </td>, unquoted attributes,
// bare '&' in query strings); read what a browser would, and print nothing to stderr. NONET: a page
// never makes the parser fetch anything. IGNORE_ENC with "UTF-8" passed to htmlCtxtReadMemory: the
// bytes are read as UTF-8, as pip decodes pages that come without a charset, not in whatever a <meta>
// claims (libxml2 reads bytes that are not UTF-8 as Latin-1; names on indexes are ASCII). Not HUGE:
// libxml2's limits on the length of names and values stay on. (The tree options, NOBLANKS, COMPACT,
// NODEFDTD, mean nothing here: no tree is built, see ParseHtml.)
constexpr int kHtmlParseOptions =
    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET | HTML_PARSE_IGNORE_ENC;

// How much of a bad value an error message quotes.
constexpr size_t kQuotedValueBytes = 140;

struct XmlDocDeleter {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
using XmlDoc = std::unique_ptr<xmlDoc, XmlDocDeleter>;

struct HtmlParserDeleter {
  void operator()(htmlParserCtxt* parser) const { htmlFreeParserCtxt(parser); }
};
using HtmlParser = std::unique_ptr<htmlParserCtxt, HtmlParserDeleter>;

// xmlInitParser is not reentrant in libxml2 2.9; a function-local static runs it exactly once, and every
// other thread waits until it has.
void InitLibxml() {
  static const bool initialised = [] {
    xmlInitParser();
    return true;
  }();
  (void)initialised;
}

// Hash names hashlib.new() takes without a length, and their digests' hex length. PEP 503 and 691 allow
// any of them; a name not here (shake_*, a typo, "egg" from an "#egg=" fragment) is not a hash we keep.
struct HashAlgorithm {
  std::string_view name;
  size_t hex_digits;
};
constexpr HashAlgorithm kHashAlgorithms[] = {
    {"md5", 32},      {"sha1", 40},       {"sha224", 56},     {"sha256", 64},   {"sha384", 96},
    {"sha512", 128},  {"sha512_224", 56}, {"sha512_256", 64}, {"sha3_224", 56}, {"sha3_256", 64},
    {"sha3_384", 96}, {"sha3_512", 128},  {"blake2b", 128},   {"blake2s", 64},
};

std::optional<size_t> HexDigitsOf(std::string_view algorithm) {
  for (const HashAlgorithm& known : kHashAlgorithms) {
    if (known.name == algorithm) return known.hex_digits;
  }
  return std::nullopt;
}

bool IsHexDigit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

std::string Quote(std::string_view value) {
  if (value.size() <= kQuotedValueBytes) return "\"" + std::string(value) + "\"";
  return "\"" + std::string(value.substr(0, kQuotedValueBytes)) + "...\"";
}

bool IsAsciiSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

std::string_view TrimAsciiSpace(std::string_view s) {
  while (!s.empty() && IsAsciiSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsAsciiSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Adds hash `name`=`value` to `hashes` when `name` is an algorithm we know (names are matched
// lower-cased, as PEP 691 says they should be written). kCorrupt when its value is not hex of the
// algorithm's length: a hash that cannot match must not turn into a file with no hash.
Status AddHash(std::map<std::string, std::string>& hashes, std::string_view name, std::string_view value) {
  std::string algorithm = AsciiLower(name);
  std::optional<size_t> digits = HexDigitsOf(algorithm);
  if (!digits) return Ok();
  bool hex = value.size() == *digits;
  for (char c : value) hex = hex && IsHexDigit(c);
  if (!hex) return Corrupt(fmt::format("{} hash {} is not {} hex digits", algorithm, Quote(value), *digits));
  hashes[algorithm] = AsciiLower(value);
  return Ok();
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// %XX escapes decoded; a '%' not followed by two hex digits is kept as it is (as Python's unquote does).
std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && IsHexDigit(s[i + 1]) && IsHexDigit(s[i + 2])) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The last path segment of an absolute URL without fragment, percent-decoded: "" for a path ending in
// '/'. (libcurl writes every resolved URL with a path, so the last '/' is never the one of "://".)
std::string FileNameOfUrl(std::string_view url) {
  std::string_view path = url.substr(0, url.find('?'));
  size_t slash = path.rfind('/');
  return PercentDecode(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

bool IsUsableFileName(std::string_view name) {
  return !name.empty() && name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

// `url` split at its fragment: {without, fragment} ("" when it has none).
std::pair<std::string_view, std::string_view> SplitFragment(std::string_view url) {
  size_t hash = url.find('#');
  if (hash == std::string_view::npos) return {url, {}};
  return {url.substr(0, hash), url.substr(hash + 1)};
}

std::string Where(std::string_view project, std::string_view page_url) {
  return fmt::format("index page of '{}' at {}", project, fetch::RedactUrl(page_url));
}

// ---- HTML ----------------------------------------------------------------------------------------

std::string_view AsChars(const xmlChar* text) { return reinterpret_cast<const char*>(text); }

// The attributes of one <a> that matter, as libxml2 hands them over: character references decoded, ""
// for an attribute written without a value ("data-yanked"), nullopt when absent.
struct RawLink {
  std::optional<std::string> href;
  std::optional<std::string> requires_python;
  std::optional<std::string> yanked;
  std::optional<std::string> core_metadata;
  std::optional<std::string> dist_info_metadata;
};

// What the SAX callback collects. libxml2 calls it from inside its parser (C frames, which no exception
// may cross), so a failure is kept here and the parser stopped.
struct LinkCollector {
  xmlParserCtxt* parser = nullptr;
  std::optional<std::string> base_href;  // of the first <base> that has one, as HTML says
  std::vector<RawLink> links;            // every <a>, in document order
  std::optional<std::string> failure;
};

// libxml2's HTML parser has lower-cased element and attribute names and dropped repeated attributes
// (the first one stays, as in browsers) before this sees them.
void OnStartElement(void* user_data, const xmlChar* name, const xmlChar** attributes) {
  auto* collector = static_cast<LinkCollector*>(user_data);
  try {
    const std::string_view element = AsChars(name);
    const bool anchor = element == "a";
    if (!anchor && (element != "base" || collector->base_href)) return;
    RawLink link;
    for (size_t i = 0; attributes != nullptr && attributes[i] != nullptr; i += 2) {
      const std::string_view attribute = AsChars(attributes[i]);
      std::optional<std::string>* slot = nullptr;
      if (attribute == "href") {
        slot = &link.href;
      } else if (!anchor) {
        continue;
      } else if (attribute == "data-requires-python") {
        slot = &link.requires_python;
      } else if (attribute == "data-yanked") {
        slot = &link.yanked;
      } else if (attribute == "data-core-metadata") {
        slot = &link.core_metadata;
      } else if (attribute == "data-dist-info-metadata") {
        slot = &link.dist_info_metadata;
      }
      if (slot != nullptr && !*slot) {
        *slot = attributes[i + 1] == nullptr ? std::string() : std::string(AsChars(attributes[i + 1]));
      }
    }
    if (anchor) {
      collector->links.push_back(std::move(link));
    } else if (link.href) {
      collector->base_href = std::move(link.href);
    }
  } catch (const std::exception& e) {
    collector->failure = e.what();
    xmlStopParser(collector->parser);
  }
}

// data-core-metadata / data-dist-info-metadata: "true", "<alg>=<hex>", or something that promises
// nothing (uv's reading; pip would assume a file without a hash, which costs a 404 where there is none).
Status ApplyHtmlMetadata(std::string_view value, IndexFile& file) {
  value = TrimAsciiSpace(value);
  if (value == "true") {
    file.has_metadata = true;
    return Ok();
  }
  size_t eq = value.find('=');
  if (eq == std::string_view::npos || eq == 0) return Ok();
  file.has_metadata = true;
  return AddHash(file.metadata_hashes, value.substr(0, eq), value.substr(eq + 1));
}

// One <a>: nullopt when it is not a usable file link (see index_page.h for which).
Result<std::optional<IndexFile>> ParseLink(RawLink& link, const std::string& base_url) {
  if (!link.href) return std::optional<IndexFile>();
  // Browsers strip surrounding whitespace from URL attributes; sloppy generators leave newlines there.
  auto [reference, fragment] = SplitFragment(TrimAsciiSpace(*link.href));
  if (reference.empty()) return std::optional<IndexFile>();  // "" or "#...": this page, not a file
  Result<std::string> resolved = fetch::ResolveUrl(base_url, reference);
  if (!resolved) return std::optional<IndexFile>();
  IndexFile file;
  file.url = std::string(SplitFragment(*resolved).first);
  file.filename = FileNameOfUrl(file.url);
  if (!IsUsableFileName(file.filename)) return std::optional<IndexFile>();

  auto in_link = [&](Error error) { return std::move(error).Context("link to " + file.filename); };
  // The fragment is "<alg>=<hex>", in the wild sometimes joined with others ("&egg=...").
  while (!fragment.empty()) {
    size_t amp = fragment.find('&');
    std::string_view part = fragment.substr(0, amp);
    fragment = amp == std::string_view::npos ? std::string_view() : fragment.substr(amp + 1);
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    if (Status added = AddHash(file.hashes, part.substr(0, eq), part.substr(eq + 1)); !added) {
      return in_link(std::move(added).error());
    }
  }
  if (link.requires_python && !TrimAsciiSpace(*link.requires_python).empty()) {
    file.requires_python = std::move(link.requires_python);
  }
  file.yanked = std::move(link.yanked);
  // PEP 714: the new name wins; the PEP 658 name is read only when the new one is absent (or empty).
  std::optional<std::string>& metadata =
      link.core_metadata && !link.core_metadata->empty() ? link.core_metadata : link.dist_info_metadata;
  if (metadata) {
    if (Status applied = ApplyHtmlMetadata(*metadata, file); !applied) {
      return in_link(std::move(applied).error().Context("data-core-metadata"));
    }
  }
  return std::optional<IndexFile>(std::move(file));
}

Result<ProjectPage> ParseHtml(std::string_view body, std::string_view page_url, std::string_view project,
                              const std::string& where) {
  ProjectPage page;
  page.name = CanonicalName(project);
  if (body.empty()) return page;
  // libxml2 2.9 takes a NUL for the end of the input and would silently drop every link after it
  // (browsers read on); no index page holds one.
  if (size_t nul = body.find('\0'); nul != std::string_view::npos) {
    return Corrupt(fmt::format("{}: a NUL byte at offset {} (not an HTML page, or a damaged one)", where, nul));
  }

  InitLibxml();
  HtmlParser parser(htmlNewParserCtxt());
  if (!parser || parser->sax == nullptr) return Internal(where + ": libxml2 could not make an HTML parser");
  // SAX, no tree: the parser reports start tags and builds nothing, so memory follows the links, not the
  // page's markup, and the tree builder's depth limit does not apply (past 256 open elements it stops
  // the parse and keeps what it had, which unclosed <li>s or <div>s around each link reach).
  std::memset(parser->sax, 0, sizeof(*parser->sax));
  parser->sax->startElement = OnStartElement;
  LinkCollector collector;
  collector.parser = parser.get();
  parser->userData = &collector;
  // The size fits an int: ParseProjectPage refused anything over kMaxProjectPageBytes. No document comes
  // back without a tree builder; one is freed all the same should it ever come.
  XmlDoc unused(htmlCtxtReadMemory(parser.get(), body.data(), static_cast<int>(body.size()), nullptr, "UTF-8",
                                   kHtmlParseOptions));
  if (collector.failure) return Internal(fmt::format("{}: reading the HTML: {}", where, *collector.failure));
  if (parser->disableSAX != 0) {  // halted (xmlStopParser, out of memory), not finished: recovery never sets it
    const xmlError* error = xmlCtxtGetLastError(parser.get());
    std::string_view why = error != nullptr && error->message != nullptr ? TrimAsciiSpace(error->message) : "";
    return Corrupt(fmt::format("{}: libxml2 stopped reading the HTML: {}", where, why.empty() ? "no reason given" : why));
  }

  std::string base_url(page_url);
  if (collector.base_href && !TrimAsciiSpace(*collector.base_href).empty()) {
    Result<std::string> resolved = fetch::ResolveUrl(page_url, TrimAsciiSpace(*collector.base_href));
    if (!resolved) {
      return Corrupt(fmt::format("{}: <base href={}> does not resolve: {}", where, Quote(*collector.base_href),
                                 resolved.error().message()));
    }
    base_url = std::string(SplitFragment(*resolved).first);
  }

  for (RawLink& link : collector.links) {
    Result<std::optional<IndexFile>> file = ParseLink(link, base_url);
    if (!file) return std::move(file).error().Context(where);
    if (*file) page.files.push_back(std::move(**file));
  }
  return page;
}

// ---- JSON ----------------------------------------------------------------------------------------

// obj[key], or nullptr when absent or null (null is absent for every optional key).
const Json* Find(const Json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Error WrongType(std::string_view key, const Json& value, std::string_view wanted) {
  return Corrupt(fmt::format("\"{}\" is {} {}, not {}", key, value.is_object() || value.is_array() ? "an" : "a",
                             value.type_name(), wanted));
}

Result<std::string> RequiredString(const Json& obj, std::string_view key) {
  const Json* value = Find(obj, key);
  if (value == nullptr) return Corrupt(fmt::format("no \"{}\"", key));
  if (!value->is_string()) return WrongType(key, *value, "a string");
  return value->get<std::string>();
}

// A PEP 691 hash map ({"sha256": "..."}) into `hashes`.
Status AddJsonHashes(const Json& value, std::string_view key, std::map<std::string, std::string>& hashes) {
  if (!value.is_object()) return WrongType(key, value, "an object");
  for (const auto& [name, digest] : value.items()) {
    if (!digest.is_string()) return WrongType(fmt::format("{}.{}", key, name), digest, "a string");
    LAZYFS_TRY(AddHash(hashes, name, digest.get_ref<const std::string&>()));
  }
  return Ok();
}

Result<IndexFile> ParseJsonFile(const Json& entry, std::string_view page_url) {
  if (!entry.is_object()) return Corrupt(fmt::format("is {}, not an object", entry.type_name()));
  IndexFile file;
  file.filename = LAZYFS_TRY(RequiredString(entry, "filename"));
  if (!IsUsableFileName(file.filename)) return Corrupt("\"filename\" is empty or holds '/' or NUL");

  std::string url = LAZYFS_TRY(RequiredString(entry, "url"));
  if (url.empty()) return Corrupt("\"url\" is empty");
  Result<std::string> resolved = fetch::ResolveUrl(page_url, url);
  if (!resolved) return Corrupt("\"url\": " + resolved.error().message());
  file.url = std::string(SplitFragment(*resolved).first);

  const Json* hashes = Find(entry, "hashes");
  if (hashes == nullptr) return Corrupt("no \"hashes\"");
  LAZYFS_TRY(AddJsonHashes(*hashes, "hashes", file.hashes));

  if (const Json* requires_python = Find(entry, "requires-python")) {
    if (!requires_python->is_string()) return WrongType("requires-python", *requires_python, "a string");
    if (!TrimAsciiSpace(requires_python->get_ref<const std::string&>()).empty()) {
      file.requires_python = requires_python->get<std::string>();
    }
  }

  if (const Json* yanked = Find(entry, "yanked")) {
    if (yanked->is_boolean()) {
      if (yanked->get<bool>()) file.yanked = "";
    } else if (yanked->is_string()) {
      file.yanked = yanked->get<std::string>();
    } else {
      return WrongType("yanked", *yanked, "a boolean or a string");
    }
  }

  // PEP 714: "core-metadata", and "dist-info-metadata" (PEP 691's first name) only when it is absent.
  std::string_view metadata_key = "core-metadata";
  const Json* metadata = Find(entry, metadata_key);
  if (metadata == nullptr) {
    metadata_key = "dist-info-metadata";
    metadata = Find(entry, metadata_key);
  }
  if (metadata != nullptr) {
    if (metadata->is_boolean()) {
      file.has_metadata = metadata->get<bool>();
    } else if (metadata->is_object()) {
      file.has_metadata = true;
      LAZYFS_TRY(AddJsonHashes(*metadata, metadata_key, file.metadata_hashes));
    } else {
      return WrongType(metadata_key, *metadata, "a boolean or an object");
    }
  }

  if (const Json* size = Find(entry, "size")) {
    if (!size->is_number_unsigned()) return WrongType("size", *size, "an unsigned integer");
    file.size = size->get<uint64_t>();
  }
  return file;
}

// PEP 629: "<major>.<minor>", both decimal. nullopt for anything else.
std::optional<uint64_t> ApiMajorVersion(std::string_view version) {
  size_t dot = version.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == version.size() || dot > 9) return std::nullopt;
  uint64_t major = 0;
  for (size_t i = 0; i < version.size(); ++i) {
    char c = version[i];
    if (i == dot) continue;
    if (c < '0' || c > '9') return std::nullopt;
    if (i < dot) major = major * 10 + static_cast<uint64_t>(c - '0');
  }
  return major;
}

Result<ProjectPage> ParseJson(std::string_view body, std::string_view page_url, std::string_view project,
                              const std::string& where) {
  Json doc;
  try {
    doc = Json::parse(body.begin(), body.end());
  } catch (const Json::exception& e) {
    return Corrupt(fmt::format("{}: not valid JSON: {}", where, e.what()));
  }
  auto page_error = [&](Error error) { return std::move(error).Context(where); };
  if (!doc.is_object()) return Corrupt(fmt::format("{}: the page is {}, not an object", where, doc.type_name()));

  // The version first: a page of another major version may differ in everything else.
  const Json* meta = Find(doc, "meta");
  if (meta == nullptr) return Corrupt(where + ": no \"meta\"");
  if (!meta->is_object()) return page_error(WrongType("meta", *meta, "an object"));
  Result<std::string> api_version = RequiredString(*meta, "api-version");
  if (!api_version) return page_error(std::move(api_version).error().Context("meta"));
  std::optional<uint64_t> major = ApiMajorVersion(*api_version);
  if (!major) return Corrupt(fmt::format("{}: meta.api-version {} is not <major>.<minor>", where, Quote(*api_version)));
  if (*major != 1) {
    return Unsupported(fmt::format("{}: simple API version {} is not supported (only 1.x)", where, *api_version));
  }

  ProjectPage page;
  Result<std::string> name = RequiredString(doc, "name");
  if (!name) return page_error(std::move(name).error());
  if (CanonicalName(*name) != CanonicalName(project)) {
    return Corrupt(fmt::format("{}: the page is for project {}", where, Quote(*name)));
  }
  page.name = std::move(*name);

  const Json* files = Find(doc, "files");
  if (files == nullptr) return Corrupt(where + ": no \"files\"");
  if (!files->is_array()) return page_error(WrongType("files", *files, "an array"));
  page.files.reserve(files->size());
  for (size_t i = 0; i < files->size(); ++i) {
    const Json& entry = (*files)[i];
    Result<IndexFile> file = ParseJsonFile(entry, page_url);
    if (!file) {
      std::string label = fmt::format("file {}", i);
      if (entry.is_object()) {
        if (const Json* filename = Find(entry, "filename"); filename != nullptr && filename->is_string()) {
          label += " (" + filename->get<std::string>() + ")";
        }
      }
      return page_error(std::move(file).error().Context(label));
    }
    page.files.push_back(std::move(*file));
  }
  return page;
}

}  // namespace

std::optional<PageFormat> PageFormatOf(std::string_view content_type) {
  std::string type = AsciiLower(TrimAsciiSpace(content_type.substr(0, content_type.find(';'))));
  if (type == kJsonContentType) return PageFormat::kJson;
  if (type == kHtmlContentType || type == kLegacyHtmlContentType) return PageFormat::kHtml;
  return std::nullopt;
}

std::string_view IndexAccept() { return kIndexAccept; }

std::string ProjectPageUrl(std::string_view index_url, std::string_view project) {
  std::string url(index_url);
  if (!url.ends_with('/')) url += '/';
  url += CanonicalName(project);
  url += '/';
  return url;
}

Result<ProjectPage> ParseProjectPage(std::string_view body, PageFormat format, std::string_view page_url,
                                     std::string_view project) {
  std::string where = Where(project, page_url);
  if (body.size() > kMaxProjectPageBytes) {
    return Corrupt(fmt::format("{}: {} bytes, more than the {} a project page may have", where, body.size(),
                               HumanSize(kMaxProjectPageBytes)));
  }
  if (Result<std::string> absolute = fetch::ResolveUrl(page_url, page_url); !absolute) {
    return InvalidArgument(where + ": the page URL is not an absolute URL");
  }
  switch (format) {
    case PageFormat::kHtml: return ParseHtml(body, page_url, project, where);
    case PageFormat::kJson: return ParseJson(body, page_url, project, where);
  }
  return Internal(where + ": unknown page format");
}

}  // namespace lazyfs::pkg
