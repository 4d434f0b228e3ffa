#include "common/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>

namespace ember {
namespace {

constexpr size_t kMaxResponseBody = 64 << 10;

struct Transfer {
  std::string* body;
  std::string* content_type;
  const std::function<bool()>* abort;
};

size_t on_body(char* data, size_t size, size_t n, void* ctx) {
  auto* t = static_cast<Transfer*>(ctx);
  size_t len = size * n;
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

std::string url_with_host(const std::string& url, const std::string& host) {
  size_t sep = url.find("://");
  if (sep == std::string::npos) return url;
  size_t start = sep + 3;
  size_t end = url.find('/', start);
  if (end == std::string::npos) end = url.size();
  std::string authority = url.substr(start, end - start);
  std::string port;
  size_t bracket = authority.rfind(']');
  size_t colon = authority.rfind(':');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket))
    port = authority.substr(colon);
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return url.substr(0, start) + h + port + url.substr(end);
}

void HttpClient::CurlDeleter::operator()(void* h) const { curl_easy_cleanup(static_cast<CURL*>(h)); }
void HttpClient::SlistDeleter::operator()(::curl_slist* l) const { curl_slist_free_all(l); }

HttpClient::HttpClient(TlsOptions tls) : tls_(std::move(tls)) {}
HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::create(TlsOptions tls) {
  // curl_global_init is not thread-safe on every build of libcurl; do it
  // once, from whichever thread creates the first client (the main thread).
  static std::once_flag once;
  static CURLcode init_rc = CURLE_OK;
  std::call_once(once, [] { init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (init_rc != CURLE_OK) return Errorf("cannot initialize libcurl: %s", curl_easy_strerror(init_rc));
  std::unique_ptr<HttpClient> c(new HttpClient(std::move(tls)));
  c->curl_.reset(curl_easy_init());
  if (!c->curl_) return Errorf("cannot create a libcurl handle");
  return c;
}

HttpResponse HttpClient::post(const HttpRequest& req, const std::function<bool()>& abort) {
  HttpResponse resp;
  CURL* h = static_cast<CURL*>(curl_.get());
  curl_easy_reset(h);  // keeps the connection cache; clears last request's options

  std::string url = req.url;
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
  add_header("Expect:");

  if (!tls_.server_name.empty()) {
    // Verify (and send SNI for) server_name while connecting to the URL's
    // real host: the request goes to server_name, rerouted by CONNECT_TO,
    // and the Host header keeps the original authority.
    size_t sep = url.find("://");
    size_t start = sep == std::string::npos ? 0 : sep + 3;
    size_t end = url.find('/', start);
    std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string host = authority, port = "443";
    size_t bracket = authority.rfind(']');
    size_t colon = authority.rfind(':');
    if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    std::string sni = tls_.server_name;
    std::string sni_host = sni.find(':') != std::string::npos ? "[" + sni + "]" : sni;
    std::string rule = sni_host + ":" + port + ":" + host + ":" + port;
    connect_to.reset(curl_slist_append(nullptr, rule.c_str()));
    add_header("Host: " + authority);
    url = url_with_host(url, sni);
  }

  std::string content_type;
  Transfer t{&resp.body, &content_type, &abort};
  char errbuf[CURL_ERROR_SIZE] = {0};
  long timeout_ms = long(std::max<int64_t>(1, req.timeout.count() / 1'000'000));
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // we run on our own thread; no SIGALRM
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect would resend credentials elsewhere
  curl_easy_setopt(h, CURLOPT_USERAGENT, "ember/" EMBER_UPLOAD_VERSION);
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  static const std::string kEmpty;
  const std::string& body = req.body ? *req.body : kEmpty;
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.size()));
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
  if (!tls_.cert_file.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, tls_.cert_file.c_str());
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
  }
  if (!tls_.key_file.empty()) curl_easy_setopt(h, CURLOPT_SSLKEY, tls_.key_file.c_str());
  // Re-read the CA file for every new connection, so a rotated CA applies
  // without a restart (connections are reused, so this is rare).
  curl_easy_setopt(h, CURLOPT_CA_CACHE_TIMEOUT, 0L);

  CURLcode rc = curl_easy_perform(h);
  resp.failure = classify_curl_failure(rc);
  if (rc != CURLE_OK) {
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
