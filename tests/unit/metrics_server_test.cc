// The self-metrics endpoint: Prometheus text from several registries,
// /healthz, and a client that never finishes its request.
#include "agent/export/metrics_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include "agent/export/bpf_map_stats.h"

namespace ember {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string http_get(int port, const std::string& path) {
  int fd = connect_to(port);
  if (fd < 0) return "";
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
  (void)!::write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, size_t(n));
  ::close(fd);
  return out;
}

TEST(PrometheusText, MergesFamiliesAcrossRegistries) {
  Metrics a, b;
  a.counter("ember_samples_lost_total", "reason=\"ring_buffer_full\"", "Samples lost, by reason").add(2);
  b.counter("ember_samples_lost_total", "reason=\"export_queue_full\"").add(3);
  b.gauge("ember_upload_queue_bytes", "server=\"x\"", "Bytes queued").set(42);
  std::string t = prometheus_text({&a, &b});
  EXPECT_EQ(t,
            "# HELP ember_samples_lost_total Samples lost, by reason\n"
            "# TYPE ember_samples_lost_total counter\n"
            "ember_samples_lost_total{reason=\"export_queue_full\"} 3\n"
            "ember_samples_lost_total{reason=\"ring_buffer_full\"} 2\n"
            "# HELP ember_upload_queue_bytes Bytes queued\n"
            "# TYPE ember_upload_queue_bytes gauge\n"
            "ember_upload_queue_bytes{server=\"x\"} 42\n");
}

TEST(MetricsServer, ServesMetricsAndHealth) {
  Metrics m;
  m.counter("ember_test_total", "", "A test counter").add(7);
  bool stopping = false;
  MetricsServer::Options o;
  o.address = *parse_listen_address("127.0.0.1:0");
  o.metrics_text = [&] { return prometheus_text({&m}); };
  o.health = [&]() -> std::pair<int, std::string> {
    return {stopping ? 503 : 200, stopping ? "stopping\n" : "ok\n"};
  };
  auto s = MetricsServer::create(o);
  ASSERT_TRUE(s.ok()) << s.error().message;
  int port = (*s)->port();
  ASSERT_GT(port, 0);

  std::string r = http_get(port, "/metrics");
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  EXPECT_THAT(r, HasSubstr("\r\n\r\n# HELP ember_test_total A test counter\n"));
  EXPECT_THAT(r, HasSubstr("ember_test_total 7\n"));
  EXPECT_THAT(http_get(port, "/healthz"), HasSubstr("200 OK"));
  stopping = true;
  std::string h = http_get(port, "/healthz");
  EXPECT_THAT(h, HasSubstr("503 Service Unavailable"));
  EXPECT_THAT(h, HasSubstr("stopping"));
  EXPECT_THAT(http_get(port, "/nope"), HasSubstr("404 Not Found"));

  // A client that connects and says nothing does not block others for
  // longer than the I/O timeout.
  int idle = connect_to(port);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THAT(http_get(port, "/metrics"), HasSubstr("ember_test_total 7"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));
  ::close(idle);
}

// 1,000 connections that never send a byte (a port scan, or a tenant that
// can reach the node) do not keep Prometheus from scraping: each costs the
// server nothing until it is closed as the oldest or after 2 s.
TEST(MetricsServer, AThousandSilentConnectionsDoNotBlockAScrape) {
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur < 1200) {
    rlimit want = rl;
    want.rlim_cur = std::min<rlim_t>(rl.rlim_max, 1200);
    ::setrlimit(RLIMIT_NOFILE, &want);
  }
  ::getrlimit(RLIMIT_NOFILE, &rl);
  const int kSilent = int(std::min<rlim_t>(1000, rl.rlim_cur > 100 ? rl.rlim_cur - 100 : 0));
  ASSERT_GE(kSilent, 500) << "RLIMIT_NOFILE too low for this test: " << rl.rlim_cur;

  Metrics counts, m;
  m.counter("ember_test_total", "", "A test counter").add(7);
  MetricsServer::Options o;
  o.address = *parse_listen_address("127.0.0.1:0");
  o.metrics_text = [&] { return prometheus_text({&m}); };
  o.metrics = &counts;
  auto s = MetricsServer::create(o);
  ASSERT_TRUE(s.ok()) << s.error().message;
  const int port = (*s)->port();

  std::vector<int> silent;
  for (int i = 0; i < kSilent; ++i) {
    int fd = connect_to(port);
    ASSERT_GE(fd, 0) << "connection " << i;
    silent.push_back(fd);
  }
  // Each scrape is answered at once, before any silent connection's
  // 2 s timeout could have freed the thread.
  for (int i = 0; i < 5; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_THAT(http_get(port, "/metrics"), HasSubstr("ember_test_total 7"));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1900));
  }
  for (int fd : silent) ::close(fd);
  EXPECT_EQ(counts.counter("ember_metrics_connections_total", "result=\"served\"").value(), 5u);
  // All but the 64 newest silent connections were closed to make room.
  EXPECT_GE(counts.counter("ember_metrics_connections_total", "result=\"evicted\"").value(),
            uint64_t(kSilent - 64));
}

// A request head that never ends is cut off at 8 KiB; one that stops
// midway is closed after 2 s.
TEST(MetricsServer, EndlessAndStalledRequestsAreClosed) {
  Metrics counts;
  MetricsServer::Options o;
  o.address = *parse_listen_address("127.0.0.1:0");
  o.metrics = &counts;
  auto s = MetricsServer::create(o);
  ASSERT_TRUE(s.ok()) << s.error().message;
  const int port = (*s)->port();

  int endless = connect_to(port);
  std::string junk(4096, 'x');
  for (int i = 0; i < 8; ++i)
    if (::send(endless, junk.data(), junk.size(), MSG_NOSIGNAL) < 0) break;
  char buf[256];
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_LE(::read(endless, buf, sizeof(buf)), 0);  // closed without an answer
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1500));
  ::close(endless);

  int stalled = connect_to(port);
  std::string part = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(::send(stalled, part.data(), part.size(), MSG_NOSIGNAL), ssize_t(part.size()));
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(::read(stalled, buf, sizeof(buf)), 0);
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, std::chrono::milliseconds(1500));
  EXPECT_LT(waited, std::chrono::milliseconds(4000));
  ::close(stalled);
  EXPECT_EQ(counts.counter("ember_metrics_connections_total", "result=\"too_large\"").value(), 1u);
  EXPECT_EQ(counts.counter("ember_metrics_connections_total", "result=\"timed_out\"").value(), 1u);
}

TEST(MetricsServer, APortInUseIsAClearError) {
  MetricsServer::Options o;
  o.address = *parse_listen_address("127.0.0.1:0");
  auto first = MetricsServer::create(o);
  ASSERT_TRUE(first.ok());
  o.address.port = (*first)->port();
  auto second = MetricsServer::create(o);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.error().message, HasSubstr("cannot listen on 127.0.0.1:"));
  EXPECT_THAT(second.error().message, HasSubstr("Address already in use"));
}

TEST(BpfMapStats, NoMapsNoRows) {
  // The unit test process holds no BPF map: nothing is reported, nothing fails.
  Metrics m;
  publish_bpf_map_fill(m);
  EXPECT_THAT(prometheus_text({&m}), Not(HasSubstr("ember_bpf_map_entries")));
}

}  // namespace
}  // namespace ember
