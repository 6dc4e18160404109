// Tests for fetch/curl_transport against a tiny loopback HTTP/1.1 server run by the test: statuses and
// headers, ranges, sinks, uploads from a file, body caps, and the mapping of transport failures
// (refused, stalled body, deadline) to retryable errors.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <thread>

#include "fetch/http_transport.h"

namespace lazyfs::fetch {
namespace {

using namespace std::chrono_literals;

// Accepts connections on 127.0.0.1 and answers each request with `respond(fd, request_text)` (the request
// text holds the head and, when Content-Length says so, the body). One thread per connection.
class TinyServer {
 public:
  using Responder = std::function<void(int fd, const std::string& request)>;
  explicit TinyServer(Responder respond) : respond_(std::move(respond)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    REQUIRE(::listen(listen_fd_, 16) == 0);
    thread_ = std::thread([this] { Run(); });
  }
  ~TinyServer() {
    stop_ = true;
    thread_.join();
    for (std::thread& connection : connections_) connection.join();
    ::close(listen_fd_);
  }
  std::string Url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // TCP connections accepted so far.
  int connections() const { return accepted_.load(); }

  static void Send(int fd, const std::string& text) {
    size_t sent = 0;
    while (sent < text.size()) {
      ssize_t n = ::send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }

 private:
  void Run() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      connections_.emplace_back([this, fd] {
        Serve(fd);
        ::close(fd);
      });
    }
  }

  void Serve(int fd) {
    std::string buffer;
    while (!stop_) {
      size_t head_end;
      while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
        if (!Receive(fd, &buffer)) return;
      }
      size_t body_length = 0;
      std::string head = buffer.substr(0, head_end);
      for (std::string key : {"Content-Length: ", "content-length: "}) {
        if (size_t at = head.find(key); at != std::string::npos) body_length = std::stoul(head.substr(at + key.size()));
      }
      while (buffer.size() < head_end + 4 + body_length) {
        if (!Receive(fd, &buffer)) return;
      }
      std::string request = buffer.substr(0, head_end + 4 + body_length);
      buffer.erase(0, request.size());
      {
        std::lock_guard lock(mu_);
        requests_.push_back(request);
      }
      respond_(fd, request);
      if (request.find("Connection: close") != std::string::npos) return;
    }
  }

  bool Receive(int fd, std::string* buffer) {
    pollfd p{fd, POLLIN, 0};
    while (!stop_) {
      int ready = ::poll(&p, 1, 50);
      if (ready < 0) return false;
      if (ready == 0) continue;
      char chunk[4096];
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buffer->append(chunk, static_cast<size_t>(n));
      return true;
    }
    return false;
  }

  Responder respond_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_ = false;
  std::atomic<int> accepted_ = 0;
  std::mutex mu_;
  std::vector<std::string> requests_;
  std::vector<std::thread> connections_;  // touched only by thread_, joined after it
  std::thread thread_;
};

std::unique_ptr<HttpTransport> MakeTransport(CurlTransportOptions options = {}) {
  auto transport = NewCurlTransport(options);
  REQUIRE(transport);
  return std::move(*transport);
}

std::string Reply(int status, const std::string& body, const std::string& extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         extra_headers + "\r\n" + body;
}

}  // namespace

TEST_CASE("CurlTransport: status, lower-cased repeated headers, body, request headers and Range") {
  TinyServer server([](int fd, const std::string&) {
    TinyServer::Send(fd, Reply(206, "hello", "WWW-Authenticate: Basic realm=\"a\"\r\nWWW-Authenticate: Bearer realm=\"b\"\r\n"));
  });
  auto transport = MakeTransport();
  HttpRequest request;
  request.url = server.Url("/v2/x");
  request.headers.emplace_back("Accept", "application/json");
  request.range = HttpRequest::ByteRange{5, 10};
  auto response = transport->Perform(request);
  REQUIRE(response);
  CHECK(response->status == 206);
  CHECK(response->body == "hello");
  CHECK(response->HeaderValues("www-authenticate").size() == 2);
  CHECK(response->Header("content-length") == "5");
  std::string sent = server.requests().at(0);
  CHECK(sent.find("GET /v2/x HTTP/1.1") == 0);
  CHECK(sent.find("Accept: application/json") != std::string::npos);
  CHECK(sent.find("Range: bytes=5-14") != std::string::npos);
}

TEST_CASE("CurlTransport: many threads share one transport and its connections") {
  TinyServer server([](int fd, const std::string& request) {
    std::string path = request.substr(4, request.find(' ', 4) - 4);
    TinyServer::Send(fd, Reply(200, path));
  });
  auto transport = MakeTransport();
  std::vector<std::thread> threads;
  std::atomic<int> ok = 0;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        HttpRequest request;
        request.url = server.Url("/p" + std::to_string(t) + "-" + std::to_string(i));
        auto response = transport->Perform(request);
        if (response && response->body == "/p" + std::to_string(t) + "-" + std::to_string(i)) ++ok;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(ok == 20);
  // Kept-alive connections are shared: never more than the threads that asked at once, not one per request.
  int after_threads = server.connections();
  CHECK(after_threads >= 1);
  CHECK(after_threads <= 4);
  // And reused by a caller that comes later, on another thread.
  for (int i = 0; i < 5; ++i) {
    HttpRequest request;
    request.url = server.Url("/later" + std::to_string(i));
    REQUIRE(transport->Perform(request));
  }
  CHECK(server.connections() == after_threads);
}

TEST_CASE("CurlTransport: a redirect to another origin is followed without the Authorization header") {
  TinyServer storage([](int fd, const std::string&) { TinyServer::Send(fd, Reply(200, "blob bytes")); });
  TinyServer registry([&](int fd, const std::string&) {
    TinyServer::Send(fd, Reply(307, "", "Location: " + storage.Url("/signed/blob") + "\r\n"));
  });
  auto transport = MakeTransport();
  HttpRequest request;
  request.url = registry.Url("/v2/app/blobs/sha256:abc");
  request.headers.emplace_back("Authorization", "Bearer registry-secret");
  auto response = transport->Perform(request);
  REQUIRE(response);
  CHECK(response->status == 200);
  CHECK(response->body == "blob bytes");
  CHECK(response->effective_url == storage.Url("/signed/blob"));
  REQUIRE(registry.requests().size() == 1);
  CHECK(registry.requests()[0].find("Authorization: Bearer registry-secret") != std::string::npos);
  REQUIRE(storage.requests().size() == 1);
  CHECK(storage.requests()[0].find("Authorization") == std::string::npos);  // the registry's token stays home
}

TEST_CASE("CurlTransport: PerformAll has every request on the wire at once and answers in order") {
  // The server answers nothing until all four requests have arrived (bounded): a transport that sent them
  // one after another would see the first one time out.
  std::atomic<int> arrived = 0;
  TinyServer server([&](int fd, const std::string& request) {
    ++arrived;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (arrived.load() < 4 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    std::string path = request.substr(4, request.find(' ', 4) - 4);
    TinyServer::Send(fd, Reply(arrived.load() >= 4 ? 200 : 503, path));
  });
  auto transport = MakeTransport();
  std::vector<HttpRequest> requests(4);
  for (int i = 0; i < 4; ++i) {
    requests[i].url = server.Url("/r" + std::to_string(i));
    requests[i].timeout = 5s;
  }
  std::vector<Result<HttpResponse>> answers = transport->PerformAll(requests);
  REQUIRE(answers.size() == 4);
  for (int i = 0; i < 4; ++i) {
    REQUIRE(answers[i]);
    CHECK(answers[i]->status == 200);
    CHECK(answers[i]->body == "/r" + std::to_string(i));
  }
}

TEST_CASE("CurlTransport: 2xx bodies go to the sink, error bodies stay in the response") {
  TinyServer server([](int fd, const std::string& request) {
    if (request.find("/ok") != std::string::npos) {
      TinyServer::Send(fd, Reply(200, std::string(100000, 'z')));
    } else {
      TinyServer::Send(fd, Reply(404, "{\"errors\":[]}"));
    }
  });
  auto transport = MakeTransport();
  std::string streamed;
  HttpRequest request;
  request.url = server.Url("/ok");
  request.sink = [&](int status, std::string_view data) {
    CHECK(status == 200);
    streamed.append(data);
    return Ok();
  };
  auto ok = transport->Perform(request);
  REQUIRE(ok);
  CHECK(ok->body.empty());
  CHECK(streamed == std::string(100000, 'z'));

  request.url = server.Url("/missing");
  auto missing = transport->Perform(request);
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(missing->body == "{\"errors\":[]}");

  SUBCASE("a sink error aborts the transfer and comes back unchanged") {
    request.url = server.Url("/ok");
    request.sink = [](int, std::string_view) { return Status(Error(ErrorCode::kNoSpace, "disk full")); };
    auto stopped = transport->Perform(request);
    REQUIRE_FALSE(stopped);
    CHECK(stopped.error().code() == ErrorCode::kNoSpace);
  }
  SUBCASE("a body over the cap is kCorrupt") {
    request.url = server.Url("/ok");
    request.sink = nullptr;
    request.max_body_bytes = 1000;
    auto capped = transport->Perform(request);
    REQUIRE_FALSE(capped);
    CHECK(capped.error().code() == ErrorCode::kCorrupt);
  }
}

TEST_CASE("CurlTransport: PUT streams the body from a file") {
  std::string path = "/tmp/lazyfs-http-test-body-" + std::to_string(::getpid());
  std::string content(70000, 'q');
  content += "end";
  std::ofstream(path) << content;
  TinyServer server([](int fd, const std::string&) { TinyServer::Send(fd, Reply(201, "")); });
  auto transport = MakeTransport();
  HttpRequest request;
  request.method = "PUT";
  request.url = server.Url("/upload?digest=x");
  request.body_file = path;
  request.body_file_size = content.size();
  request.headers.emplace_back("Expect", "");  // the tiny server does not speak 100-continue
  auto response = transport->Perform(request);
  std::remove(path.c_str());
  REQUIRE(response);
  CHECK(response->status == 201);
  std::string sent = server.requests().at(0);
  CHECK(sent.find("PUT /upload?digest=x HTTP/1.1") == 0);
  CHECK(sent.ends_with("\r\n\r\n" + content));
}

TEST_CASE("CurlTransport: an error status whose body is cut short is still an answer") {
  // docker-registry's 416 announces the blob's length as Content-Length and sends a short text body.
  TinyServer server([](int fd, const std::string&) {
    TinyServer::Send(fd, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 100\r\n\r\nshort");
    ::shutdown(fd, SHUT_RDWR);
  });
  auto transport = MakeTransport();
  HttpRequest request;
  request.url = server.Url("/blob");
  request.range = HttpRequest::ByteRange{1000, 10};
  auto response = transport->Perform(request);
  REQUIRE(response);
  CHECK(response->status == 416);
}

TEST_CASE("CurlTransport: transport failures are retryable errors") {
  SUBCASE("connection refused") {
    int port;
    {
      TinyServer closed([](int, const std::string&) {});
      port = std::stoi(closed.Url("").substr(17));
    }
    auto transport = MakeTransport();
    HttpRequest request;
    request.url = "http://127.0.0.1:" + std::to_string(port) + "/";
    auto response = transport->Perform(request);
    REQUIRE_FALSE(response);
    CHECK(response.error().code() == ErrorCode::kNetwork);
    CHECK(response.error().retryable());
  }
  SUBCASE("a body that stalls trips the low-speed limit") {
    TinyServer server([](int fd, const std::string&) {
      TinyServer::Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial");
      std::this_thread::sleep_for(2500ms);
    });
    CurlTransportOptions options;
    options.low_speed_time = std::chrono::seconds(1);
    auto transport = MakeTransport(options);
    HttpRequest request;
    request.url = server.Url("/stall");
    auto response = transport->Perform(request);
    REQUIRE_FALSE(response);
    CHECK(response.error().code() == ErrorCode::kTimeout);
    CHECK(response.error().retryable());
  }
  SUBCASE("a per-request deadline") {
    TinyServer server([](int, const std::string&) { std::this_thread::sleep_for(1000ms); });
    auto transport = MakeTransport();
    HttpRequest request;
    request.url = server.Url("/slow");
    request.timeout = 200ms;
    auto start = std::chrono::steady_clock::now();
    auto response = transport->Perform(request);
    REQUIRE_FALSE(response);
    CHECK(response.error().code() == ErrorCode::kTimeout);
    CHECK(response.error().retryable());
    CHECK(std::chrono::steady_clock::now() - start < 900ms);
  }
}

TEST_CASE("RedactUrl") {
  CHECK(RedactUrl("https://user:secret@reg.example:5000/v2/x?_state=abc") == "https://***@reg.example:5000/v2/x?…");
  CHECK(RedactUrl("http://h/v2/") == "http://h/v2/");
}

}  // namespace lazyfs::fetch
