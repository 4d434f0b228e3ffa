// MetricsServer: the agent's self-metrics endpoint. Serves
//   GET /metrics  Prometheus text exposition (version 0.0.4)
//   GET /healthz  200 "ok" while the agent runs, 503 once it is stopping
// on one listening socket, from its own thread.
//
// Anyone who can reach the port can open connections, so the thread never
// blocks on one: every connection is non-blocking and multiplexed with
// poll(), has 2 s to send its request head (8 KiB at most) and to take the
// answer, and is closed after one answer. At most 64 are open at once; a
// new one past that closes the oldest, so a flood of connections that never
// send a byte (1,000 in the unit test) delays a real scrape by one poll
// round, not by a timeout each. Outcomes are counted in
// ember_metrics_connections_total{result}.
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
    // Where connection outcomes are counted (optional; must outlive the
    // server).
    Metrics* metrics = nullptr;
  };
  static Result<std::unique_ptr<MetricsServer>> create(Options opts);
  ~MetricsServer();  // wakes and joins the thread
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }  // the bound port (useful with port 0)

 private:
  explicit MetricsServer(Options opts) : opts_(std::move(opts)) {}
  void run();
  void count(const char* result);

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
