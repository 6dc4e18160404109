#include "fetch/image_ref.h"

#include <doctest/doctest.h>

#include <string>

namespace lazyfs::fetch {
namespace {

const std::string kHex(64, 'e');

TEST_CASE("ImageRef: good references parse into their parts and print back") {
  using T = ImageRef::Transport;
  struct Case {
    std::string text;
    T transport;
    std::string path, host, repository, tag;
    bool has_digest;
    std::string printed;  // ToString; empty means "same as text"
  };
  Case cases[] = {
      {"oci:/srv/images/app", T::kOciLayout, "/srv/images/app", "", "", "", false, ""},
      {"oci:/srv/images/app:v1.2", T::kOciLayout, "/srv/images/app", "", "", "v1.2", false, ""},
      {"oci:relative/dir:latest", T::kOciLayout, "relative/dir", "", "", "latest", false, ""},
      // The last ':' is followed by a '/': part of the directory, not a tag.
      {"oci:/tmp/a:b/c", T::kOciLayout, "/tmp/a:b/c", "", "", "", false, ""},
      {"oci:/tmp/a:b/c:t", T::kOciLayout, "/tmp/a:b/c", "", "", "t", false, ""},
      {"docker-archive:/tmp/app.tar", T::kDockerArchive, "/tmp/app.tar", "", "", "", false, ""},
      {"docker://127.0.0.1:5000/app", T::kDocker, "", "127.0.0.1:5000", "app", "latest", false,
       "docker://127.0.0.1:5000/app:latest"},
      {"docker://localhost/team/app:v1", T::kDocker, "", "localhost", "team/app", "v1", false, ""},
      {"docker://registry.example.com/a/b/c-d_e.f:1.0-rc_1", T::kDocker, "", "registry.example.com", "a/b/c-d_e.f",
       "1.0-rc_1", false, ""},
      {"docker://ghcr.io/org/app@sha256:" + kHex, T::kDocker, "", "ghcr.io", "org/app", "", true, ""},
      {"docker://docker.io/ubuntu:22.04", T::kDocker, "", "docker.io", "library/ubuntu", "22.04", false,
       "docker://docker.io/library/ubuntu:22.04"},
      {"docker://[::1]:5000/app:x", T::kDocker, "", "[::1]:5000", "app", "x", false, ""},
      {"docker://localhost:5000/a__b/c---d:V_1", T::kDocker, "", "localhost:5000", "a__b/c---d", "V_1", false, ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto ref = ImageRef::Parse(c.text);
    REQUIRE(ref);
    CHECK(ref->transport == c.transport);
    CHECK(ref->path == c.path);
    CHECK(ref->host == c.host);
    CHECK(ref->repository == c.repository);
    CHECK(ref->tag == c.tag);
    CHECK(ref->digest.has_value() == c.has_digest);
    CHECK(ref->ToString() == (c.printed.empty() ? c.text : c.printed));
    auto again = ImageRef::Parse(ref->ToString());
    REQUIRE(again);
    CHECK(again->ToString() == ref->ToString());
  }
}

TEST_CASE("ImageRef: malformed references are kInvalidArgument naming the problem") {
  struct Case {
    std::string text;
    const char* mentions;
  };
  Case cases[] = {
      {"", "unknown transport"},
      {"/srv/images/app", "unknown transport"},
      {"ftp://x/y", "unknown transport"},
      {"docker:ubuntu", "docker://"},
      {"oci:", "missing layout directory"},
      {"oci::v1", "missing layout directory"},
      {"oci:/tmp/x:", "tag"},
      {"oci:/tmp/x:bad tag", "tag"},
      {"docker-archive:", "missing file"},
      {"docker://ubuntu", "registry host is required"},
      {"docker://ubuntu/app", "not a registry host"},
      {"docker://registry.io/", "missing repository"},
      {"docker://registry.io/App", "lowercase"},
      {"docker://registry.io/a//b", "component"},
      {"docker://registry.io/a-/b", "component"},
      {"docker://registry.io/a..b", "component"},
      {"docker://registry.io/app:", "tag"},
      {"docker://registry.io/app:-x", "tag"},
      {"docker://registry.io/app:" + std::string(129, 'a'), "tag"},
      {"docker://registry.io/app@sha256:abc", "digest"},
      {"docker://registry.io/app@md5:" + kHex, "digest"},
      {"docker://registry.io/app:v1@sha256:" + kHex, "not both"},
      {"docker://registry.io:0/app", "port"},
      {"docker://registry.io:99999/app", "port"},
      {"docker://registry.io:http/app", "port"},
      {"docker://reg_istry.io/app", "invalid character"},
      {"docker://[::1/app", "IPv6"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto ref = ImageRef::Parse(c.text);
    REQUIRE_FALSE(ref);
    CHECK(ref.error().code() == ErrorCode::kInvalidArgument);
    CHECK(ref.error().message().find(c.mentions) != std::string::npos);
  }
}

}  // namespace
}  // namespace lazyfs::fetch
