// Simple-API project pages as real indexes serve them: pypi.org's HTML and JSON, PyTorch's wheel index,
// a dir2pi-style static tree, nginx's autoindex; then the HTML that is not well-formed, and the JSON that
// must be refused. The pages are written the way those servers write them; hashes are made up.
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "pkg/index_page.h"

namespace lazyfs::pkg {
namespace {

constexpr std::string_view kPypiPage = "https://pypi.org/simple/requests/";

const std::string kHexA(64, 'a');
const std::string kHexB = "58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f";
const std::string kHexC = "942c5a758f98d790eaed1a29cb6eefc7ffb0d1cf7af05c3d2791656dbd6ad1e1";

ProjectPage Html(std::string_view body, std::string_view page_url, std::string_view project) {
  Result<ProjectPage> page = ParseProjectPage(body, PageFormat::kHtml, page_url, project);
  REQUIRE_MESSAGE(page, (page ? std::string() : page.error().ToString()));
  return std::move(*page);
}

ProjectPage Json(std::string_view body, std::string_view page_url, std::string_view project) {
  Result<ProjectPage> page = ParseProjectPage(body, PageFormat::kJson, page_url, project);
  REQUIRE_MESSAGE(page, (page ? std::string() : page.error().ToString()));
  return std::move(*page);
}

// The error for `body`, which must be one of `code`, naming the project, the page (without its
// credentials) and `needle`.
void CheckError(std::string_view body, PageFormat format, ErrorCode code, std::string_view needle) {
  Result<ProjectPage> page =
      ParseProjectPage(body, format, "https://ci:hunter2@pypi.internal/simple/demo/", "Demo");
  REQUIRE_MESSAGE(!page, body.substr(0, 100));
  const std::string& message = page.error().message();
  CHECK_MESSAGE(page.error().code() == code, message);
  CHECK_MESSAGE(message.find("'Demo'") != std::string::npos, message);
  CHECK_MESSAGE(message.find("https://***@pypi.internal/simple/demo/") != std::string::npos, message);
  CHECK_MESSAGE(message.find("hunter2") == std::string::npos, message);
  CHECK_MESSAGE(message.find(needle) != std::string::npos, message);
}

std::vector<std::string> Filenames(const ProjectPage& page) {
  std::vector<std::string> out;
  for (const IndexFile& file : page.files) out.push_back(file.filename);
  return out;
}

}  // namespace

TEST_CASE("ParseProjectPage: PEP 503 HTML with hashes, requires-python and yanked files") {
  // pypi.org's page, shortened: absolute links to files.pythonhosted.org, both PEP 714 attribute names,
  // one file yanked with a reason, one yanked without.
  const std::string body = R"(<!DOCTYPE html>
<html>
  <head>
    <meta name="pypi:repository-version" content="1.1">
    <title>Links for requests</title>
  </head>
  <body>
    <h1>Links for requests</h1>
    <a href="https://files.pythonhosted.org/packages/ba/bb/dfa0141a32d773c47e4dede1a617c59a23b74dd302e449cf85413fc96bc4/requests-0.2.0.tar.gz#sha256=)" +
                           kHexA + R"(" data-yanked="">requests-0.2.0.tar.gz</a><br />
    <a href="https://files.pythonhosted.org/packages/70/8e/0e2d847013cb52cd35b38c009bb167a1a26b2ce6cd6965bf26b47bc0bf44/requests-2.31.0-py3-none-any.whl#sha256=)" +
                           kHexB + R"(" data-requires-python="&gt;=3.7" data-dist-info-metadata="sha256=)" + kHexC +
                           R"(" data-core-metadata="sha256=)" + kHexC + R"(">requests-2.31.0-py3-none-any.whl</a><br />
    <a href="https://files.pythonhosted.org/packages/24/e8/7ba8c9f2d4b6c0e8a4e7c2c8b59bb5ad9b7b3a6c92e3a2d8f9f38ef58c1f/requests-2.32.0-py3-none-any.whl#sha256=)" +
                           kHexC + R"(" data-requires-python="&gt;=3.8" data-dist-info-metadata="sha256=)" + kHexA +
                           R"(" data-core-metadata="sha256=)" + kHexA +
                           R"(" data-yanked="Yanked due to conflicts with CVE-2024-35195 mitigation">requests-2.32.0-py3-none-any.whl</a><br />
  </body>
</html>
<!--SERIAL 23569875-->
)";
  ProjectPage page = Html(body, kPypiPage, "Requests");
  CHECK(page.name == "requests");
  REQUIRE(page.files.size() == 3);

  const IndexFile& old = page.files[0];
  CHECK(old.filename == "requests-0.2.0.tar.gz");
  CHECK(old.url ==
        "https://files.pythonhosted.org/packages/ba/bb/dfa0141a32d773c47e4dede1a617c59a23b74dd302e449cf85413fc96bc4/"
        "requests-0.2.0.tar.gz");
  CHECK(old.hashes == std::map<std::string, std::string>{{"sha256", kHexA}});
  CHECK(!old.requires_python);
  REQUIRE(old.yanked);
  CHECK(*old.yanked == "");
  CHECK(!old.has_metadata);
  CHECK(old.metadata_hashes.empty());
  CHECK(!old.size);

  const IndexFile& wheel = page.files[1];
  CHECK(wheel.filename == "requests-2.31.0-py3-none-any.whl");
  CHECK(wheel.url.ends_with("/requests-2.31.0-py3-none-any.whl"));
  CHECK(wheel.hashes.at("sha256") == kHexB);
  REQUIRE(wheel.requires_python);
  CHECK(*wheel.requires_python == ">=3.7");  // &gt; decoded by libxml2
  CHECK(!wheel.yanked);
  CHECK(wheel.has_metadata);
  CHECK(wheel.metadata_hashes == std::map<std::string, std::string>{{"sha256", kHexC}});

  const IndexFile& yanked = page.files[2];
  REQUIRE(yanked.yanked);
  CHECK(*yanked.yanked == "Yanked due to conflicts with CVE-2024-35195 mitigation");
  CHECK(*yanked.requires_python == ">=3.8");
}

TEST_CASE("ParseProjectPage: PEP 714 data-core-metadata wins over data-dist-info-metadata") {
  auto parse = [](std::string attributes) {
    std::string body = "<a href=\"demo-1.0-py3-none-any.whl\" " + attributes + ">demo-1.0-py3-none-any.whl</a>";
    ProjectPage page = Html(body, "https://pypi.internal/simple/demo/", "demo");
    REQUIRE(page.files.size() == 1);
    return page.files[0];
  };
  SUBCASE("both names, different hashes: the new name's") {
    IndexFile f = parse("data-core-metadata=\"sha256=" + kHexA + "\" data-dist-info-metadata=\"sha256=" + kHexB + "\"");
    CHECK(f.has_metadata);
    CHECK(f.metadata_hashes.at("sha256") == kHexA);
  }
  SUBCASE("only the PEP 658 name (indexes older than PEP 714)") {
    IndexFile f = parse("data-dist-info-metadata=\"sha256=" + kHexB + "\"");
    CHECK(f.has_metadata);
    CHECK(f.metadata_hashes.at("sha256") == kHexB);
  }
  SUBCASE("true: a metadata file without a hash") {
    IndexFile f = parse("data-core-metadata=\"true\"");
    CHECK(f.has_metadata);
    CHECK(f.metadata_hashes.empty());
  }
  SUBCASE("an empty new name falls back to the old one") {
    IndexFile f = parse("data-core-metadata=\"\" data-dist-info-metadata=\"true\"");
    CHECK(f.has_metadata);
  }
  SUBCASE("false and nonsense promise nothing") {
    CHECK(!parse("data-core-metadata=\"false\"").has_metadata);
    CHECK(!parse("data-core-metadata=\"yes please\"").has_metadata);
  }
  SUBCASE("an algorithm we do not know: a metadata file, no hash kept") {
    IndexFile f = parse("data-core-metadata=\"blake3=0123\"");
    CHECK(f.has_metadata);
    CHECK(f.metadata_hashes.empty());
  }
  SUBCASE("no attribute: no metadata file") { CHECK(!parse("").has_metadata); }
}

TEST_CASE("ParseProjectPage: PyTorch's index, %2B in the URL and a local version in the name") {
  const std::string body = R"(<!DOCTYPE html>
<html>
  <body>
    <h1>Links for torch</h1>
    <a href="/whl/cpu/torch-2.1.0%2Bcpu-cp311-cp311-linux_x86_64.whl#sha256=)" +
                           kHexB + R"(">torch-2.1.0+cpu-cp311-cp311-linux_x86_64.whl</a><br/>
    <a href="/whl/cpu/torch-2.1.0%2Bcpu-cp311-cp311-win_amd64.whl#sha256=)" +
                           kHexC + R"(">torch-2.1.0+cpu-cp311-cp311-win_amd64.whl</a><br/>
  </body>
</html>
<!--TIMESTAMP 1703347410-->
)";
  ProjectPage page = Html(body, "https://download.pytorch.org/whl/cpu/torch/", "torch");
  REQUIRE(page.files.size() == 2);
  CHECK(page.files[0].filename == "torch-2.1.0+cpu-cp311-cp311-linux_x86_64.whl");
  CHECK(page.files[0].url == "https://download.pytorch.org/whl/cpu/torch-2.1.0%2Bcpu-cp311-cp311-linux_x86_64.whl");
  CHECK(page.files[1].hashes.at("sha256") == kHexC);
}

TEST_CASE("ParseProjectPage: a dir2pi-style static index with relative hrefs and md5 fragments") {
  // `pip download` into packages/, then a generator writes simple/<name>/index.html linking back up.
  const std::string md5 = "0b2f5b8ab8a8a1d07c6e7a3c7d2b6f4e";
  const std::string body = "<html><head><title>Links for six</title></head><body>\n"
                           "<h1>Links for six</h1>\n"
                           "<a href='../../packages/six-1.16.0-py2.py3-none-any.whl#md5=" + md5 +
                           "' rel='internal'>six-1.16.0-py2.py3-none-any.whl</a><br/>\n"
                           "<a href='../../packages/six-1.16.0.tar.gz#sha256=" + kHexA +
                           "&egg=six' rel='internal'>six-1.16.0.tar.gz</a><br/>\n"
                           "</body></html>\n";
  ProjectPage page = Html(body, "http://10.0.0.5:8080/simple/six/", "six");
  REQUIRE(page.files.size() == 2);
  CHECK(page.files[0].url == "http://10.0.0.5:8080/packages/six-1.16.0-py2.py3-none-any.whl");
  CHECK(page.files[0].hashes == std::map<std::string, std::string>{{"md5", md5}});
  CHECK(page.files[1].url == "http://10.0.0.5:8080/packages/six-1.16.0.tar.gz");
  // "egg" is no hash algorithm: ignored, not an error.
  CHECK(page.files[1].hashes == std::map<std::string, std::string>{{"sha256", kHexA}});
}

TEST_CASE("ParseProjectPage: nginx autoindex, names cut short in the link text, the parent link skipped") {
  const std::string body = R"(<html>
<head><title>Index of /simple/numpy/</title></head>
<body>
<h1>Index of /simple/numpy/</h1><hr><pre><a href="../">../</a>
<a href="numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl">numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.m..&gt;</a> 05-Feb-2024 21:23            18297156
<a href="numpy-1.26.4.tar.gz">numpy-1.26.4.tar.gz</a>                                05-Feb-2024 21:23            15786129
</pre><hr></body>
</html>
)";
  ProjectPage page = Html(body, "http://mirror.lan/simple/numpy/", "numpy");
  CHECK(Filenames(page) == std::vector<std::string>{"numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                                                     "numpy-1.26.4.tar.gz"});
  CHECK(page.files[0].url == "http://mirror.lan/simple/numpy/numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl");
  CHECK(page.files[0].hashes.empty());
  CHECK(!page.files[0].yanked);
}

TEST_CASE("ParseProjectPage: <base href> is the base for every link") {
  SUBCASE("absolute") {
    const std::string body = "<html><head><base href=\"https://cdn.example/mirror/\"></head><body>"
                             "<a href=\"attrs-23.1.0-py3-none-any.whl\">attrs-23.1.0-py3-none-any.whl</a>"
                             "<a href=\"/top/attrs-23.1.0.tar.gz\">attrs-23.1.0.tar.gz</a></body></html>";
    ProjectPage page = Html(body, "https://pypi.internal/simple/attrs/", "attrs");
    REQUIRE(page.files.size() == 2);
    CHECK(page.files[0].url == "https://cdn.example/mirror/attrs-23.1.0-py3-none-any.whl");
    CHECK(page.files[1].url == "https://cdn.example/top/attrs-23.1.0.tar.gz");
  }
  SUBCASE("relative to the page, and only the first <base> counts") {
    const std::string body = "<base href=\"../../files/attrs/\"><base href=\"https://wrong.example/\">"
                             "<a href=\"attrs-23.1.0.tar.gz?token=abc&amp;expires=1\">attrs-23.1.0.tar.gz</a>";
    ProjectPage page = Html(body, "https://pypi.internal/simple/attrs/", "attrs");
    REQUIRE(page.files.size() == 1);
    CHECK(page.files[0].url == "https://pypi.internal/files/attrs/attrs-23.1.0.tar.gz?token=abc&expires=1");
    CHECK(page.files[0].filename == "attrs-23.1.0.tar.gz");  // the query is not part of the name
  }
  SUBCASE("a <base> after the links still applies (HTML: the first <base> in the document)") {
    const std::string body = "<a href=\"x-1.0.tar.gz\">x-1.0.tar.gz</a><base href=\"https://cdn.example/\">";
    CHECK(Html(body, "https://pypi.internal/simple/x/", "x").files.at(0).url == "https://cdn.example/x-1.0.tar.gz");
  }
}

TEST_CASE("ParseProjectPage: HTML that is not well-formed is still parsed") {
  // Upper-case tags and attributes, unquoted values, no </a>, a bare '&', stray end tags, no <html>,
  // a valueless data-yanked, an upper-case hash name and digits, whitespace around an href.
  const std::string body = "<H1>Links for Demo</h1></div>\n"
                           "<A HREF=demo-1.0.tar.gz#SHA256=" + std::string(64, 'F') + " data-yanked>demo-1.0.tar.gz<br>\n"
                           "<a href=\"demo-1.1-py3-none-any.whl?a=1&b=2\" data-requires-python='&gt;=3.8,&lt;4'>"
                           "demo-1.1-py3-none-any.whl</a></td></tr>\n"
                           "<a name=top>no href</a><a href=\"\">empty</a><a href=\"#top\">anchor</a>"
                           "<a href=\"mailto:admin@example.com\">mail</a>\n"
                           "<p><a href=\"\n demo-1.2.tar.gz \t\">demo-1.2.tar.gz</a>"
                           "<table><tr><td><a href=\"demo-1.3.tar.gz\">unclosed everything";
  ProjectPage page = Html(body, "https://pypi.internal/simple/demo/", "Demo");
  CHECK(Filenames(page) ==
        std::vector<std::string>{"demo-1.0.tar.gz", "demo-1.1-py3-none-any.whl", "demo-1.2.tar.gz", "demo-1.3.tar.gz"});
  REQUIRE(page.files.size() == 4);
  CHECK(page.files[0].hashes.at("sha256") == std::string(64, 'f'));
  REQUIRE(page.files[0].yanked);
  CHECK(*page.files[0].yanked == "");
  CHECK(page.files[1].url == "https://pypi.internal/simple/demo/demo-1.1-py3-none-any.whl?a=1&b=2");
  CHECK(*page.files[1].requires_python == ">=3.8,<4");
  CHECK(page.files[2].url == "https://pypi.internal/simple/demo/demo-1.2.tar.gz");
  CHECK(page.files[3].url == "https://pypi.internal/simple/demo/demo-1.3.tar.gz");
}

TEST_CASE("ParseProjectPage: HTML without links, empty, or deeply nested") {
  CHECK(Html("", kPypiPage, "requests").files.empty());
  CHECK(Html(" \n", kPypiPage, "requests").files.empty());
  CHECK(Html("<html><body><h1>Links for requests</h1></body></html>", kPypiPage, "requests").files.empty());
  CHECK(Html("not even html", kPypiPage, "requests").files.empty());
  // Unclosed tags nest; the walk over them is a loop, so depth costs no stack.
  std::string deep;
  for (int i = 0; i < 20000; ++i) deep += "<div><span>";
  deep += "<a href=\"requests-2.31.0.tar.gz\">requests-2.31.0.tar.gz</a>";
  CHECK(Filenames(Html(deep, kPypiPage, "requests")) == std::vector<std::string>{"requests-2.31.0.tar.gz"});
  // A list whose <a>s are never closed nests every item inside the one before: past 256 levels libxml2's
  // tree builder would stop and drop the rest of the page.
  std::string list = "<ul>";
  for (int i = 0; i < 1000; ++i) list += "\n<li><a href=\"requests-2." + std::to_string(i) + ".tar.gz\">requests";
  CHECK(Html(list, kPypiPage, "requests").files.size() == 1000);
}

TEST_CASE("ParseProjectPage: pages parsed on several threads at once") {
  const std::string body = "<a href=\"demo-1.0.tar.gz#sha256=" + kHexA + "\">demo-1.0.tar.gz</a>";
  std::vector<size_t> counts(4);
  {
    std::vector<std::jthread> threads;
    for (size_t t = 0; t < counts.size(); ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 200; ++i) {
          Result<ProjectPage> page = ParseProjectPage(body, PageFormat::kHtml, "https://pypi.internal/simple/demo/", "demo");
          if (page && page->files.size() == 1) ++counts[t];
        }
      });
    }
  }
  CHECK(counts == std::vector<size_t>(4, 200));
}

TEST_CASE("ParseProjectPage: HTML refusals name the project, the page and the file") {
  SUBCASE("a sha256 that is not 64 hex digits") {
    CheckError("<a href=\"demo-1.0.tar.gz#sha256=abc123\">demo-1.0.tar.gz</a>", PageFormat::kHtml, ErrorCode::kCorrupt,
               "link to demo-1.0.tar.gz: sha256 hash \"abc123\" is not 64 hex digits");
  }
  SUBCASE("a sha256 with a non-hex digit") {
    CheckError("<a href=\"demo-1.0.tar.gz#sha256=" + std::string(63, 'a') + "g\">x</a>", PageFormat::kHtml,
               ErrorCode::kCorrupt, "demo-1.0.tar.gz");
  }
  SUBCASE("a bad metadata hash") {
    CheckError("<a href=\"demo-1.0-py3-none-any.whl\" data-core-metadata=\"sha256=zz\">x</a>", PageFormat::kHtml,
               ErrorCode::kCorrupt, "data-core-metadata: sha256 hash \"zz\"");
  }
  SUBCASE("a <base href> that does not resolve") {
    CheckError("<base href=\"javascript:void(0)\"><a href=\"demo-1.0.tar.gz\">x</a>", PageFormat::kHtml,
               ErrorCode::kCorrupt, "<base href=");
  }
  SUBCASE("a NUL byte, where libxml2 would stop reading and lose the links after it") {
    CheckError(std::string("<a href=\"demo-1.0.tar.gz\">x</a>\0<a href=\"demo-1.1.tar.gz\">y</a>", 63), PageFormat::kHtml,
               ErrorCode::kCorrupt, "NUL byte at offset 31");
  }
  SUBCASE("a page over the size limit") {
    CheckError(std::string(kMaxProjectPageBytes + 1, ' '), PageFormat::kHtml, ErrorCode::kCorrupt,
               std::to_string(kMaxProjectPageBytes + 1) + " bytes");
  }
  SUBCASE("a page URL that is not absolute") {
    Result<ProjectPage> page = ParseProjectPage("", PageFormat::kHtml, "/simple/demo/", "demo");
    REQUIRE(!page);
    CHECK(page.error().code() == ErrorCode::kInvalidArgument);
  }
}

TEST_CASE("ParseProjectPage: PEP 691 JSON as pypi.org serves it") {
  const std::string body = R"({"files":[)"
                           R"({"core-metadata":false,"data-dist-info-metadata":false,"filename":"requests-0.2.0.tar.gz",)"
                           R"("hashes":{"sha256":")" + kHexA + R"("},"requires-python":null,"size":56281,)"
                           R"("upload-time":"2011-02-14T19:51:23.000000Z",)"
                           R"("url":"https://files.pythonhosted.org/packages/ba/bb/dfa0/requests-0.2.0.tar.gz","yanked":true},)"
                           R"({"core-metadata":{"sha256":")" + kHexC + R"("},"data-dist-info-metadata":{"sha256":")" + kHexC +
                           R"("},"filename":"requests-2.31.0-py3-none-any.whl","hashes":{"sha256":")" + kHexB +
                           R"("},"requires-python":">=3.7","size":62574,"upload-time":"2023-05-22T15:12:42.313790Z",)"
                           R"("url":"https://files.pythonhosted.org/packages/70/8e/0e2d/requests-2.31.0-py3-none-any.whl","yanked":false},)"
                           R"({"core-metadata":{"sha256":")" + kHexA + R"("},"filename":"requests-2.32.0-py3-none-any.whl",)"
                           R"("hashes":{"sha256":")" + kHexC + R"("},"requires-python":">=3.8","size":63456,)"
                           R"("upload-time":"2024-05-20T16:37:34.103405Z",)"
                           R"("url":"https://files.pythonhosted.org/packages/24/e8/7ba8/requests-2.32.0-py3-none-any.whl",)"
                           R"("yanked":"Yanked due to conflicts with CVE-2024-35195 mitigation"}],)"
                           R"("meta":{"_last-serial":23569875,"api-version":"1.1"},"name":"requests",)"
                           R"("versions":["0.2.0","2.31.0","2.32.0"]})";
  ProjectPage page = Json(body, kPypiPage, "Requests");
  CHECK(page.name == "requests");
  REQUIRE(page.files.size() == 3);

  const IndexFile& old = page.files[0];
  CHECK(old.filename == "requests-0.2.0.tar.gz");
  CHECK(old.url == "https://files.pythonhosted.org/packages/ba/bb/dfa0/requests-0.2.0.tar.gz");
  CHECK(old.hashes == std::map<std::string, std::string>{{"sha256", kHexA}});
  CHECK(!old.requires_python);
  REQUIRE(old.yanked);
  CHECK(*old.yanked == "");
  CHECK(!old.has_metadata);
  CHECK(old.size == 56281);

  const IndexFile& wheel = page.files[1];
  CHECK(*wheel.requires_python == ">=3.7");
  CHECK(!wheel.yanked);
  CHECK(wheel.has_metadata);
  CHECK(wheel.metadata_hashes == std::map<std::string, std::string>{{"sha256", kHexC}});
  CHECK(wheel.size == 62574);

  CHECK(*page.files[2].yanked == "Yanked due to conflicts with CVE-2024-35195 mitigation");
  CHECK(page.files[2].metadata_hashes.at("sha256") == kHexA);
}

TEST_CASE("ParseProjectPage: PEP 691 JSON with relative URLs and both metadata key spellings (api-version 1.0)") {
  const std::string body = R"({
  "meta": {"api-version": "1.0"},
  "name": "demo-pkg",
  "files": [
    {"filename": "demo_pkg-1.0-py3-none-any.whl", "url": "../../packages/demo_pkg-1.0-py3-none-any.whl#sha256=ignored",
     "hashes": {"SHA256": ")" + std::string(64, 'B') + R"(", "md5": "0b2f5b8ab8a8a1d07c6e7a3c7d2b6f4e", "shake_128": "xyz"},
     "dist-info-metadata": {"sha256": ")" + kHexC + R"("}},
    {"filename": "demo_pkg-1.1-py3-none-any.whl", "url": "/abs/demo_pkg-1.1-py3-none-any.whl", "hashes": {},
     "core-metadata": true, "dist-info-metadata": {"sha256": ")" + kHexA + R"("}, "requires-python": ""},
    {"filename": "demo-pkg-1.2.tar.gz", "url": "https://other.example/demo-pkg-1.2.tar.gz", "hashes": {},
     "core-metadata": null, "dist-info-metadata": true, "yanked": "", "size": null}
  ]
})";
  ProjectPage page = Json(body, "https://pypi.internal/root/simple/demo-pkg/", "Demo_Pkg");
  CHECK(page.name == "demo-pkg");
  REQUIRE(page.files.size() == 3);

  const IndexFile& first = page.files[0];
  CHECK(first.url == "https://pypi.internal/root/packages/demo_pkg-1.0-py3-none-any.whl");
  // Names lower-cased, digests too; an algorithm with no fixed length (shake_128) is not kept.
  CHECK(first.hashes == std::map<std::string, std::string>{{"md5", "0b2f5b8ab8a8a1d07c6e7a3c7d2b6f4e"},
                                                            {"sha256", std::string(64, 'b')}});
  CHECK(first.has_metadata);
  CHECK(first.metadata_hashes.at("sha256") == kHexC);
  CHECK(!first.size);

  const IndexFile& second = page.files[1];
  CHECK(second.url == "https://pypi.internal/abs/demo_pkg-1.1-py3-none-any.whl");
  CHECK(second.has_metadata);
  CHECK(second.metadata_hashes.empty());  // core-metadata is there, so dist-info-metadata is not read
  CHECK(!second.requires_python);

  const IndexFile& third = page.files[2];
  CHECK(third.url == "https://other.example/demo-pkg-1.2.tar.gz");
  CHECK(third.has_metadata);  // core-metadata null counts as absent
  REQUIRE(third.yanked);
  CHECK(*third.yanked == "");
}

TEST_CASE("ParseProjectPage: JSON refusals") {
  auto page = [](std::string files, std::string version = "1.1") {
    return R"({"meta": {"api-version": ")" + version + R"("}, "name": "demo", "files": [)" + files + "]}";
  };
  const std::string ok_file = R"({"filename": "demo-1.0.tar.gz", "url": "demo-1.0.tar.gz", "hashes": {}})";

  SUBCASE("api-version 2.0") {
    CheckError(page(ok_file, "2.0"), PageFormat::kJson, ErrorCode::kUnsupported, "simple API version 2.0");
  }
  SUBCASE("api-version that is not major.minor") {
    CheckError(page(ok_file, "one"), PageFormat::kJson, ErrorCode::kCorrupt, "api-version \"one\"");
  }
  SUBCASE("garbage") {
    CheckError("<html>this is not json", PageFormat::kJson, ErrorCode::kCorrupt, "not valid JSON");
    CheckError(R"({"meta": {"api-version": "1.0"}, "name": "demo", "files": [)", PageFormat::kJson, ErrorCode::kCorrupt,
               "not valid JSON");
    CheckError("[]", PageFormat::kJson, ErrorCode::kCorrupt, "not an object");
  }
  SUBCASE("no meta, no name, no files") {
    CheckError(R"({"name": "demo", "files": []})", PageFormat::kJson, ErrorCode::kCorrupt, "no \"meta\"");
    CheckError(R"({"meta": {}, "name": "demo", "files": []})", PageFormat::kJson, ErrorCode::kCorrupt,
               "meta: no \"api-version\"");
    CheckError(R"({"meta": {"api-version": "1.0"}, "files": []})", PageFormat::kJson, ErrorCode::kCorrupt, "no \"name\"");
    CheckError(R"({"meta": {"api-version": "1.0"}, "name": "demo"})", PageFormat::kJson, ErrorCode::kCorrupt,
               "no \"files\"");
    CheckError(R"({"meta": {"api-version": "1.0"}, "name": "demo", "files": {}})", PageFormat::kJson,
               ErrorCode::kCorrupt, "\"files\" is an object, not an array");
  }
  SUBCASE("another project's page") {
    CheckError(R"({"meta": {"api-version": "1.0"}, "name": "demo2", "files": []})", PageFormat::kJson,
               ErrorCode::kCorrupt, "for project \"demo2\"");
  }
  SUBCASE("a file without url, filename or hashes, named by its index") {
    CheckError(page(ok_file + R"(, {"filename": "demo-1.1.tar.gz", "hashes": {}})"), PageFormat::kJson,
               ErrorCode::kCorrupt, "file 1 (demo-1.1.tar.gz): no \"url\"");
    CheckError(page(R"({"url": "demo-1.1.tar.gz", "hashes": {}})"), PageFormat::kJson, ErrorCode::kCorrupt,
               "file 0: no \"filename\"");
    CheckError(page(R"({"filename": "demo-1.1.tar.gz", "url": "demo-1.1.tar.gz"})"), PageFormat::kJson,
               ErrorCode::kCorrupt, "file 0 (demo-1.1.tar.gz): no \"hashes\"");
    CheckError(page("\"demo-1.1.tar.gz\""), PageFormat::kJson, ErrorCode::kCorrupt, "file 0: is string, not an object");
  }
  SUBCASE("keys of the wrong type") {
    auto with = [&](std::string extra) {
      return page(R"({"filename": "demo-1.0.tar.gz", "url": "demo-1.0.tar.gz", "hashes": {}, )" + extra + "}");
    };
    CheckError(with(R"("yanked": 1)"), PageFormat::kJson, ErrorCode::kCorrupt, "\"yanked\" is a number");
    CheckError(with(R"("size": -1)"), PageFormat::kJson, ErrorCode::kCorrupt, "\"size\" is a number, not an unsigned");
    CheckError(with(R"("size": 1.5)"), PageFormat::kJson, ErrorCode::kCorrupt, "\"size\"");
    CheckError(with(R"("requires-python": [">=3.8"])"), PageFormat::kJson, ErrorCode::kCorrupt, "\"requires-python\"");
    CheckError(with(R"("core-metadata": "true")"), PageFormat::kJson, ErrorCode::kCorrupt, "\"core-metadata\" is a string");
    CheckError(with(R"("dist-info-metadata": 1)"), PageFormat::kJson, ErrorCode::kCorrupt, "\"dist-info-metadata\"");
    CheckError(page(R"({"filename": "demo-1.0.tar.gz", "url": "demo-1.0.tar.gz", "hashes": []})"), PageFormat::kJson,
               ErrorCode::kCorrupt, "\"hashes\" is an array, not an object");
    CheckError(page(R"({"filename": "demo-1.0.tar.gz", "url": "demo-1.0.tar.gz", "hashes": {"sha256": 5}})"),
               PageFormat::kJson, ErrorCode::kCorrupt, "\"hashes.sha256\" is a number");
  }
  SUBCASE("bad hashes") {
    CheckError(page(R"({"filename": "demo-1.0.tar.gz", "url": "demo-1.0.tar.gz", "hashes": {"sha256": "abc"}})"),
               PageFormat::kJson, ErrorCode::kCorrupt, "file 0 (demo-1.0.tar.gz): sha256 hash \"abc\" is not 64 hex digits");
    CheckError(page(R"({"filename": "demo-1.0-py3-none-any.whl", "url": "x.whl", "hashes": {}, "core-metadata": {"sha256": ""}})"),
               PageFormat::kJson, ErrorCode::kCorrupt, "sha256 hash \"\" is not 64 hex digits");
  }
  SUBCASE("filenames that are not file names, URLs that do not resolve") {
    CheckError(page(R"({"filename": "../../etc/passwd", "url": "demo-1.0.tar.gz", "hashes": {}})"), PageFormat::kJson,
               ErrorCode::kCorrupt, "\"filename\" is empty or holds '/'");
    CheckError(page(R"({"filename": "", "url": "demo-1.0.tar.gz", "hashes": {}})"), PageFormat::kJson,
               ErrorCode::kCorrupt, "\"filename\" is empty");
    CheckError(page(R"({"filename": "demo-1.0.tar.gz", "url": "", "hashes": {}})"), PageFormat::kJson,
               ErrorCode::kCorrupt, "\"url\" is empty");
    CheckError(page(R"j({"filename": "demo-1.0.tar.gz", "url": "javascript:alert(1)", "hashes": {}})j"),
               PageFormat::kJson, ErrorCode::kCorrupt, "file 0 (demo-1.0.tar.gz): \"url\"");
  }
}

TEST_CASE("PageFormatOf: the simple API's content types, case and parameters aside") {
  CHECK(PageFormatOf("application/vnd.pypi.simple.v1+json") == PageFormat::kJson);
  CHECK(PageFormatOf("Application/VND.PyPI.Simple.v1+JSON") == PageFormat::kJson);
  CHECK(PageFormatOf("application/vnd.pypi.simple.v1+html") == PageFormat::kHtml);
  CHECK(PageFormatOf("text/html") == PageFormat::kHtml);
  CHECK(PageFormatOf("text/html; charset=utf-8") == PageFormat::kHtml);
  CHECK(PageFormatOf(" TEXT/HTML ;charset=ISO-8859-1") == PageFormat::kHtml);
  CHECK(!PageFormatOf("application/json"));
  CHECK(!PageFormatOf("application/vnd.pypi.simple.v2+json"));
  CHECK(!PageFormatOf("application/vnd.pypi.simple.latest+json"));
  CHECK(!PageFormatOf("text/plain"));
  CHECK(!PageFormatOf(""));
}

TEST_CASE("IndexAccept: JSON first, then PEP 691 HTML, then legacy HTML, with q-values") {
  std::string_view accept = IndexAccept();
  size_t json = accept.find("application/vnd.pypi.simple.v1+json");
  size_t html = accept.find("application/vnd.pypi.simple.v1+html; q=0.1");
  size_t legacy = accept.find("text/html; q=0.01");
  REQUIRE(json != std::string_view::npos);
  REQUIRE(html != std::string_view::npos);
  REQUIRE(legacy != std::string_view::npos);
  CHECK(json < html);
  CHECK(html < legacy);
}

TEST_CASE("ProjectPageUrl: index URL with or without a slash, the PEP 503 name, a trailing slash") {
  CHECK(ProjectPageUrl("https://pypi.org/simple", "Requests") == "https://pypi.org/simple/requests/");
  CHECK(ProjectPageUrl("https://pypi.org/simple/", "zope.interface") == "https://pypi.org/simple/zope-interface/");
  CHECK(ProjectPageUrl("http://10.0.0.5:8080/root/pypi/+simple/", "Foo__Bar") ==
        "http://10.0.0.5:8080/root/pypi/+simple/foo-bar/");
}

}  // namespace lazyfs::pkg
