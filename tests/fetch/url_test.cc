// fetch/url.h: origins, reference resolution and query building through libcurl's URL API.
#include <doctest/doctest.h>

#include "fetch/url.h"

namespace lazyfs::fetch {

TEST_CASE("ParseUrlOrigin: scheme, host and explicit port, compared as origins") {
  auto https = ParseUrlOrigin("https://Reg.Example/v2/app?x=1");
  REQUIRE(https);
  CHECK(https->scheme == "https");
  CHECK(https->host == "reg.example");
  CHECK(https->port == "443");
  CHECK(https->ToString() == "https://reg.example:443");
  CHECK(*https == *ParseUrlOrigin("https://reg.example:443"));
  CHECK_FALSE(*https == *ParseUrlOrigin("http://reg.example"));
  CHECK_FALSE(*https == *ParseUrlOrigin("https://reg.example:5000"));
  CHECK_FALSE(*https == *ParseUrlOrigin("https://reg.example.evil.test"));
  CHECK(ParseUrlOrigin("http://user:pw@127.0.0.1:5000/x")->ToString() == "http://127.0.0.1:5000");
  CHECK_FALSE(ParseUrlOrigin("not a url"));
  CHECK_FALSE(ParseUrlOrigin("/v2/relative"));
}

TEST_CASE("OriginNamedIn: HOST means the scheme's default port, HOST:PORT that port") {
  UrlOrigin realm = *ParseUrlOrigin("http://auth.test/token");
  CHECK(OriginNamedIn(realm, {"other", "auth.test"}));
  CHECK(OriginNamedIn(realm, {"auth.test:80"}));
  CHECK_FALSE(OriginNamedIn(realm, {"auth.test:8080"}));
  CHECK_FALSE(OriginNamedIn(realm, {}));
  CHECK(OriginNamedIn(*ParseUrlOrigin("http://auth.test:8080/t"), {"auth.test:8080"}));
}

TEST_CASE("ResolveUrl: absolute, absolute-path and relative references (RFC 3986 section 5)") {
  const std::string base = "http://127.0.0.1:8080/simple/requests/";
  CHECK(ResolveUrl(base, "../../packages/r-2.0-py3-none-any.whl#sha256=ab").value() ==
        "http://127.0.0.1:8080/packages/r-2.0-py3-none-any.whl#sha256=ab");
  CHECK(ResolveUrl(base, "/v2/app/blobs/uploads/u1?_state=x").value() == "http://127.0.0.1:8080/v2/app/blobs/uploads/u1?_state=x");
  CHECK(ResolveUrl(base, "https://files.example/f.whl").value() == "https://files.example/f.whl");
  CHECK(ResolveUrl(base, "f.whl").value() == "http://127.0.0.1:8080/simple/requests/f.whl");
  CHECK_FALSE(ResolveUrl("not a url", "f.whl"));
}

TEST_CASE("WithQuery: parameters appended after any query the URL has, values percent-encoded") {
  CHECK(WithQuery("http://auth.test/token", {{"service", "a registry"}, {"scope", "repository:a/b:pull,push"}}).value() ==
        "http://auth.test/token?service=a+registry&scope=repository%3aa%2fb%3apull%2cpush");
  CHECK(WithQuery("http://h/v2/app/blobs/uploads/u1?_state=x", {{"digest", "sha256:00ff"}}).value() ==
        "http://h/v2/app/blobs/uploads/u1?_state=x&digest=sha256%3a00ff");
  CHECK(WithQuery("http://h/p", {}).value() == "http://h/p");
  CHECK_FALSE(WithQuery("/relative", {{"a", "b"}}));
}

}  // namespace lazyfs::fetch
