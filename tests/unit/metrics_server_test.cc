// The self-metrics endpoint: Prometheus text from several registries,
// /healthz, and a client that never finishes its request.
#include "agent/export/metrics_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

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
