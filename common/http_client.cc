#include "common/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>

#include "common/url.h"

namespace ember {
namespace {

constexpr size_t kMaxResponseBody = 64 << 10;

struct Transfer {
  CURL* easy;
  std::string* body;                    // post(): the answer, capped
  const HttpClient::BodySink* sink;     // get(): every chunk
  const std::function<bool()>* abort;
  bool sink_stopped = false;
};

size_t on_body(char* data, size_t size, size_t n, void* ctx) {
  auto* t = static_cast<Transfer*>(ctx);
  size_t len = size * n;
  if (t->sink) {
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (!(*t->sink)(std::string_view(data, len), int(status))) {
      t->sink_stopped = true;
      return 0;  // CURLE_WRITE_ERROR ends the transfer
    }
    return len;
  }
  // Keep only the start: error messages are short, and a misbehaving server
  // must not make us buffer without bound.
  if (t->body->size() < kMaxResponseBody)
    t->body->append(data, std::min(len, kMaxResponseBody - t->body->size()));
  return len;
}

int on_progress(void* ctx, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(ctx);
  return (*t->abort && (*t->abort)()) ? 1 : 0;
}

}  // namespace

void HttpClient::CurlDeleter::operator()(void* h) const { curl_easy_cleanup(static_cast<CURL*>(h)); }
void HttpClient::MultiDeleter::operator()(void* h) const { curl_multi_cleanup(static_cast<CURLM*>(h)); }
void HttpClient::SlistDeleter::operator()(::curl_slist* l) const { curl_slist_free_all(l); }

HttpClient::HttpClient(TlsOptions tls) : tls_(std::move(tls)) {}
HttpClient::~HttpClient() {
  // The multi handle goes first: it may still reference the easy handle.
  multi_.reset();
}

Result<std::unique_ptr<HttpClient>> HttpClient::create(TlsOptions tls) {
  // curl_global_init is not thread-safe on every build of libcurl; do it
  // once, from whichever thread creates the first client (the main thread).
  static std::once_flag once;
  static CURLcode init_rc = CURLE_OK;
  std::call_once(once, [] { init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (init_rc != CURLE_OK) return Errorf("cannot initialize libcurl: %s", curl_easy_strerror(init_rc));
  std::unique_ptr<HttpClient> c(new HttpClient(std::move(tls)));
  c->curl_.reset(curl_easy_init());
  c->multi_.reset(curl_multi_init());
  if (!c->curl_ || !c->multi_) return Errorf("cannot create libcurl handles");
  return c;
}

void HttpClient::wakeup() { curl_multi_wakeup(static_cast<CURLM*>(multi_.get())); }

HttpResponse HttpClient::post(const HttpRequest& req, const std::function<bool()>& abort) {
  return perform(req, /*post=*/true, nullptr, abort);
}

HttpResponse HttpClient::get(const HttpRequest& req, const BodySink& sink,
                             const std::function<bool()>& abort) {
  return perform(req, /*post=*/false, sink, abort);
}

HttpResponse HttpClient::perform(const HttpRequest& req, bool post, const BodySink& sink,
                                 const std::function<bool()>& abort) {
  HttpResponse resp;
  CURL* h = static_cast<CURL*>(curl_.get());
  CURLM* multi = static_cast<CURLM*>(multi_.get());
  curl_easy_reset(h);  // keeps the connection cache; clears last request's options

  auto url = Url::parse(req.url);
  if (!url.ok()) {
    // Not the parser's message: it quotes the URL, which may carry
    // credentials, and this text is logged.
    resp.failure = TransportFailure::kOther;
    resp.error = "the request URL is not a valid URL";
    return resp;
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  std::unique_ptr<curl_slist, SlistDeleter> connect_to;
  auto add_header = [&](const std::string& line) {
    curl_slist* l = curl_slist_append(headers.get(), line.c_str());
    if (l) {
      (void)headers.release();
      headers.reset(l);
    }
  };
  for (const auto& line : req.headers) add_header(line);
  // Large bodies would otherwise wait for a "100 Continue" first.
  if (post) add_header("Expect:");

  if (!tls_.server_name.empty()) {
    // Verify (and send SNI for) server_name while connecting to the URL's
    // real host: the request goes to server_name, rerouted by CONNECT_TO,
    // and the Host header keeps the original authority.
    const std::string host = url->host(), port = url->port(), authority = url->authority();
    if (auto set = url->set_host(tls_.server_name); !set.ok()) {
      resp.failure = TransportFailure::kOther;
      resp.error = set.error().message;
      return resp;
    }
    const std::string rule = url->host() + ":" + port + ":" + host + ":" + port;
    connect_to.reset(curl_slist_append(nullptr, rule.c_str()));
    add_header("Host: " + authority);
  }
  const std::string target = url->str();

  Transfer t{h, &resp.body, sink ? &sink : nullptr, &abort};
  char errbuf[CURL_ERROR_SIZE] = {0};
  const long timeout_ms = long(std::max<int64_t>(1, req.timeout.count() / 1'000'000));
  const long connect_ms = req.connect_timeout.count() > 0
                              ? long(std::max<int64_t>(1, req.connect_timeout.count() / 1'000'000))
                              : timeout_ms;
  curl_easy_setopt(h, CURLOPT_URL, target.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, req.https_only ? "https" : "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // we run on our own thread; no SIGALRM
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect would resend credentials elsewhere
  const std::string agent = req.user_agent.empty() ? "ember/" EMBER_UPLOAD_VERSION : req.user_agent;
  curl_easy_setopt(h, CURLOPT_USERAGENT, agent.c_str());
  if (req.http1_only) curl_easy_setopt(h, CURLOPT_HTTP_VERSION, long(CURL_HTTP_VERSION_1_1));
  if (req.accept_encoding) curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  static const std::string kEmpty;
  const std::string& body = req.body ? *req.body : kEmpty;
  if (post) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.size()));
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  if (connect_to) curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  if (req.fresh_connection) curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);

  // TLS: verification stays on unless explicitly skipped.
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, tls_.insecure_skip_verify ? 0L : 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, tls_.insecure_skip_verify ? 0L : 2L);
  if (!tls_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, tls_.ca_file.c_str());
  if (tls_.ca_file_only) curl_easy_setopt(h, CURLOPT_CAPATH, static_cast<char*>(nullptr));
  if (!tls_.cert_file.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, tls_.cert_file.c_str());
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
  }
  if (!tls_.key_file.empty()) curl_easy_setopt(h, CURLOPT_SSLKEY, tls_.key_file.c_str());
  // Re-read the CA file for every new connection, so a rotated CA applies
  // without a restart (connections are reused, so this is rare).
  curl_easy_setopt(h, CURLOPT_CA_CACHE_TIMEOUT, 0L);

  // Driven through the multi handle so that wakeup() can end a blocked
  // transfer (a watch that waits minutes for its next event) at once.
  CURLcode rc = CURLE_OK;
  bool done = false;
  curl_multi_add_handle(multi, h);
  for (;;) {
    int running = 0;
    if (curl_multi_perform(multi, &running) != CURLM_OK) {
      rc = CURLE_FAILED_INIT;
      break;
    }
    int queued = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &queued)) {
      if (m->msg == CURLMSG_DONE && m->easy_handle == h) {
        rc = m->data.result;
        done = true;
      }
    }
    if (done || running == 0) break;
    if (abort && abort()) {
      resp.aborted = true;
      break;
    }
    curl_multi_poll(multi, nullptr, 0, 250, nullptr);
  }
  curl_multi_remove_handle(multi, h);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(h, CURLOPT_CONNECT_TO, nullptr);
  resp.sink_stopped = t.sink_stopped;
  if (resp.aborted || rc == CURLE_ABORTED_BY_CALLBACK) {
    resp.aborted = true;
    resp.failure = classify_curl_failure(CURLE_ABORTED_BY_CALLBACK);
    resp.error = "aborted";
    resp.body.clear();
    return resp;
  }
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && t.sink_stopped)) {
    // A transfer cut mid-body still reports the status it started with;
    // what matters is that it failed.
    resp.failure = classify_curl_failure(rc);
    resp.error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    resp.body.clear();
    return resp;
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  resp.status = int(status);
  char* ct = nullptr;
  if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) resp.content_type = ct;
  curl_off_t retry_after = 0;
  if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
    resp.retry_after = std::chrono::seconds(retry_after);
  return resp;
}

}  // namespace ember
