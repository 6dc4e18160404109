// The HTTP transport every `lazyfs pkg` command talks to indexes with: --ca-file, and credentials from
// --netrc, else $NETRC, else ~/.netrc when it exists (plus any user:password in the URLs themselves).
//
// Thread safety: the transport is thread-safe; this is a factory.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "fetch/http_transport.h"

namespace lazyfs::tools {

Result<std::shared_ptr<fetch::HttpTransport>> PkgTransport(const std::string& ca_file, const std::string& netrc_flag);

}  // namespace lazyfs::tools
