// CurlTransport: the libcurl HttpTransport.
//
// Why the multi interface on one worker thread: FUSE serves reads on many threads, and each read may need
// a range from the registry. One CURLM owns the connection cache, the DNS cache and the HTTP/2 sessions,
// so requests from every FUSE thread share warm connections and, over HTTP/2, multiplex onto one TCP+TLS
// connection instead of each thread paying its own handshakes. Callers hand a Transfer to the worker and
// block on its condition variable; the worker adds the easy handle to the multi, drives every transfer
// with curl_multi_perform/curl_multi_poll, and wakes the caller when its transfer completes. Easy handles
// are pooled and reset between uses (the connections live in the multi, not in the easy handles).
//
// Thread safety: Perform may be called from any number of threads. Only the worker thread touches the
// CURLM and the easy handles while they are attached. Callbacks (sink, upload_progress) run on the
// worker thread, so a slow sink delays other transfers: sinks should copy or hash and return.
// Lock order: mu_ only; it is never held across a curl call that does I/O or across a callback.
#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "common/fd.h"
#include "common/log.h"
#include "common/version.h"
#include "fetch/http_transport.h"

namespace lazyfs::fetch {
namespace {

const std::string kUserAgent = std::string("lazyfs/") + kVersion;

struct EasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;

struct MultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
using MultiHandle = std::unique_ptr<CURLM, MultiDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

// An owned curl_slist: curl_slist_append returns the new head (or null on allocation failure, leaving the
// old list intact), which is easy to leak by hand.
class Slist {
 public:
  bool Append(const std::string& line) {
    curl_slist* head = curl_slist_append(list_.get(), line.c_str());
    if (head == nullptr) return false;
    (void)list_.release();
    list_.reset(head);
    return true;
  }
  curl_slist* get() const { return list_.get(); }

 private:
  std::unique_ptr<curl_slist, SlistDeleter> list_;
};

// curl_global_init is not thread-safe before 7.84 and must run once per process; a function-local static
// gives exactly that without a mutable global.
bool CurlGlobalInit() {
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return ok;
}

Error CurlError(CURLcode code, const HttpRequest& request, const char* detail) {
  std::string message = request.method + " " + RedactUrl(request.url) + ": " + curl_easy_strerror(code);
  if (detail != nullptr && detail[0] != '\0') message += std::string(" (") + detail + ")";
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return Error(ErrorCode::kTimeout, message, /*retryable=*/true);
    // The network or the server hiccupped: the same request may well succeed on a fresh connection.
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_AGAIN:
      return Error(ErrorCode::kNetwork, message, /*retryable=*/true);
    // A certificate that does not verify will not verify next time either.
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return Error(ErrorCode::kNetwork, "TLS verification failed: " + message, /*retryable=*/false);
    case CURLE_OUT_OF_MEMORY:
      return Error(ErrorCode::kInternal, message, /*retryable=*/false);
    default:
      return Error(ErrorCode::kNetwork, message, /*retryable=*/false);
  }
}

// One exchange in flight. It lives on the calling thread's stack while that thread waits in Perform;
// the worker owns it (and its easy handle) from Submit until it sets `done`.
struct Transfer {
  const HttpRequest* request = nullptr;
  HttpResponse response;
  EasyHandle easy;
  Slist headers;
  std::string range;
  char error_buffer[CURL_ERROR_SIZE] = {};
  uint64_t max_body_bytes = 0;
  // Body upload state: memory body or file.
  UniqueFd body_fd;
  uint64_t body_offset = 0;
  // The first error raised inside a callback (sink, size cap, body file read); it wins over curl's code.
  std::optional<Error> callback_error;
  std::optional<Error> result_error;
  bool done = false;  // guarded by CurlTransport::mu_
  std::condition_variable done_cv;
};

int CurrentStatus(Transfer* transfer) {
  long status = 0;
  curl_easy_getinfo(transfer->easy.get(), CURLINFO_RESPONSE_CODE, &status);
  return static_cast<int>(status);
}

size_t HeaderCallback(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  std::string_view line(data, size * count);
  // Each response (a redirect, a 100 Continue, the final answer) starts with a status line; keep only the
  // headers of the last one.
  if (line.starts_with("HTTP/")) {
    transfer->response.headers.clear();
    return size * count;
  }
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * count;
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  transfer->response.headers.emplace_back(AsciiLower(line.substr(0, colon)), std::string(value));
  return size * count;
}

size_t WriteCallback(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  std::string_view piece(data, size * count);
  int status = CurrentStatus(transfer);
  if (transfer->request->sink && status >= 200 && status < 300) {
    Status sunk = transfer->request->sink(status, piece);
    if (!sunk) {
      transfer->callback_error = std::move(sunk).error();
      return CURL_WRITEFUNC_ERROR;
    }
    return piece.size();
  }
  if (transfer->response.body.size() + piece.size() > transfer->max_body_bytes) {
    transfer->callback_error = Error(ErrorCode::kCorrupt,
                                     transfer->request->method + " " + RedactUrl(transfer->request->url) +
                                         ": response body larger than " +
                                         std::to_string(transfer->max_body_bytes) + " bytes");
    return CURL_WRITEFUNC_ERROR;
  }
  transfer->response.body.append(piece);
  return piece.size();
}

size_t ReadCallback(char* buffer, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t want = size * count;
  const HttpRequest& request = *transfer->request;
  if (request.body) {
    size_t left = request.body->size() - static_cast<size_t>(transfer->body_offset);
    size_t n = std::min(want, left);
    std::memcpy(buffer, request.body->data() + transfer->body_offset, n);
    transfer->body_offset += n;
    return n;
  }
  if (!transfer->body_fd.valid()) return 0;
  while (true) {
    ssize_t n = ::pread(transfer->body_fd.get(), buffer, want, static_cast<off_t>(transfer->body_offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      transfer->callback_error = PosixError(errno, "read " + request.body_file);
      return CURL_READFUNC_ABORT;
    }
    transfer->body_offset += static_cast<uint64_t>(n);
    return static_cast<size_t>(n);
  }
}

// curl rewinds the body when it must send it again (a redirect, a connection that died before the
// server answered), so the body source has to be seekable.
int SeekCallback(void* user, curl_off_t offset, int origin) {
  auto* transfer = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
  transfer->body_offset = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

int ProgressCallback(void* user, curl_off_t /*dltotal*/, curl_off_t /*dlnow*/, curl_off_t ultotal,
                     curl_off_t ulnow) {
  auto* transfer = static_cast<Transfer*>(user);
  if (transfer->request->upload_progress && ultotal > 0) {
    transfer->request->upload_progress(static_cast<uint64_t>(ulnow), static_cast<uint64_t>(ultotal));
  }
  return 0;
}

class CurlTransport : public HttpTransport {
 public:
  CurlTransport(const CurlTransportOptions& options, MultiHandle multi)
      : options_(options), multi_(std::move(multi)) {
    worker_ = std::thread([this] { Run(); });
  }

  ~CurlTransport() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    curl_multi_wakeup(multi_.get());
    worker_.join();
  }

  Result<HttpResponse> Perform(const HttpRequest& request) override {
    return std::move(PerformAll(std::span<const HttpRequest>(&request, 1)).front());
  }

  // Every transfer is set up on this thread, handed to the worker in one go, and waited for here.
  std::vector<Result<HttpResponse>> PerformAll(std::span<const HttpRequest> requests) override {
    std::vector<Transfer> transfers(requests.size());  // never resized: the worker holds pointers into it
    std::vector<std::optional<Error>> failed(requests.size());
    std::vector<Transfer*> ready;
    for (size_t i = 0; i < requests.size(); ++i) {
      transfers[i].request = &requests[i];
      if (Status setup = Setup(transfers[i]); !setup) {
        failed[i] = std::move(setup).error();
      } else {
        ready.push_back(&transfers[i]);
      }
    }
    bool stopping = false;
    {
      std::lock_guard lock(mu_);
      stopping = stopping_;
      if (!stopping) incoming_.insert(incoming_.end(), ready.begin(), ready.end());
    }
    if (stopping) {
      for (Transfer* t : ready) failed[static_cast<size_t>(t - transfers.data())] = Internal("http transport is shutting down");
      ready.clear();
    } else if (!ready.empty()) {
      curl_multi_wakeup(multi_.get());
    }
    {
      std::unique_lock lock(mu_);
      for (Transfer* t : ready) t->done_cv.wait(lock, [&] { return t->done; });
    }
    std::vector<Result<HttpResponse>> out;
    out.reserve(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      Transfer& t = transfers[i];
      ReturnEasy(std::move(t.easy));
      if (failed[i]) {
        out.push_back(*std::move(failed[i]));
      } else if (t.result_error) {
        out.push_back(*std::move(t.result_error));
      } else {
        out.push_back(std::move(t.response));
      }
    }
    return out;
  }

 private:
  EasyHandle TakeEasy() {
    {
      std::lock_guard lock(mu_);
      if (!idle_easy_.empty()) {
        EasyHandle easy = std::move(idle_easy_.back());
        idle_easy_.pop_back();
        curl_easy_reset(easy.get());
        return easy;
      }
    }
    return EasyHandle(curl_easy_init());
  }

  void ReturnEasy(EasyHandle easy) {
    if (!easy) return;
    std::lock_guard lock(mu_);
    if (idle_easy_.size() < kMaxIdleEasy) idle_easy_.push_back(std::move(easy));
  }

  // Configures the easy handle on the calling thread, so the worker only attaches and drives it.
  Status Setup(Transfer& t) {
    const HttpRequest& request = *t.request;
    t.easy = TakeEasy();
    if (!t.easy) return Internal("curl_easy_init failed");
    CURL* easy = t.easy.get();
    t.max_body_bytes = request.max_body_bytes != 0 ? request.max_body_bytes : options_.max_body_bytes;

    curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(easy, CURLOPT_PRIVATE, &t);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t.error_buffer);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, kUserAgent.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    // Registries redirect blob GETs to object storage. libcurl drops our Authorization header when the
    // redirect leaves the host, which is what we want: the registry token means nothing to S3.
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    if (request.timeout.count() > 0) {
      curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    }
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_bytes);
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.low_speed_time.count()));
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);
    if (!options_.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, options_.ca_file.c_str());
    if (!options_.netrc_file.empty()) {
      curl_easy_setopt(easy, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_OPTIONAL));
      curl_easy_setopt(easy, CURLOPT_NETRC_FILE, options_.netrc_file.c_str());
    }

    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, HeaderCallback);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, WriteCallback);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);

    for (const auto& [name, value] : request.headers) {
      // "Name;" is curl's spelling of a header with an empty value; "Name:" would delete it.
      std::string line = value.empty() ? name + ";" : name + ": " + value;
      if (!t.headers.Append(line)) return Internal("curl_slist_append failed");
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t.headers.get());

    if (request.range) {
      t.range = std::to_string(request.range->offset) + "-";
      if (request.range->length != 0) {
        t.range += std::to_string(request.range->offset + request.range->length - 1);
      }
      curl_easy_setopt(easy, CURLOPT_RANGE, t.range.c_str());
    }

    bool has_body = request.body.has_value() || !request.body_file.empty();
    curl_off_t body_size = 0;
    if (request.body) {
      body_size = static_cast<curl_off_t>(request.body->size());
    } else if (!request.body_file.empty()) {
      t.body_fd = LAZYFS_TRY(OpenFile(request.body_file, O_RDONLY | O_CLOEXEC));
      body_size = static_cast<curl_off_t>(request.body_file_size);
    }
    if (has_body || request.method == "POST" || request.method == "PUT") {
      curl_easy_setopt(easy, CURLOPT_READFUNCTION, ReadCallback);
      curl_easy_setopt(easy, CURLOPT_READDATA, &t);
      curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, SeekCallback);
      curl_easy_setopt(easy, CURLOPT_SEEKDATA, &t);
    }
    if (request.method == "GET") {
      curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else if (request.method == "HEAD") {
      curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (request.method == "PUT") {
      curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, body_size);
    } else if (request.method == "POST") {
      curl_easy_setopt(easy, CURLOPT_POST, 1L);
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, body_size);
    } else {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    if (request.upload_progress) {
      curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, ProgressCallback);
      curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &t);
      curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    }
    return Ok();
  }

  // Runs on the worker thread once curl is done with the transfer.
  void Finish(Transfer* t, CURLcode code) {
    curl_multi_remove_handle(multi_.get(), t->easy.get());
    int status = CurrentStatus(t);
    // Some servers (docker-registry's 416) announce a Content-Length their error body does not have. The
    // status is the answer there and the body only decoration, so a cut-short error body is no failure.
    bool error_body_cut = code == CURLE_PARTIAL_FILE && status >= 400;
    if (t->callback_error) {
      t->result_error = std::move(t->callback_error);
    } else if (code != CURLE_OK && !error_body_cut) {
      t->result_error = CurlError(code, *t->request, t->error_buffer);
    } else {
      t->response.status = status;
      char* url = nullptr;
      curl_easy_getinfo(t->easy.get(), CURLINFO_EFFECTIVE_URL, &url);
      if (url != nullptr) t->response.effective_url = url;
    }
    std::lock_guard lock(mu_);
    t->done = true;
    t->done_cv.notify_one();
  }

  void Fail(Transfer* t, Error error) {
    t->result_error = std::move(error);
    std::lock_guard lock(mu_);
    t->done = true;
    t->done_cv.notify_one();
  }

  void Run() {
    int running = 0;
    while (true) {
      std::deque<Transfer*> incoming;
      {
        std::lock_guard lock(mu_);
        incoming.swap(incoming_);
        if (stopping_ && running == 0 && incoming.empty()) break;
      }
      for (Transfer* t : incoming) {
        CURLMcode added = curl_multi_add_handle(multi_.get(), t->easy.get());
        if (added != CURLM_OK) Fail(t, Internal(std::string("curl_multi_add_handle: ") + curl_multi_strerror(added)));
      }
      curl_multi_perform(multi_.get(), &running);
      int queued = 0;
      while (CURLMsg* message = curl_multi_info_read(multi_.get(), &queued)) {
        if (message->msg != CURLMSG_DONE) continue;
        Transfer* t = nullptr;
        curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &t);
        Finish(t, message->data.result);
      }
      // curl_multi_poll returns early on socket activity, on curl's own timers and on curl_multi_wakeup.
      curl_multi_poll(multi_.get(), nullptr, 0, 1000, nullptr);
    }
  }

  static constexpr size_t kMaxIdleEasy = 64;

  // Constant after construction.
  const CurlTransportOptions options_;
  MultiHandle multi_;  // used by the worker thread; curl_multi_wakeup is the one call safe from others

  std::mutex mu_;
  std::deque<Transfer*> incoming_;         // guarded by mu_
  std::vector<EasyHandle> idle_easy_;      // guarded by mu_
  bool stopping_ = false;                  // guarded by mu_

  std::thread worker_;  // last member: started after everything it uses exists
};

}  // namespace

Result<std::unique_ptr<HttpTransport>> NewCurlTransport(const CurlTransportOptions& options) {
  if (!CurlGlobalInit()) return Internal("curl_global_init failed");
  MultiHandle multi(curl_multi_init());
  if (!multi) return Internal("curl_multi_init failed");
  curl_multi_setopt(multi.get(), CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  curl_multi_setopt(multi.get(), CURLMOPT_MAX_HOST_CONNECTIONS, options.max_host_connections);
  return std::unique_ptr<HttpTransport>(new CurlTransport(options, std::move(multi)));
}

}  // namespace lazyfs::fetch
