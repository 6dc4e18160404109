#include "tools/pkg_transport.h"

#include <cstdlib>
#include <filesystem>

namespace lazyfs::tools {
namespace {

std::string NetrcFile(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("NETRC"); env && *env) return env;
  if (const char* home = std::getenv("HOME"); home && *home) {
    std::string path = std::string(home) + "/.netrc";
    if (std::filesystem::exists(path)) return path;
  }
  return "";
}

}  // namespace

Result<std::shared_ptr<fetch::HttpTransport>> PkgTransport(const std::string& ca_file, const std::string& netrc_flag) {
  fetch::CurlTransportOptions options;
  options.ca_file = ca_file;
  options.netrc_file = NetrcFile(netrc_flag);
  return fetch::NewCurlTransport(options);
}

}  // namespace lazyfs::tools
