// Tests for fetch/registry_auth: challenge parsing, Basic headers, auth file look-up, URL
// origins and the token realm rules.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fetch/registry_auth.h"
#include "tests/fetch/registry_test_fakes.h"
#include "tests/test_support.h"

namespace lazyfs::fetch {
namespace {

void WriteFile(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

using lazyfs::testing::TempDir;  // not fetch::testing, the fakes' namespace

}  // namespace

TEST_CASE("ParseWwwAuthenticate: bearer challenge with a comma inside the quoted scope") {
  auto challenges = ParseWwwAuthenticate(
      R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:app/web:pull,push")");
  REQUIRE(challenges.size() == 1);
  CHECK(challenges[0].scheme == "bearer");
  CHECK(challenges[0].Param("realm") == "https://auth.example.com/token");
  CHECK(challenges[0].Param("service") == "registry.example.com");
  CHECK(challenges[0].Param("scope") == "repository:app/web:pull,push");
}

TEST_CASE("ParseWwwAuthenticate: tolerates case, spaces, bare tokens and escapes") {
  SUBCASE("mixed case scheme and names, spaces around = and ,") {
    auto c = ParseWwwAuthenticate(R"(BEARER  Realm = "http://127.0.0.1:9/t" ,  Service=reg , error="invalid_token")");
    REQUIRE(c.size() == 1);
    CHECK(c[0].scheme == "bearer");
    CHECK(c[0].Param("realm") == "http://127.0.0.1:9/t");
    CHECK(c[0].Param("service") == "reg");
    CHECK(c[0].Param("error") == "invalid_token");
  }
  SUBCASE("backslash escapes in quoted strings") {
    auto c = ParseWwwAuthenticate(R"(Basic realm="say \"hi\"\\")");
    REQUIRE(c.size() == 1);
    CHECK(c[0].scheme == "basic");
    CHECK(c[0].Param("realm") == R"(say "hi"\)");
  }
  SUBCASE("several challenges in one header") {
    auto c = ParseWwwAuthenticate(R"(Basic realm="Registry Realm", Bearer realm="https://a/t",scope="x:y:pull")");
    REQUIRE(c.size() == 2);
    CHECK(c[0].scheme == "basic");
    CHECK(c[0].Param("realm") == "Registry Realm");
    CHECK(c[1].scheme == "bearer");
    CHECK(c[1].Param("scope") == "x:y:pull");
  }
  SUBCASE("a scheme without parameters and an unterminated quote") {
    auto c = ParseWwwAuthenticate(R"(Negotiate, Bearer realm="https://a/t)");
    REQUIRE(c.size() == 2);
    CHECK(c[0].scheme == "negotiate");
    CHECK(c[1].Param("realm") == "https://a/t");
  }
  SUBCASE("empty and junk input") {
    CHECK(ParseWwwAuthenticate("").empty());
    CHECK(ParseWwwAuthenticate(" , ,").empty());
  }
}

TEST_CASE("BasicAuthorization: base64 of user:password") {
  CHECK(BasicAuthorization({"user", "pass"}) == "Basic dXNlcjpwYXNz");
}

TEST_CASE("CredentialsFromAuthJson: finds the host's entry in its several spellings") {
  SUBCASE("host key with base64 auth") {
    auto c = CredentialsFromAuthJson(R"({"auths":{"reg.example:5000":{"auth":"dXNlcjpwOnc="}}})", "reg.example:5000");
    REQUIRE(c);
    REQUIRE(*c);
    CHECK((*c)->username == "user");
    CHECK((*c)->password == "p:w");  // only the first colon separates
  }
  SUBCASE("URL key and username/password fields") {
    auto c = CredentialsFromAuthJson(R"({"auths":{"https://reg.example/v1/":{"username":"u","password":"p"}}})",
                                     "reg.example");
    REQUIRE(c);
    REQUIRE(*c);
    CHECK((*c)->username == "u");
  }
  SUBCASE("docker hub aliases") {
    auto c = CredentialsFromAuthJson(R"({"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"}}})",
                                     "registry-1.docker.io");
    REQUIRE(c);
    CHECK(*c);
  }
  SUBCASE("another host, a port mismatch, no auths") {
    auto other = CredentialsFromAuthJson(R"({"auths":{"reg.example:5001":{"auth":"dXNlcjpwYXNz"}}})", "reg.example:5000");
    REQUIRE(other);
    CHECK_FALSE(*other);
    auto none = CredentialsFromAuthJson(R"({"credsStore":"desktop"})", "reg.example");
    REQUIRE(none);
    CHECK_FALSE(*none);
  }
  SUBCASE("malformed documents are errors") {
    CHECK(CredentialsFromAuthJson("not json", "h").error().code() == ErrorCode::kInvalidArgument);
    CHECK(CredentialsFromAuthJson(R"({"auths":{"h":{"auth":"bm9jb2xvbg=="}}})", "h").error().code() ==
          ErrorCode::kInvalidArgument);
  }
}

TEST_CASE("FindCredentials: REGISTRY_AUTH_FILE, then XDG_RUNTIME_DIR, then ~/.docker/config.json") {
  TempDir dir;
  AuthFileLocations where{dir.path + "/custom.json", dir.path + "/run", dir.path + "/home"};
  WriteFile(dir.path + "/home/.docker/config.json", R"({"auths":{"h1":{"auth":"ZG9ja2VyOmQ="},"h2":{"auth":"ZG9ja2VyOmQ="}}})");
  WriteFile(dir.path + "/run/containers/auth.json", R"({"auths":{"h1":{"auth":"eGRnOng="}}})");

  auto h1 = FindCredentials("h1", where);
  REQUIRE(h1);
  REQUIRE(*h1);
  CHECK((*h1)->username == "xdg");  // REGISTRY_AUTH_FILE is missing: skipped
  auto h2 = FindCredentials("h2", where);
  REQUIRE(h2);
  REQUIRE(*h2);
  CHECK((*h2)->username == "docker");

  WriteFile(dir.path + "/custom.json", R"({"auths":{"h1":{"username":"custom","password":"c"}}})");
  auto custom = FindCredentials("h1", where);
  REQUIRE(custom);
  REQUIRE(*custom);
  CHECK((*custom)->username == "custom");

  auto none = FindCredentials("h3", where);
  REQUIRE(none);
  CHECK_FALSE(*none);

  WriteFile(dir.path + "/custom.json", "{broken");
  auto broken = FindCredentials("h1", where);
  REQUIRE_FALSE(broken);
  CHECK(broken.error().message().find("custom.json") != std::string::npos);
}

TEST_CASE("AuthFileLocations: candidate files in precedence order") {
  AuthFileLocations where{"/a.json", "/run/user/1", "/home/u"};
  std::vector<std::string> expected = {"/a.json", "/run/user/1/containers/auth.json",
                                       "/home/u/.config/containers/auth.json", "/home/u/.docker/config.json"};
  CHECK(where.Files() == expected);
  CHECK(AuthFileLocations{}.Files().empty());
}

TEST_CASE("RegistryAuth: the token request gets the caller's timeout and https-only realms from an https registry") {
  auto transport = std::make_shared<testing::FakeTransport>([](const HttpRequest&) -> Result<HttpResponse> {
    return testing::MakeResponse(200, R"({"token":"t"})");
  });
  auto challenge = [](const std::string& realm) {
    return testing::MakeResponse(401, "", {{"www-authenticate", "Bearer realm=\"" + realm + "\""}});
  };
  RegistryAuth auth("https://reg.test", Credentials{"u", "p"}, transport, {"plain.test:8080"});
  REQUIRE(auth.OnUnauthorized(challenge("https://auth.test/token"), "repository:a:pull", std::chrono::milliseconds(1234)));
  REQUIRE(transport->count() == 1);
  CHECK(transport->requests()[0].timeout == std::chrono::milliseconds(1234));
  CHECK(auth.Authorization("repository:a:pull") == "Bearer t");

  Status cleartext = auth.OnUnauthorized(challenge("http://auth.test/token"), "repository:b:pull", std::chrono::seconds(1));
  REQUIRE_FALSE(cleartext);
  CHECK(cleartext.error().code() == ErrorCode::kPermission);
  CHECK_FALSE(cleartext.error().retryable());
  CHECK(transport->count() == 1);  // nothing went out

  REQUIRE(auth.OnUnauthorized(challenge("http://plain.test:8080/t"), "repository:c:pull", std::chrono::seconds(1)));
  CHECK(transport->count() == 2);
  CHECK_FALSE(auth.OnUnauthorized(challenge("ftp://auth.test/t"), "repository:d:pull", std::chrono::seconds(1)));
  CHECK(transport->count() == 2);

  RegistryAuth plain("http://reg.test:5000", Credentials{"u", "p"}, transport);
  REQUIRE(plain.OnUnauthorized(challenge("http://auth.test/token"), "repository:a:pull", std::chrono::seconds(1)));
  CHECK(transport->count() == 3);
}

}  // namespace lazyfs::fetch
