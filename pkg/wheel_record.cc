#include "pkg/wheel_record.h"

#include <charconv>

#include "common/base64.h"

namespace lazyfs::pkg {
namespace {

std::string QuotedField(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Result<std::vector<RecordRow>> ParseRecord(std::string_view text, std::string_view where) {
  std::vector<RecordRow> rows;
  size_t line = 1;
  size_t at = 0;
  while (at < text.size()) {
    std::vector<std::string> fields(1);
    bool quoted = false;
    size_t row_line = line;
    for (; at < text.size(); ++at) {
      char c = text[at];
      if (quoted) {
        if (c == '"' && at + 1 < text.size() && text[at + 1] == '"') {
          fields.back() += '"';
          ++at;
        } else if (c == '"') {
          quoted = false;
        } else {
          if (c == '\n') ++line;
          fields.back() += c;
        }
      } else if (c == '"' && fields.back().empty()) {
        quoted = true;
      } else if (c == ',') {
        fields.emplace_back();
      } else if (c == '\n' || c == '\r') {
        if (c == '\r' && at + 1 < text.size() && text[at + 1] == '\n') ++at;
        ++at;
        ++line;
        break;
      } else {
        fields.back() += c;
      }
    }
    if (quoted) return Corrupt(std::string(where) + ":" + std::to_string(row_line) + ": unterminated quote");
    if (fields.size() == 1 && fields[0].empty()) continue;  // a blank line
    if (fields.size() != 3) {
      return Corrupt(std::string(where) + ":" + std::to_string(row_line) + ": a row of " +
                     std::to_string(fields.size()) + " fields, RECORD rows have 3 (path,hash,size)");
    }
    RecordRow row{fields[0], fields[1], std::nullopt};
    if (!fields[2].empty()) {
      uint64_t size = 0;
      auto [end, ec] = std::from_chars(fields[2].data(), fields[2].data() + fields[2].size(), size);
      if (ec != std::errc() || end != fields[2].data() + fields[2].size()) {
        return Corrupt(std::string(where) + ":" + std::to_string(row_line) + ": size '" + fields[2] + "' is not a number");
      }
      row.size = size;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string RecordHash(std::string_view data) { return RecordHash(Sha256Of(data)); }

std::string RecordHash(const Sha256Digest& digest) {
  std::string b64 = Base64Encode(digest.Raw());
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  for (char& c : b64) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return "sha256=" + b64;
}

std::string RecordText(const std::vector<RecordRow>& rows) {
  std::string out;
  for (const RecordRow& row : rows) {
    out += QuotedField(row.path) + "," + QuotedField(row.hash) + "," + (row.size ? std::to_string(*row.size) : "") + "\n";
  }
  return out;
}

}  // namespace lazyfs::pkg
