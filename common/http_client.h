// HttpClient: a minimal HTTP(S) POST client over libcurl, for the uploaders.
//
// One HttpClient wraps one libcurl easy handle, which keeps its connection
// open between requests (one request per interval would otherwise pay a TCP
// and TLS handshake each time). It is used by exactly one thread, the
// uploader that owns it; libcurl easy handles must not be shared.
//
// Every request has a total timeout and can be aborted from outside (the
// agent's shutdown deadline), so a hanging server can never hold a thread
// longer than either.
//
// Transport is the seam the upload logic is tested through: unit tests
// substitute a fake that plays a server's answers.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
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
};


struct HttpResponse {
  int status = 0;  // 0 when failure != kNone
  TransportFailure failure = TransportFailure::kNone;
  std::string error;  // transport error text (never contains headers or bodies we sent)
  std::string body;   // the server's answer, capped at 64 KiB
  std::string content_type;
  std::optional<Duration> retry_after;  // from a Retry-After header
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
};

class HttpClient final : public Transport {
 public:
  static Result<std::unique_ptr<HttpClient>> create(TlsOptions tls);
  ~HttpClient() override;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResponse post(const HttpRequest& req, const std::function<bool()>& abort) override;

 private:
  struct CurlDeleter {
    void operator()(void* h) const;
  };
  struct SlistDeleter {
    void operator()(::curl_slist* l) const;
  };
  explicit HttpClient(TlsOptions tls);

  TlsOptions tls_;
  std::unique_ptr<void, CurlDeleter> curl_;  // CURL*
};

// "http://h:1/x" with the host swapped, for TLS server_name (exposed for tests).
std::string url_with_host(const std::string& url, const std::string& host);

}  // namespace ember
