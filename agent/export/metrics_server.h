// MetricsServer: the agent's self-metrics endpoint. Serves
//   GET /metrics  Prometheus text exposition (version 0.0.4)
//   GET /healthz  200 "ok" while the agent runs, 503 once it is stopping
// on one listening socket, from its own thread, one connection at a time
// (scrapes are rare and small). Each connection gets a short I/O timeout, so
// a stuck client cannot hold the thread for long, and is closed after one
// answer.
//
// The server owns its socket and thread; the callbacks it is given run on
// its thread and must be thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "agent/config/config.h"
#include "common/metrics.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace ember {

class MetricsServer {
 public:
  struct Options {
    ListenAddress address;
    std::function<std::string()> metrics_text;
    // Status code and body of /healthz.
    std::function<std::pair<int, std::string>()> health;
  };
  static Result<std::unique_ptr<MetricsServer>> create(Options opts);
  ~MetricsServer();  // wakes and joins the thread
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }  // the bound port (useful with port 0)

 private:
  explicit MetricsServer(Options opts) : opts_(std::move(opts)) {}
  void run();
  void serve(int fd);

  Options opts_;
  UniqueFd listen_fd_;
  UniqueFd wake_read_, wake_write_;  // a pipe that ends poll() on shutdown
  int port_ = 0;
  std::thread thread_;
};

// The whole answer to one request whose head (request line and headers, as
// received, at most a few KiB) is `head`: status line, headers and body.
std::string metrics_http_response(std::string_view head, const MetricsServer::Options& opts);

// One Prometheus text document from several registries: a metric family
// that appears in more than one is written once (one HELP and TYPE line).
std::string prometheus_text(std::initializer_list<const Metrics*> registries);

}  // namespace ember
