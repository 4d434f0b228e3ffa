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
#include <cstring>
#include <map>

#include "common/log.h"

namespace ember {
namespace {

constexpr int kIoTimeoutMs = 2000;
constexpr size_t kMaxRequestHead = 8192;

bool write_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += size_t(n);
  }
  return true;
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
      out += name;
      if (!labels.empty()) out += "{" + labels + "}";
      out += " " + std::to_string(v) + "\n";
    }
  }
  return out;
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::create(Options opts) {
  std::unique_ptr<MetricsServer> s(new MetricsServer(std::move(opts)));
  const ListenAddress& a = s->opts_.address;
  bool v6 = a.host.find(':') != std::string::npos;
  s->listen_fd_.reset(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
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
  if (::listen(s->listen_fd_.get(), 16) != 0)
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

void MetricsServer::run() {
  name_this_thread("ember-metrics");
  for (;;) {
    pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      EMBER_WARN_LIMITED("metrics: poll failed: %s", std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;
    timeval tv{kIoTimeoutMs / 1000, (kIoTimeoutMs % 1000) * 1000};
    ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    serve(conn.get());
  }
}

void MetricsServer::serve(int fd) {
  std::string head;
  char buf[2048];
  while (head.find("\r\n\r\n") == std::string::npos && head.find("\n\n") == std::string::npos) {
    if (head.size() > kMaxRequestHead) return;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // closed, or the I/O timeout passed
    head.append(buf, size_t(n));
  }
  write_all(fd, metrics_http_response(head, opts_));
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
