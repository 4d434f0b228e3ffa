// The upload queue and retry logic, driven through a fake transport that
// plays a server's answers: the byte bound and drop-oldest, rejection,
// Retry-After, backoff, request chunking, shutdown, and secret files.
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>

#include "agent/export/secret_file.h"
#include "agent/export/upload_exporter.h"
#include "push.pb.h"

namespace ember {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Plays scripted answers; can hold a request until released (or aborted).
struct FakeServer {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<HttpResponse> script;  // then `otherwise`
  HttpResponse otherwise;
  bool hold = false;
  std::vector<Clock::time_point> times;
  std::vector<HttpRequest> requests;
  std::vector<std::string> bodies;

  FakeServer() { otherwise.status = 200; }
  static HttpResponse status(int s, std::optional<Duration> retry_after = std::nullopt) {
    HttpResponse r;
    r.status = s;
    r.retry_after = retry_after;
    return r;
  }
  static HttpResponse down() {
    HttpResponse r;
    r.failure = TransportFailure::kConnect;
    r.error = "Connection refused";
    return r;
  }
  size_t calls() {
    std::lock_guard<std::mutex> lock(mu);
    return requests.size();
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu);
    hold = false;
    cv.notify_all();
  }
  // IDs of the profiles in every accepted push request, in order.
  std::vector<std::string> sent_ids(size_t first_request = 0) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::string> ids;
    for (size_t i = first_request; i < bodies.size(); ++i) {
      push::v1::PushRequest req;
      req.ParseFromString(bodies[i]);
      for (const auto& s : req.series())
        for (const auto& x : s.samples()) ids.push_back(x.id());
    }
    return ids;
  }
};

class FakeTransport final : public Transport {
 public:
  explicit FakeTransport(std::shared_ptr<FakeServer> s) : s_(std::move(s)) {}
  HttpResponse post(const HttpRequest& req, const std::function<bool()>& abort) override {
    std::unique_lock<std::mutex> lock(s_->mu);
    s_->times.push_back(Clock::now());
    s_->requests.push_back(req);
    s_->bodies.push_back(req.body ? *req.body : "");
    while (s_->hold) {
      if (abort && abort()) {
        HttpResponse r;
        r.failure = TransportFailure::kAborted;
        return r;
      }
      s_->cv.wait_for(lock, 10ms);
    }
    if (s_->script.empty()) return s_->otherwise;
    HttpResponse r = s_->script.front();
    s_->script.pop_front();
    return r;
  }

 private:
  std::shared_ptr<FakeServer> s_;
};

EncodedProfileRef profile(size_t payload_bytes, uint64_t samples = 10, std::string service = "svc") {
  auto p = std::make_shared<EncodedProfile>();
  p->labels = {{"__name__", "process_cpu"}, {"service_name", service}};
  p->service_name = service;
  p->start_time_ns = 1'700'000'000'000'000'000ull;
  p->end_time_ns = p->start_time_ns + 10'000'000'000ull;
  p->frequency_hz = 100;
  p->samples = samples;
  p->pprof_gz.assign(payload_bytes, 'x');
  p->id = uuid_v4();
  return p;
}

ServerConfig fake_server(ServerConfig::Api api = ServerConfig::Api::kPush) {
  ServerConfig c;
  c.url = "http://fake.invalid:4040";
  c.name = "fake";
  c.api = api;
  c.min_backoff = 20ms;
  c.max_backoff = 80ms;
  return c;
}

std::unique_ptr<ServerUploader> uploader(const ServerConfig& c, Metrics& m,
                                         std::shared_ptr<FakeServer> s) {
  auto u = ServerUploader::create(c, m, std::make_unique<FakeTransport>(std::move(s)));
  EXPECT_TRUE(u.ok()) << (u.ok() ? "" : u.error().message);
  return std::move(*u);
}

uint64_t value(const Metrics& m, const std::string& name, const std::string& reason = "") {
  std::string labels = "server=\"fake\"" + (reason.empty() ? "" : ",reason=\"" + reason + "\"");
  for (const auto& r : m.snapshot())
    if (r.name == name && r.labels == labels) return r.value;
  return 0;
}

bool eventually(const std::function<bool()>& f, Duration limit = 5s) {
  auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}

TEST(UploadQueue, BoundedByBytesDropsTheOldestAndCountsThem) {
  auto s = std::make_shared<FakeServer>();
  s->hold = true;  // the first request hangs until released
  Metrics m;
  ServerConfig c = fake_server();
  c.queue_max_bytes = 64 << 10;
  auto u = uploader(c, m, s);
  std::vector<EncodedProfileRef> ps;
  for (int i = 0; i < 20; ++i) ps.push_back(profile(10'000, 10 + uint64_t(i)));
  u->enqueue(ps[0]);
  ASSERT_TRUE(eventually([&] { return s->calls() == 1; }));  // ps[0] is in flight
  for (int i = 1; i < 20; ++i) u->enqueue(ps[size_t(i)]);

  auto st = u->status();
  EXPECT_LE(st.queued_bytes, c.queue_max_bytes);
  size_t kept = st.queued_profiles;
  EXPECT_GE(kept, 4u);
  EXPECT_LE(kept, 7u);
  EXPECT_EQ(value(m, "ember_upload_queue_bytes"), st.queued_bytes);
  EXPECT_EQ(value(m, "ember_upload_profiles_dropped_total", "queue_full"), 20 - kept);
  uint64_t dropped_samples = 0;
  for (size_t i = 1; i <= 20 - kept; ++i) dropped_samples += ps[i]->samples;
  EXPECT_EQ(value(m, "ember_upload_samples_dropped_total", "queue_full"), dropped_samples);

  s->release();
  ASSERT_TRUE(u->drain(Clock::now() + 5s));
  // The one in flight survived; of the rest, the newest were kept.
  std::vector<std::string> want = {ps[0]->id};
  for (size_t i = 20 - (kept - 1); i < 20; ++i) want.push_back(ps[i]->id);
  EXPECT_EQ(s->sent_ids(), want);
  // enqueued = sent + dropped + queued, for profiles and samples.
  EXPECT_EQ(value(m, "ember_upload_profiles_enqueued_total"), 20u);
  EXPECT_EQ(value(m, "ember_upload_profiles_sent_total") +
                value(m, "ember_upload_profiles_dropped_total", "queue_full"),
            20u);
  EXPECT_EQ(value(m, "ember_upload_samples_sent_total") +
                value(m, "ember_upload_samples_dropped_total", "queue_full"),
            value(m, "ember_upload_samples_enqueued_total"));
  EXPECT_EQ(value(m, "ember_upload_queue_bytes"), 0u);
}

TEST(UploadQueue, ARejectedProfileIsDroppedWithoutRetry) {
  auto s = std::make_shared<FakeServer>();
  s->script = {FakeServer::status(400), FakeServer::status(200)};
  Metrics m;
  auto u = uploader(fake_server(), m, s);
  u->enqueue(profile(100, 3));
  ASSERT_TRUE(eventually([&] { return s->calls() == 1; }));
  u->enqueue(profile(100, 4));
  EXPECT_TRUE(u->drain(Clock::now() + 5s));
  EXPECT_EQ(s->calls(), 2u);
  EXPECT_EQ(value(m, "ember_upload_profiles_dropped_total", "rejected"), 1u);
  EXPECT_EQ(value(m, "ember_upload_samples_dropped_total", "rejected"), 3u);
  EXPECT_EQ(value(m, "ember_upload_samples_sent_total"), 4u);
  EXPECT_EQ(value(m, "ember_upload_retries_total"), 0u);
}

TEST(UploadQueue, RetriesWithBackoffUntilAccepted) {
  auto s = std::make_shared<FakeServer>();
  s->script = {FakeServer::down(), FakeServer::status(500), FakeServer::status(503),
               FakeServer::status(408)};
  Metrics m;
  auto u = uploader(fake_server(), m, s);
  auto p = profile(100, 5);
  u->enqueue(p);
  ASSERT_TRUE(eventually([&] { return value(m, "ember_upload_profiles_sent_total") == 1; }));
  EXPECT_EQ(s->calls(), 5u);
  for (size_t i = 1; i < s->times.size(); ++i)
    EXPECT_GE(s->times[i] - s->times[i - 1], 10ms) << "min_backoff/2 at least";
  EXPECT_EQ(s->sent_ids(0).back(), p->id);
  // The same profile, the same id, on every attempt.
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(s->sent_ids(i).front(), p->id);
  EXPECT_EQ(value(m, "ember_upload_retries_total"), 4u);
  EXPECT_EQ(m.total("ember_upload_failures_total"), 4u);
  EXPECT_TRUE(u->drain(Clock::now() + 1s));
}

TEST(UploadQueue, RetryAfterIsHonoured) {
  auto s = std::make_shared<FakeServer>();
  s->script = {FakeServer::status(429, Duration(1s))};
  Metrics m;
  auto u = uploader(fake_server(), m, s);
  u->enqueue(profile(100));
  ASSERT_TRUE(eventually([&] { return s->calls() == 2; }));
  EXPECT_GE(s->times[1] - s->times[0], 1s);
  EXPECT_LT(s->times[1] - s->times[0], 3s);
  EXPECT_TRUE(u->drain(Clock::now() + 1s));
}

TEST(UploadQueue, PushBatchesABacklogIntoRequestsOfBoundedSize) {
  auto s = std::make_shared<FakeServer>();
  s->hold = true;
  Metrics m;
  auto u = uploader(fake_server(), m, s);
  u->enqueue(profile(100));
  ASSERT_TRUE(eventually([&] { return s->calls() == 1; }));
  for (int i = 0; i < 10; ++i) u->enqueue(profile((1 << 20) + 1000));  // just over 1 MiB each
  s->release();
  ASSERT_TRUE(u->drain(Clock::now() + 5s));
  // 1, then 3 + 3 + 3 + 1: at most 4 MiB of profiles per request.
  EXPECT_EQ(s->calls(), 5u);
  EXPECT_EQ(s->sent_ids().size(), 11u);
  for (const auto& b : s->bodies) EXPECT_LE(b.size(), ServerUploader::kMaxRequestBytes + 4096);
}

TEST(UploadQueue, IngestSendsOneProfilePerRequest) {
  auto s = std::make_shared<FakeServer>();
  Metrics m;
  auto u = uploader(fake_server(ServerConfig::Api::kIngest), m, s);
  u->enqueue(profile(100, 1, "a"));
  u->enqueue(profile(100, 1, "b"));
  ASSERT_TRUE(u->drain(Clock::now() + 5s));
  ASSERT_EQ(s->calls(), 2u);
  EXPECT_EQ(s->requests[0].url.rfind("http://fake.invalid:4040/ingest?name=a.cpu%7B%7D&from=", 0), 0u)
      << s->requests[0].url;
  EXPECT_EQ(s->bodies[1], std::string(100, 'x'));
}

TEST(UploadQueue, ShutdownDeadlineDropsWhatIsLeftAndCountsIt) {
  auto s = std::make_shared<FakeServer>();
  s->otherwise = FakeServer::down();
  Metrics m;
  auto u = uploader(fake_server(), m, s);
  for (int i = 0; i < 3; ++i) u->enqueue(profile(100, 7));
  auto t0 = Clock::now();
  EXPECT_FALSE(u->drain(t0 + 300ms));
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_EQ(value(m, "ember_upload_profiles_dropped_total", "shutdown"), 3u);
  EXPECT_EQ(value(m, "ember_upload_samples_dropped_total", "shutdown"), 21u);
  // After shutdown, a late profile is counted too, not silently lost.
  u->enqueue(profile(100, 2));
  EXPECT_EQ(value(m, "ember_upload_samples_dropped_total", "shutdown"), 23u);
}

TEST(UploadQueue, ShutdownAbortsARequestInFlight) {
  auto s = std::make_shared<FakeServer>();
  s->hold = true;
  Metrics m;
  auto u = uploader(fake_server(), m, s);
  u->enqueue(profile(100, 7));
  ASSERT_TRUE(eventually([&] { return s->calls() == 1; }));
  auto t0 = Clock::now();
  EXPECT_FALSE(u->drain(t0 + 200ms));
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_EQ(value(m, "ember_upload_profiles_dropped_total", "shutdown"), 1u);
}

TEST(UploadQueue, RequestHeadersCarryAuthAndTenant) {
  auto s = std::make_shared<FakeServer>();
  Metrics m;
  ServerConfig c = fake_server();
  c.bearer_token = "tok";
  c.tenant_id = "acme";
  c.headers = {{"X-A", "1"}};
  auto u = uploader(c, m, s);
  u->enqueue(profile(100));
  ASSERT_TRUE(u->drain(Clock::now() + 5s));
  const auto& h = s->requests[0].headers;
  auto has = [&](const std::string& line) { return std::find(h.begin(), h.end(), line) != h.end(); };
  EXPECT_TRUE(has("Content-Type: application/proto"));
  EXPECT_TRUE(has("Connect-Protocol-Version: 1"));
  EXPECT_TRUE(has("Authorization: Bearer tok"));
  EXPECT_TRUE(has("X-Scope-OrgID: acme"));
  EXPECT_TRUE(has("X-A: 1"));
  EXPECT_EQ(s->requests[0].url, "http://fake.invalid:4040/push.v1.PusherService/Push");
}

TEST(UploadQueue, MissingSecretFileFailsAtStart) {
  Metrics m;
  ServerConfig c = fake_server();
  c.bearer_token_file = "/nonexistent/token";
  auto u = ServerUploader::create(c, m, std::make_unique<FakeTransport>(std::make_shared<FakeServer>()));
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.error().message.find("/nonexistent/token"), std::string::npos);
}

TEST(SecretFile, TrimsAndFollowsRotation) {
  char tmpl[] = "/tmp/ember-secret-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string path = dir + "/token";
  std::ofstream(path) << "first\n";
  auto f = SecretFile::open(path);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->value(), "first");
  // Atomic replacement, as Kubernetes and most tools do it.
  std::ofstream(dir + "/token.new") << "second";
  std::filesystem::rename(dir + "/token.new", path);
  EXPECT_EQ(f->value(), "second");
  // Gone: the last good value stays.
  std::filesystem::remove(path);
  EXPECT_EQ(f->value(), "second");
  std::ofstream(path) << "third\r\n";
  EXPECT_EQ(f->value(), "third");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ember
