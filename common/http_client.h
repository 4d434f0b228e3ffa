// HttpClient: Ember's one libcurl wrapper. It POSTs for the uploaders and
// streams long GETs (the Kubernetes pod watch).
//
// One HttpClient wraps one libcurl easy handle, driven through a multi
// handle, which keeps its connection open between requests (one request per
// interval would otherwise pay a TCP and TLS handshake each time). It is used
// by exactly one thread, the one that owns it; libcurl easy handles must not
// be shared. Only wakeup() may be called from another thread.
//
// Every request has a total timeout and can be aborted from outside (the
// agent's shutdown deadline): the abort condition is checked as data moves,
// at least every 250 ms, and at once after wakeup(), so a hanging server can
// never hold a thread longer than either.
//
// Transport is the seam the upload logic is tested through: unit tests
// substitute a fake that plays a server's answers.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/curl_failure.h"
#include "common/duration.h"
#include "common/result.h"

struct curl_slist;

namespace ember {

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  const std::string* body = nullptr;  // POSTed; not owned
  Duration timeout = std::chrono::seconds(10);
  // Force a new connection (e.g. a TLS file changed since the last one).
  bool fresh_connection = false;
  // 0: the same as `timeout`.
  Duration connect_timeout{0};
  bool https_only = false;       // refuse a plain http:// URL
  bool accept_encoding = false;  // offer gzip/deflate and decode the answer
  bool http1_only = false;       // e.g. a streaming watch over HTTP/1.1 chunks
  std::string user_agent;        // "" : "ember/<version>"
};


struct HttpResponse {
  int status = 0;  // 0 when failure != kNone
  TransportFailure failure = TransportFailure::kNone;
  std::string error;  // transport error text (never contains headers or bodies we sent)
  std::string body;   // the server's answer, capped at 64 KiB
  std::string content_type;
  std::optional<Duration> retry_after;  // from a Retry-After header
  bool aborted = false;       // the abort condition ended the transfer
  bool sink_stopped = false;  // get(): the sink ended the transfer
};

// Sends one request and waits for its answer. Implementations are used by
// one thread at a time (the uploader that owns them).
class Transport {
 public:
  virtual ~Transport() = default;
  // `abort` is polled during the transfer; returning true ends it.
  virtual HttpResponse post(const HttpRequest& req, const std::function<bool()>& abort) = 0;
};

struct TlsOptions {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // Verify the server's certificate for this name (and send it as SNI)
  // while still connecting to the URL's host.
  std::string server_name;
  bool insecure_skip_verify = false;
  // Trust ca_file alone, not also the system's CA directory.
  bool ca_file_only = false;
};

class HttpClient final : public Transport {
 public:
  static Result<std::unique_ptr<HttpClient>> create(TlsOptions tls);
  ~HttpClient() override;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResponse post(const HttpRequest& req, const std::function<bool()>& abort) override;

  // GETs `req.url`, handing the body to `sink` chunk by chunk as it arrives,
  // with the HTTP status; the sink returns false to end the transfer
  // (HttpResponse::sink_stopped). HttpResponse::body stays empty.
  using BodySink = std::function<bool(std::string_view chunk, int status)>;
  HttpResponse get(const HttpRequest& req, const BodySink& sink, const std::function<bool()>& abort);

  // Any thread: a transfer in progress checks its abort condition now.
  void wakeup();

 private:
  struct CurlDeleter {
    void operator()(void* h) const;
  };
  struct MultiDeleter {
    void operator()(void* h) const;
  };
  struct SlistDeleter {
    void operator()(::curl_slist* l) const;
  };
  explicit HttpClient(TlsOptions tls);
  HttpResponse perform(const HttpRequest& req, bool post, const BodySink& sink,
                       const std::function<bool()>& abort);

  TlsOptions tls_;
  std::unique_ptr<void, CurlDeleter> curl_;    // CURL*
  std::unique_ptr<void, MultiDeleter> multi_;  // CURLM*, drives curl_
};

}  // namespace ember
