#include "agent/export/metrics_server.h"
#include "common/thread_name.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <vector>

#include "common/log.h"

namespace ember {
namespace {

constexpr int kIoTimeoutMs = 2000;
constexpr size_t kMaxRequestHead = 8192;
constexpr size_t kMaxConnections = 64;
// Connections accepted per poll round, so a flood cannot starve the
// connections already open of their turn.
constexpr int kAcceptsPerRound = 64;

bool head_complete(const std::string& head) {
  return head.find("\r\n\r\n") != std::string::npos || head.find("\n\n") != std::string::npos;
}

std::string reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
  }
  return "Error";
}

}  // namespace

std::string prometheus_text(std::initializer_list<const Metrics*> registries) {
  struct Family {
    Metrics::Kind kind = Metrics::Kind::kCounter;
    std::string help;
    std::map<std::string, uint64_t> rows;  // labels -> value
  };
  std::map<std::string, Family> families;
  for (const Metrics* m : registries) {
    if (!m) continue;
    for (const auto& r : m->snapshot()) {
      Family& f = families[r.name];
      f.kind = r.kind;
      if (!r.help.empty()) f.help = r.help;
      // The same series in two registries (e.g. a counter both the session
      // and the exporter touch) is one series: sum.
      f.rows[r.labels] += r.value;
    }
  }
  std::string out;
  for (const auto& [name, f] : families) {
    if (!f.help.empty()) out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + (f.kind == Metrics::Kind::kCounter ? " counter\n" : " gauge\n");
    for (const auto& [labels, v] : f.rows) {
      // A family's placeholder row (no labels) registered only to carry HELP
      // is left out when the family has labeled rows.
      if (labels.empty() && v == 0 && f.rows.size() > 1) continue;
      // Appended piece by piece (also avoids gcc 12's false -Wrestrict on
      // string concatenation, PR105329).
      out += name;
      if (!labels.empty()) out.append("{").append(labels).append("}");
      out.append(" ").append(std::to_string(v)).append("\n");
    }
  }
  return out;
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::create(Options opts) {
  std::unique_ptr<MetricsServer> s(new MetricsServer(std::move(opts)));
  const ListenAddress& a = s->opts_.address;
  bool v6 = a.host.find(':') != std::string::npos;
  s->listen_fd_.reset(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s->listen_fd_.valid()) return Errorf("metrics: socket: %s", std::strerror(errno));
  int one = 1;
  ::setsockopt(s->listen_fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(uint16_t(a.port));
    inet_pton(AF_INET6, a.host.c_str(), &sa->sin6_addr);
    len = sizeof(*sa);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(uint16_t(a.port));
    if (a.host.empty()) sa->sin_addr.s_addr = htonl(INADDR_ANY);
    else inet_pton(AF_INET, a.host.c_str(), &sa->sin_addr);
    len = sizeof(*sa);
  }
  std::string where = (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
  if (::bind(s->listen_fd_.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
    return Errorf("metrics.listen: cannot listen on %s: %s (set metrics.listen to another "
                  "address, or \"\" to turn the endpoint off)",
                  where.c_str(), std::strerror(errno));
  if (::listen(s->listen_fd_.get(), SOMAXCONN) != 0)
    return Errorf("metrics: listen on %s: %s", where.c_str(), std::strerror(errno));
  sockaddr_storage bound{};
  socklen_t blen = sizeof(bound);
  ::getsockname(s->listen_fd_.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
  s->port_ = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
    return Errorf("metrics: pipe: %s", std::strerror(errno));
  s->wake_read_.reset(p[0]);
  s->wake_write_.reset(p[1]);
  s->thread_ = std::thread([p = s.get()] { p->run(); });
  return s;
}

MetricsServer::~MetricsServer() {
  if (wake_write_.valid()) {
    char c = 1;
    (void)!::write(wake_write_.get(), &c, 1);
  }
  if (thread_.joinable()) thread_.join();
}

void MetricsServer::count(const char* result) {
  if (!opts_.metrics) return;
  // (Appended, not "a" + b + "c": gcc 12 warns falsely on that, PR105329.)
  std::string labels = "result=\"";
  labels.append(result).push_back('"');
  opts_.metrics
      ->counter("ember_metrics_connections_total", labels,
                "Connections to the metrics endpoint, by outcome: served, closed by the "
                "client, timed_out, too_large (request head over 8 KiB), evicted (the "
                "oldest, when 64 were open)")
      .add(1);
}

void MetricsServer::run() {
  name_this_thread("ember-metrics");
  using Clock = std::chrono::steady_clock;
  struct Conn {
    UniqueFd fd;
    std::string in;          // request head so far
    std::string out;         // the answer, once the head is complete
    size_t sent = 0;
    Clock::time_point deadline;
    bool closed = false;
  };
  std::deque<Conn> conns;  // oldest first
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({listen_fd_.get(), POLLIN, 0});
    fds.push_back({wake_read_.get(), POLLIN, 0});
    Clock::time_point next_deadline = Clock::time_point::max();
    for (const Conn& c : conns) {
      fds.push_back({c.fd.get(), short(c.out.empty() ? POLLIN : POLLOUT), 0});
      next_deadline = std::min(next_deadline, c.deadline);
    }
    int timeout_ms = -1;
    if (!conns.empty()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_deadline - Clock::now());
      timeout_ms = int(std::clamp<int64_t>(left.count() + 1, 0, kIoTimeoutMs));
    }
    int n = ::poll(fds.data(), nfds_t(fds.size()), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      EMBER_WARN_LIMITED("metrics: poll failed: %s", std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;

    // Serve the open connections (fds[2 + i] is conns[i]).
    const auto now = Clock::now();
    for (size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      const short rev = fds[2 + i].revents;
      if (c.out.empty() && (rev & (POLLIN | POLLHUP | POLLERR))) {
        char buf[2048];
        for (;;) {
          ssize_t r = ::recv(c.fd.get(), buf, sizeof(buf), 0);
          if (r < 0 && errno == EINTR) continue;
          if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
              c.closed = true;
              count("closed");
            }
            break;
          }
          if (r == 0) {
            c.closed = true;
            count("closed");
            break;
          }
          c.in.append(buf, size_t(r));
          if (head_complete(c.in)) {
            c.out = metrics_http_response(c.in, opts_);
            break;
          }
          if (c.in.size() > kMaxRequestHead) {
            c.closed = true;
            count("too_large");
            break;
          }
        }
      }
      if (!c.closed && !c.out.empty()) {
        // Write what the socket takes now; the rest on POLLOUT.
        while (c.sent < c.out.size()) {
          ssize_t w = ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
              c.closed = true;
              count("closed");
            }
            break;
          }
          c.sent += size_t(w);
        }
        if (!c.closed && c.sent == c.out.size()) {
          c.closed = true;
          count("served");
        }
      }
      if (!c.closed && now >= c.deadline) {
        c.closed = true;
        count("timed_out");
      }
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](const Conn& c) { return c.closed; }),
                conns.end());

    if (!(fds[0].revents & POLLIN)) continue;
    for (int k = 0; k < kAcceptsPerRound; ++k) {
      UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!fd.valid()) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE)
          EMBER_WARN_LIMITED("metrics: cannot accept a connection: %s", std::strerror(errno));
        break;  // EAGAIN: none left
      }
      if (conns.size() >= kMaxConnections) {
        conns.pop_front();
        count("evicted");
      }
      Conn c;
      c.fd = std::move(fd);
      c.deadline = Clock::now() + std::chrono::milliseconds(kIoTimeoutMs);
      conns.push_back(std::move(c));
    }
  }
}

std::string metrics_http_response(std::string_view head, const MetricsServer::Options& opts) {
  size_t sp1 = head.find(' ');
  size_t sp2 = sp1 == std::string::npos ? std::string::npos : head.find(' ', sp1 + 1);
  int status = 200;
  std::string body, type = "text/plain; charset=utf-8";
  std::string method(sp1 == std::string::npos ? std::string_view() : head.substr(0, sp1));
  std::string target(sp2 == std::string::npos ? std::string_view() : head.substr(sp1 + 1, sp2 - sp1 - 1));
  std::string path = target.substr(0, target.find('?'));
  if (method.empty() || target.empty()) {
    status = 400;
    body = "bad request\n";
  } else if (method != "GET" && method != "HEAD") {
    status = 405;
    body = "only GET\n";
  } else if (path == "/metrics") {
    body = opts.metrics_text ? opts.metrics_text() : "";
    type = "text/plain; version=0.0.4; charset=utf-8";
  } else if (path == "/healthz" || path == "/health") {
    auto h = opts.health ? opts.health() : std::make_pair(200, std::string("ok\n"));
    status = h.first;
    body = h.second;
  } else if (path == "/") {
    body = "Ember agent: /metrics (Prometheus), /healthz\n";
  } else {
    status = 404;
    body = "not found\n";
  }
  std::string resp = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
                     "\r\nContent-Type: " + type +
                     "\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n";
  if (method != "HEAD") resp += body;
  return resp;
}

}  // namespace ember
