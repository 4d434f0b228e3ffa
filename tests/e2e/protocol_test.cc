// Protocol tests: the upload exporter, in process, against pyroserver (a
// Pyroscope stand-in that decodes requests the way Pyroscope does) over real
// HTTP and HTTPS. What the server recorded is checked field by field, and
// every received pprof must decode with `go tool pprof`.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "agent/export/upload_exporter.h"
#include "common/log.h"
#include "support/pyroserver.h"
#include "unit/profile_builders.h"

namespace ember {
namespace {

using testing::PyroServer;
using testing::Record;
using namespace std::chrono_literals;

constexpr uint64_t kStart = 1'700'000'000'250'000'000ull;  // a wall-clock time, ns

Profile make_profile(Labels labels, uint64_t start_ns,
                     uint64_t leaf_count, uint64_t main_count = 5) {
  auto m = ember::testing::make_mapping("/usr/bin/app", 0x400000, 0x500000, "abcdef");
  auto leaf = ember::testing::make_location(0x401000, m, {"leaf_function"});
  auto caller = ember::testing::make_location(0x402000, m, {"caller_function"});
  Profile p;
  p.labels = ember::testing::labels(std::move(labels));
  p.start_time_ns = start_ns;
  p.end_time_ns = start_ns + 10'000'000'000ull;
  p.frequency_hz = 100;
  p.period_ns = 10'000'000;
  p.samples.push_back(ProfileSample{{leaf, caller}, leaf_count, 42, "app", leaf_count * p.period_ns});
  p.samples.push_back(ProfileSample{{caller}, main_count, 42, "app", main_count * p.period_ns});
  return p;
}

ServerConfig server_for(const PyroServer& s, ServerConfig::Api api = ServerConfig::Api::kPush) {
  ServerConfig c;
  c.url = s.url();
  c.api = api;
  c.timeout = 5s;
  c.min_backoff = 50ms;
  c.max_backoff = 200ms;
  return c;
}

std::unique_ptr<UploadExporter> exporter(std::vector<ServerConfig> servers, Metrics& m,
                                         Duration shutdown = 20s) {
  UploadExporter::Options o;
  o.servers = std::move(servers);
  o.shutdown_timeout = shutdown;
  auto e = UploadExporter::create(o, m);
  EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
  return e.ok() ? std::move(*e) : nullptr;
}

void send(UploadExporter& e, std::vector<Profile> profiles) {
  ProfileBatch b;
  b.profiles = std::move(profiles);
  e.export_batch(std::move(b));
}

// Captures this process's stderr (where logs go) while alive.
class StderrCapture {
 public:
  StderrCapture() {
    saved_ = ::dup(2);
    int fd = ::open((dir_ / "stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~StderrCapture() { restore(); }
  std::string text() {
    restore();
    return e2e::read_file(dir_ / "stderr");
  }

 private:
  void restore() {
    if (saved_ >= 0) {
      ::dup2(saved_, 2);
      ::close(saved_);
      saved_ = -1;
    }
  }
  e2e::TempDir dir_;
  int saved_ = -1;
};

uint64_t counter(const Metrics& m, const std::string& name, const std::string& labels) {
  for (const auto& r : m.snapshot())
    if (r.name == name && r.labels == labels) return r.value;
  return 0;
}

std::string server_label(const ServerConfig& c) { return "server=\"" + c.display_name() + "\""; }

TEST(Protocol, PushSendsOnePushRequestWithOneSeriesPerLabelSet) {
  PyroServer srv;
  ASSERT_TRUE(srv.running()) << srv.log();
  Metrics m;
  auto e = exporter({server_for(srv)}, m);
  send(*e, {make_profile({{"service_name", "web"}, {"env", "prod"}, {"__meta_pod", "hidden"}}, kStart, 30),
            make_profile({{"service_name", "db"}, {"env", "prod"}, {"bad-name", "\xff\xfeok"}},
                         kStart, 7)});
  e->flush();

  auto reqs = srv.requests();
  ASSERT_EQ(reqs.size(), 1u) << "both series go in one request";
  EXPECT_EQ(reqs[0]["path"], "/push.v1.PusherService/Push");
  EXPECT_EQ(reqs[0]["content_type"], "application/proto");
  EXPECT_EQ(reqs[0]["connect_version"], "1");
  EXPECT_EQ(reqs[0]["status"], "200") << reqs[0]["error"];
  EXPECT_EQ(reqs[0]["user_agent"], "ember/0.1.0");

  auto ps = srv.profiles();
  ASSERT_EQ(ps.size(), 2u);
  std::map<std::string, Record> by_labels;
  for (auto& p : ps) by_labels[p["labels"]] = p;
  // __* labels are internal and dropped; a bad name is made valid; invalid
  // UTF-8 is replaced; __name__ names the profile type.
  const std::string web = R"({__name__="process_cpu", env="prod", service_name="web"})";
  const std::string db =
      R"({__name__="process_cpu", bad_name="��ok", env="prod", service_name="db"})";
  ASSERT_TRUE(by_labels.count(web)) << ps[0]["labels"] << " / " << ps[1]["labels"];
  ASSERT_TRUE(by_labels.count(db)) << ps[0]["labels"] << " / " << ps[1]["labels"];
  Record& w = by_labels[web];
  EXPECT_EQ(w["labels_sorted"], "true");
  EXPECT_TRUE(std::regex_match(w["id"], std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << w["id"];
  EXPECT_NE(w["id"], by_labels[db]["id"]);
  EXPECT_EQ(w["gzip"], "true");
  EXPECT_EQ(w["samples"], "35");
  EXPECT_EQ(w["cpu_ns"], "350000000");
  EXPECT_NE(w["sample_types"].find("cpu/nanoseconds"), std::string::npos);
  EXPECT_EQ(w["period_type"], "cpu/nanoseconds");
  EXPECT_EQ(w["period"], "10000000");  // 1e9 / 100 Hz
  EXPECT_EQ(w["time_nanos"], std::to_string(kStart));
  EXPECT_EQ(w["duration_nanos"], "10000000000");
  EXPECT_EQ(by_labels[db]["samples"], "12");

  auto raw = testing::go_pprof_raw(w["file"]);
  EXPECT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_NE(raw.out.find("leaf_function"), std::string::npos) << raw.out;

  auto lbl = server_label(server_for(srv));
  EXPECT_EQ(counter(m, "ember_upload_profiles_sent_total", lbl), 2u);
  EXPECT_EQ(counter(m, "ember_upload_samples_sent_total", lbl), 47u);
}

// OTLP: one request per interval, decoded by the stand-in as Pyroscope
// decodes it; the series' labels arrive as resource attributes, CPU as
// process_cpu, and the same interval goes to a push server beside it.
TEST(Protocol, OtlpSendsOneRequestPerIntervalWithLabelsAsAttributes) {
  PyroServer srv;
  PyroServer push_srv;
  ASSERT_TRUE(srv.running() && push_srv.running()) << srv.log();
  Metrics m;
  auto e = exporter({server_for(srv, ServerConfig::Api::kOtlp), server_for(push_srv)}, m);
  send(*e, {make_profile({{"service_name", "web"}, {"namespace", "shop"}, {"pod", "web-1"},
                          {"env", "prod"}, {"__meta_pod", "hidden"}}, kStart, 30),
            make_profile({{"service_name", "db"}, {"env", "prod"}}, kStart, 7)});
  e->flush();

  auto reqs = srv.requests();
  ASSERT_EQ(reqs.size(), 1u) << "one interval, one request";
  EXPECT_EQ(reqs[0]["path"], "/v1development/profiles");
  EXPECT_EQ(reqs[0]["content_type"], "application/x-protobuf");
  EXPECT_EQ(reqs[0]["content_encoding"], "gzip");
  EXPECT_EQ(reqs[0]["status"], "200") << reqs[0]["error"];

  auto ps = srv.profiles();
  ASSERT_EQ(ps.size(), 2u);
  std::map<std::string, Record> by_labels;
  for (auto& p : ps) by_labels[p["labels"]] = p;
  const std::string web =
      R"({__name__="process_cpu", __otel__="true", env="prod", k8s.namespace.name="shop", )"
      R"(k8s.pod.name="web-1", service.name="web", service_name="web"})";
  ASSERT_TRUE(by_labels.count(web)) << ps[0]["labels"] << " / " << ps[1]["labels"];
  Record& w = by_labels[web];
  EXPECT_EQ(w["api"], "otlp");
  EXPECT_EQ(w["samples"], "35");
  EXPECT_EQ(w["cpu_ns"], "350000000");  // count x period, as Pyroscope reads it
  EXPECT_EQ(w["sample_types"], "samples/count");
  EXPECT_EQ(w["period_type"], "cpu/nanoseconds");
  EXPECT_EQ(w["time_nanos"], std::to_string(kStart));
  EXPECT_EQ(w["scope"], "ember/0.1.0");
  EXPECT_EQ(w["frame_types"], "native=3");  // locations over the two stacks
  auto raw = testing::go_pprof_raw(w["file"]);
  EXPECT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_NE(raw.out.find("leaf_function"), std::string::npos) << raw.out;

  // The push server beside it got the same interval, pprof-encoded.
  EXPECT_EQ(push_srv.profiles().size(), 2u);
  auto lbl = server_label(server_for(srv, ServerConfig::Api::kOtlp));
  EXPECT_EQ(counter(m, "ember_upload_profiles_sent_total", lbl), 1u);  // one request item
  EXPECT_EQ(counter(m, "ember_upload_samples_sent_total", lbl), 47u);
}

TEST(Protocol, IngestSendsQueryStringAndGzipPprofBody) {
  PyroServer srv;
  ASSERT_TRUE(srv.running());
  Metrics m;
  auto e = exporter({server_for(srv, ServerConfig::Api::kIngest)}, m);
  // Values the legacy name= syntax cannot carry as such: ',' and '}' end a
  // pair, spaces around a value are trimmed, and '&', '=', '+', '%' and
  // non-ASCII must survive URL encoding.
  send(*e, {make_profile({{"service_name", "my svc/v1"},
                          {"env", "a,b}c"},
                          {"team", " core & ops=1+2%"},
                          {"region", "zürich"},
                          {"empty", ""}},
                         kStart, 20)});
  e->flush();

  auto reqs = srv.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0]["path"], "/ingest");
  EXPECT_EQ(reqs[0]["status"], "200") << reqs[0]["error"];
  auto ps = srv.profiles();
  ASSERT_EQ(ps.size(), 1u);
  Record& p = ps[0];
  EXPECT_EQ(p["name"], "my_svc/v1.cpu{env=a_b_c,region=zürich,team=core & ops=1+2%}");
  // Parsed exactly as Pyroscope's label set parser reads it.
  EXPECT_EQ(p["labels"],
            R"({__name__="my_svc/v1.cpu", env="a_b_c", region="zürich", team="core & ops=1+2%"})");
  // from/until: the interval, to the nearest second.
  EXPECT_EQ(p["from"], "1700000000");
  EXPECT_EQ(p["until"], "1700000010");
  EXPECT_EQ(p["format"], "pprof");
  EXPECT_EQ(p["sample_rate"], "100");
  EXPECT_EQ(p["spy_name"], "ember");
  EXPECT_EQ(p["units"], "samples");
  EXPECT_EQ(p["aggregation"], "sum");
  EXPECT_EQ(p["gzip"], "true");
  EXPECT_EQ(p["samples"], "25");
  std::string q = reqs[0]["query"];
  EXPECT_EQ(q.rfind("name=my_svc%2Fv1.cpu%7Benv%3Da_b_c%2C", 0), 0u) << q;

  auto raw = testing::go_pprof_raw(p["file"]);
  EXPECT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_NE(raw.out.find("caller_function"), std::string::npos) << raw.out;
}

TEST(Protocol, AuthTenantAndExtraHeadersAndNoSecretsInLogs) {
  PyroServer srv;
  ASSERT_TRUE(srv.running());
  e2e::TempDir tmp;
  std::ofstream(tmp / "token") << "token-one\n";
  std::ofstream(tmp / "password") << "pass-word\n";

  ServerConfig bearer = server_for(srv);
  bearer.name = "bearer";
  bearer.bearer_token_file = tmp / "token";
  bearer.tenant_id = "team-a";
  bearer.headers = {{"X-Extra", "extra-value"}};
  ServerConfig basic = server_for(srv, ServerConfig::Api::kIngest);
  basic.name = "basic";
  basic.has_basic_auth = true;
  basic.basic_auth.username = "alice";
  basic.basic_auth.password_file = tmp / "password";
  ServerConfig inline_token = server_for(srv);
  inline_token.name = "inline";
  inline_token.bearer_token = "inline-secret";

  StderrCapture logs;
  Metrics m;
  auto e = exporter({bearer, basic, inline_token}, m);
  send(*e, {make_profile({{"service_name", "a"}}, kStart, 1)});
  ASSERT_TRUE(srv.wait_profiles(3));
  // Rotation: the files change, the next uploads use the new secrets.
  std::ofstream(tmp / "token.new") << "token-two";
  std::filesystem::rename(tmp / "token.new", tmp / "token");
  std::ofstream(tmp / "password") << "new-pass";
  // A failure, so the logs have something to say about these servers.
  ASSERT_TRUE(srv.set_mode("mode=status&code=500&n=3"));
  send(*e, {make_profile({{"service_name", "a"}}, kStart + 10'000'000'000ull, 1)});
  ASSERT_TRUE(srv.wait_profiles(6));
  e->flush();
  std::string log = logs.text();

  std::map<std::string, std::vector<std::string>> auth_by_path;
  for (auto& r : srv.requests()) {
    if (r["status"] != "200") continue;
    if (r["path"] == "/ingest") {
      auth_by_path["basic"].push_back(r["auth"]);
      EXPECT_EQ(r["tenant"], "");
    } else if (r["auth"] == "Bearer inline-secret") {
      auth_by_path["inline"].push_back(r["auth"]);
    } else {
      auth_by_path["bearer"].push_back(r["auth"]);
      EXPECT_EQ(r["tenant"], "team-a");
      EXPECT_EQ(r["headers"], "X-Extra=extra-value");
    }
  }
  EXPECT_EQ(auth_by_path["bearer"], (std::vector<std::string>{"Bearer token-one", "Bearer token-two"}));
  EXPECT_EQ(auth_by_path["basic"],
            (std::vector<std::string>{"Basic YWxpY2U6cGFzcy13b3Jk", "Basic YWxpY2U6bmV3LXBhc3M="}));
  EXPECT_EQ(auth_by_path["inline"].size(), 2u);

  for (const char* secret : {"token-one", "token-two", "pass-word", "new-pass", "inline-secret",
                             "YWxpY2U6", "extra-value"})
    EXPECT_EQ(log.find(secret), std::string::npos) << secret << " leaked into:\n" << log;
  EXPECT_NE(log.find("HTTP 500"), std::string::npos) << log;
}

// Certificates for TLS tests, made with the openssl command.
class Certs {
 public:
  Certs() {
    std::string script = R"(set -e
cd ")" + dir_.path() + R"("
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca.key; openssl req -x509 -new -key ca.key -out ca.pem -days 2 -subj "/CN=Ember Test CA"
key wrong.key; openssl req -x509 -new -key wrong.key -out wrong-ca.pem -days 2 -subj "/CN=Wrong CA"
key server.key; openssl req -new -key server.key -out server.csr -subj "/CN=pyro.test"
printf 'subjectAltName=DNS:pyro.test,DNS:localhost\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null
key client.key; openssl req -new -key client.key -out client.csr -subj "/CN=ember-agent"
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext 2>/dev/null
)";
    auto r = e2e::run({"sh", "-c", script});
    ok_ = r.exit_code == 0;
    err_ = r.err;
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return err_; }
  std::string operator/(const std::string& f) const { return dir_ / f; }

 private:
  e2e::TempDir dir_;
  bool ok_ = false;
  std::string err_;
};

TEST(Protocol, TlsWithSelfSignedCaAndClientCertificate) {
  Certs certs;
  ASSERT_TRUE(certs.ok()) << certs.error();
  PyroServer::Options so;
  so.tls_cert = certs / "server.pem";
  so.tls_key = certs / "server.key";
  so.client_ca = certs / "ca.pem";
  PyroServer srv(so);
  ASSERT_TRUE(srv.running()) << srv.log();

  // https://localhost:<port>: verified against the test CA, with the
  // client certificate (mTLS) the server requires.
  ServerConfig good;
  good.name = "mtls";
  good.url = "https://localhost:" + std::to_string(srv.port());
  good.tls.ca_file = certs / "ca.pem";
  good.tls.cert_file = certs / "client.pem";
  good.tls.key_file = certs / "client.key";
  good.timeout = 5s;
  // server_name: connect to 127.0.0.1 (not in the certificate) but verify
  // the name the certificate has.
  ServerConfig by_name = good;
  by_name.name = "server_name";
  by_name.url = "https://127.0.0.1:" + std::to_string(srv.port());
  by_name.tls.server_name = "pyro.test";
  // No client certificate: the server refuses the handshake.
  ServerConfig no_cert = good;
  no_cert.name = "no_cert";
  no_cert.tls.cert_file.clear();
  no_cert.tls.key_file.clear();
  // The wrong CA: we refuse the server.
  ServerConfig wrong_ca = good;
  wrong_ca.name = "wrong_ca";
  wrong_ca.tls.ca_file = certs / "wrong-ca.pem";
  // Wrong CA but verification off: accepted (with a warning).
  ServerConfig insecure = wrong_ca;
  insecure.name = "insecure";
  insecure.tls.ca_file.clear();
  insecure.tls.insecure_skip_verify = true;
  for (ServerConfig* c : {&good, &by_name, &no_cert, &wrong_ca, &insecure}) {
    c->min_backoff = 50ms;
    c->max_backoff = 100ms;
  }

  StderrCapture logs;
  Metrics m;
  auto e = exporter({good, by_name, no_cert, wrong_ca, insecure}, m, 2s);
  send(*e, {make_profile({{"service_name", "tls"}}, kStart, 3)});
  ASSERT_TRUE(srv.wait_profiles(3));
  std::this_thread::sleep_for(1s);  // the refused ones keep retrying meanwhile
  e->flush();
  std::string log = logs.text();

  EXPECT_EQ(srv.profiles().size(), 3u);
  for (auto& r : srv.requests()) EXPECT_EQ(r["tls_client"], "ember-agent");
  EXPECT_EQ(counter(m, "ember_upload_profiles_sent_total", server_label(good)), 1u);
  EXPECT_EQ(counter(m, "ember_upload_profiles_sent_total", server_label(by_name)), 1u);
  EXPECT_EQ(counter(m, "ember_upload_profiles_sent_total", server_label(insecure)), 1u);
  EXPECT_EQ(counter(m, "ember_upload_profiles_sent_total", server_label(no_cert)), 0u);
  EXPECT_EQ(counter(m, "ember_upload_profiles_sent_total", server_label(wrong_ca)), 0u);
  EXPECT_GE(counter(m, "ember_upload_failures_total", server_label(wrong_ca) + ",status=\"tls\""), 2u);
  EXPECT_GE(m.total("ember_upload_retries_total"), 4u);
  // Not delivered, and counted: dropped at shutdown.
  EXPECT_EQ(counter(m, "ember_upload_profiles_dropped_total", server_label(wrong_ca) + ",reason=\"shutdown\""), 1u);
  EXPECT_EQ(counter(m, "ember_upload_profiles_dropped_total", server_label(no_cert) + ",reason=\"shutdown\""), 1u);
  EXPECT_NE(log.find("insecure_skip_verify"), std::string::npos) << log;
}

TEST(Protocol, UnfixableClientErrorIsNotRetriedAndIsLoggedWithTheServersMessage) {
  PyroServer srv;
  ASSERT_TRUE(srv.running());
  ASSERT_TRUE(srv.set_mode("mode=status&code=400&n=1&message=labels%20are%20not%20valid"));
  StderrCapture logs;
  Metrics m;
  ServerConfig c = server_for(srv);
  auto e = exporter({c}, m);
  send(*e, {make_profile({{"service_name", "a"}}, kStart, 4)});
  for (int i = 0; i < 100 && srv.requests().empty(); ++i) std::this_thread::sleep_for(20ms);
  send(*e, {make_profile({{"service_name", "a"}}, kStart + 10'000'000'000ull, 6)});
  ASSERT_TRUE(srv.wait_profiles(1));
  e->flush();
  std::string log = logs.text();

  auto reqs = srv.requests();
  ASSERT_EQ(reqs.size(), 2u) << "the 400 is not retried";
  EXPECT_EQ(reqs[0]["status"], "400");
  EXPECT_EQ(srv.profiles()[0]["samples"], "11") << "the second profile goes through";
  auto l = server_label(c);
  EXPECT_EQ(counter(m, "ember_upload_profiles_dropped_total", l + ",reason=\"rejected\""), 1u);
  EXPECT_EQ(counter(m, "ember_upload_samples_dropped_total", l + ",reason=\"rejected\""), 9u);
  EXPECT_EQ(counter(m, "ember_upload_failures_total", l + ",status=\"400\""), 1u);
  EXPECT_EQ(counter(m, "ember_upload_retries_total", l), 0u);
  // The Connect error's code and message, as the server said them.
  EXPECT_NE(log.find("HTTP 400: invalid_argument: labels are not valid"), std::string::npos) << log;
}

TEST(Protocol, RetriesServerErrorsAndHonoursRetryAfter) {
  PyroServer srv;
  ASSERT_TRUE(srv.running());
  ASSERT_TRUE(srv.set_mode("mode=status&code=503&n=2"));
  Metrics m;
  ServerConfig c = server_for(srv, ServerConfig::Api::kIngest);
  auto e = exporter({c}, m);
  send(*e, {make_profile({{"service_name", "a"}}, kStart, 4)});
  ASSERT_TRUE(srv.wait_profiles(1));
  ASSERT_TRUE(srv.set_mode("mode=status&code=429&retry_after=2&n=1"));
  send(*e, {make_profile({{"service_name", "b"}}, kStart, 4)});
  ASSERT_TRUE(srv.wait_profiles(2, 10s));
  e->flush();

  auto reqs = srv.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[0]["status"], "503");
  EXPECT_EQ(reqs[1]["status"], "503");
  EXPECT_EQ(reqs[2]["status"], "200");
  EXPECT_EQ(reqs[3]["status"], "429");
  EXPECT_EQ(reqs[4]["status"], "200");
  // Retry-After: 2 was honoured.
  int64_t waited = std::stoll(reqs[4]["unix_ms"]) - std::stoll(reqs[3]["unix_ms"]);
  EXPECT_GE(waited, 1950) << waited;
  EXPECT_LT(waited, 4000) << waited;
  auto l = server_label(c);
  EXPECT_EQ(counter(m, "ember_upload_failures_total", l + ",status=\"503\""), 2u);
  EXPECT_EQ(counter(m, "ember_upload_failures_total", l + ",status=\"429\""), 1u);
  EXPECT_EQ(counter(m, "ember_upload_retries_total", l), 3u);
  EXPECT_EQ(counter(m, "ember_upload_profiles_sent_total", l), 2u);
  EXPECT_EQ(m.total("ember_upload_profiles_dropped_total"), 0u);
}

TEST(Protocol, ShutdownDeadlineBoundsAHangingServer) {
  PyroServer srv({.mode = "hang"});
  ASSERT_TRUE(srv.running());
  Metrics m;
  ServerConfig c = server_for(srv);
  c.timeout = 60s;  // longer than the deadline: the deadline must win
  auto e = exporter({c}, m, 1500ms);
  send(*e, {make_profile({{"service_name", "a"}}, kStart, 4)});
  for (int i = 0; i < 100 && srv.requests().empty(); ++i) std::this_thread::sleep_for(20ms);
  auto t0 = std::chrono::steady_clock::now();
  e->flush();
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 3s);
  EXPECT_GE(took, 1s);
  auto l = server_label(c);
  EXPECT_EQ(counter(m, "ember_upload_profiles_dropped_total", l + ",reason=\"shutdown\""), 1u);
  EXPECT_EQ(counter(m, "ember_upload_samples_dropped_total", l + ",reason=\"shutdown\""), 9u);
}

TEST(Protocol, ATimeoutIsRetriedOnAFreshRequest) {
  PyroServer srv;
  ASSERT_TRUE(srv.running());
  ASSERT_TRUE(srv.set_mode("mode=hang&n=1"));
  Metrics m;
  ServerConfig c = server_for(srv);
  c.timeout = 500ms;
  auto e = exporter({c}, m);
  send(*e, {make_profile({{"service_name", "a"}}, kStart, 4)});
  ASSERT_TRUE(srv.wait_profiles(1, 10s));
  e->flush();
  EXPECT_EQ(counter(m, "ember_upload_failures_total", server_label(c) + ",status=\"timeout\""), 1u);
  EXPECT_EQ(srv.profiles().size(), 1u);
}

}  // namespace
}  // namespace ember
