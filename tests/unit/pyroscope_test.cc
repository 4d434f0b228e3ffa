// The Pyroscope wire format, byte for byte: labels, the push request, the
// legacy ingest query, and the retry policy's pure parts.
#include "agent/export/pyroscope.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "agent/export/pprof.h"
#include "agent/export/upload_exporter.h"
#include "profile.pb.h"
#include "push.pb.h"
#include "profile_builders.h"

namespace ember {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using namespace std::chrono_literals;

EncodedProfile encoded(Labels labels, uint64_t start_ns = 1'700'000'000'000'000'000ull,
                       uint64_t end_ns = 1'700'000'010'000'000'000ull) {
  EncodedProfile p;
  p.labels = std::move(labels);
  for (const auto& [k, v] : p.labels)
    if (k == "service_name") p.service_name = v;
  p.start_time_ns = start_ns;
  p.end_time_ns = end_ns;
  p.frequency_hz = 100;
  return p;
}

TEST(PyroscopeLabels, AddProfileNameDropInternalSanitizeAndSort) {
  LabelSet set({{"service_name", "api"},
                {"__meta_kubernetes_pod", "x"},
                {"zone", "a"},
                {"9th", "nine"},
                {"pod-name", "p1"},
                {"Upper", "u"}});
  EXPECT_THAT(upload_labels(&set),
              ElementsAre(Pair("Upper", "u"), Pair("_9th", "nine"), Pair("__name__", "process_cpu"),
                          Pair("pod_name", "p1"), Pair("service_name", "api"), Pair("zone", "a")));
}

TEST(PyroscopeLabels, DefaultServiceNameAndDuplicatesAfterSanitizing) {
  LabelSet set({{"a-b", "first"}, {"a_b", "second"}});
  auto l = upload_labels(&set);
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l["__name__"], "process_cpu");
  EXPECT_TRUE(l.count("a_b"));
  EXPECT_EQ(l["service_name"], "unspecified");
  EXPECT_THAT(upload_labels(nullptr), ElementsAre(Pair("__name__", "process_cpu"),
                                                  Pair("service_name", "unspecified")));
}

TEST(PyroscopeLabels, ValuesBecomeValidUtf8) {
  EXPECT_EQ(valid_utf8("plain"), "plain");
  EXPECT_EQ(valid_utf8("z\xc3\xbcrich"), "z\xc3\xbcrich");
  EXPECT_EQ(valid_utf8("\xff"), "\xef\xbf\xbd");
  EXPECT_EQ(valid_utf8("a\xc3"), "a\xef\xbf\xbd");          // truncated sequence
  EXPECT_EQ(valid_utf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");  // overlong '/'
  EXPECT_EQ(valid_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  EXPECT_EQ(valid_utf8("\xf0\x9f\x94\xa5"), "\xf0\x9f\x94\xa5");
}

TEST(PyroscopePush, RequestHasOneSeriesPerProfileWithLabelsAndGzipPprof) {
  auto m = ember::testing::make_mapping("/bin/app", 0x1000, 0x2000);
  Profile p;
  p.labels = ember::testing::labels({{"service_name", "app"}, {"env", "prod"}});
  p.start_time_ns = 1'700'000'000'000'000'000ull;
  p.end_time_ns = p.start_time_ns + 10'000'000'000ull;
  p.frequency_hz = 99;
  p.period_ns = 1'000'000'000ull / 99;
  p.samples.push_back(ProfileSample{{ember::testing::make_location(0x1100, m, {"f"})}, 7, 1, "t", 7 * p.period_ns});
  auto a = *encode_for_upload(p);
  auto b = *encode_for_upload(p);
  EXPECT_EQ(a->samples, 7u);
  EXPECT_EQ(a->service_name, "app");
  EXPECT_NE(a->id, b->id);

  push::v1::PushRequest req;
  ASSERT_TRUE(req.ParseFromString(push_request_body({a, b})));
  ASSERT_EQ(req.series_size(), 2);
  const auto& s = req.series(0);
  ASSERT_EQ(s.labels_size(), 3);
  EXPECT_EQ(s.labels(0).name(), "__name__");
  EXPECT_EQ(s.labels(0).value(), "process_cpu");
  EXPECT_EQ(s.labels(1).name(), "env");
  EXPECT_EQ(s.labels(2).name(), "service_name");
  ASSERT_EQ(s.samples_size(), 1);
  EXPECT_EQ(s.samples(0).id(), a->id);
  auto raw = gzip_decompress(s.samples(0).raw_profile());
  ASSERT_TRUE(raw.ok());
  perftools::profiles::Profile pp;
  ASSERT_TRUE(pp.ParseFromString(*raw));
  const auto& st = pp.string_table();
  EXPECT_EQ(st[pp.period_type().type()], "cpu");
  EXPECT_EQ(st[pp.period_type().unit()], "nanoseconds");
  EXPECT_EQ(pp.period(), 1'000'000'000 / 99);
  bool has_cpu = false;
  for (const auto& t : pp.sample_type())
    has_cpu |= st[t.type()] == "cpu" && st[t.unit()] == "nanoseconds";
  EXPECT_TRUE(has_cpu);
  EXPECT_EQ(pp.time_nanos(), int64_t(p.start_time_ns));
  // No per-sample pid/thread labels: Pyroscope would make them series.
  ASSERT_EQ(pp.sample_size(), 1);
  EXPECT_EQ(pp.sample(0).label_size(), 0);
}

TEST(PyroscopeIngest, NameEscapesWhatTheLegacyParserCannotRead) {
  auto p = encoded({{"__name__", "process_cpu"},
                    {"service_name", "my app (v2)"},
                    {"env", " a,b}c "},
                    {"k8s.pod", "x{y=z"},
                    {"empty", "   "}});
  EXPECT_EQ(ingest_name(p), "my_app__v2_.cpu{env=a_b_c,k8s.pod=x{y=z}");
}

TEST(PyroscopeIngest, QueryStringIsFullyPercentEncoded) {
  auto p = encoded({{"__name__", "process_cpu"}, {"service_name", "svc"}, {"team", "a&b=c+d %"}});
  EXPECT_EQ(ingest_query(p),
            "name=svc.cpu%7Bteam%3Da%26b%3Dc%2Bd%20%25%7D&from=1700000000&until=1700000010"
            "&format=pprof&sampleRate=100&spyName=ember&units=samples&aggregationType=sum");
}

TEST(PyroscopeIngest, NameUnitsAndRateFollowTheEvent) {
  auto p = encoded({{"__name__", "off_cpu"}, {"service_name", "svc"}});
  p.event = EventKind::kOffCpu;
  p.frequency_hz = 0;
  EXPECT_EQ(ingest_name(p), "svc.off_cpu{}");
  EXPECT_EQ(ingest_query(p),
            "name=svc.off_cpu%7B%7D&from=1700000000&until=1700000010"
            "&format=pprof&spyName=ember&units=nanoseconds&aggregationType=sum");
  EXPECT_EQ(upload_labels(nullptr, EventKind::kOffCpu).at("__name__"), "off_cpu");
  EXPECT_EQ(upload_labels(nullptr, EventKind::kWall).at("__name__"), "wall");
}

TEST(PyroscopeIngest, TimeRangeRoundsToTheNearestSecond) {
  auto p = encoded({}, 1'700'000'000'499'000'000ull, 1'700'000'010'500'000'000ull);
  EXPECT_EQ(ingest_time_range(p), (std::pair<int64_t, int64_t>{1700000000, 1700000011}));
  // Consecutive intervals share their boundary.
  auto q = encoded({}, 1'700'000'010'500'000'000ull, 1'700'000'020'500'000'000ull);
  EXPECT_EQ(ingest_time_range(q).first, ingest_time_range(p).second);
  // A sub-second profile still spans a second.
  auto r = encoded({}, 1'700'000'000'100'000'000ull, 1'700'000'000'200'000'000ull);
  EXPECT_EQ(ingest_time_range(r), (std::pair<int64_t, int64_t>{1700000000, 1700000001}));
}

TEST(PyroscopeRetry, StatusClassification) {
  EXPECT_EQ(classify_status(200), UploadOutcome::kSent);
  EXPECT_EQ(classify_status(204), UploadOutcome::kSent);
  for (int s : {408, 429, 500, 502, 503, 504}) EXPECT_EQ(classify_status(s), UploadOutcome::kRetry) << s;
  for (int s : {400, 401, 403, 404, 413, 415, 422, 301})
    EXPECT_EQ(classify_status(s), UploadOutcome::kReject) << s;
}

TEST(PyroscopeRetry, ServerMessageFromConnectErrorOrText) {
  EXPECT_EQ(server_message(R"({"code":"invalid_argument","message":"bad \"label\"\nname"})"),
            "invalid_argument: bad \"label\" name");
  EXPECT_EQ(server_message("plain text\r\nerror\n"), "plain text  error");
  EXPECT_EQ(server_message(std::string(1000, 'x')).size(), 303u);
  // Escapes are JSON's, \u included; a JSON body without the fields, or a
  // truncated one, is shown as text.
  EXPECT_EQ(server_message(R"({"code":"unavailable","message":"caf\u00e9"})"), "unavailable: caf\xc3\xa9");
  EXPECT_EQ(server_message(R"({"error":"x"})"), R"({"error":"x"})");
  EXPECT_EQ(server_message(R"({"message":"cut)"), R"({"message":"cut)");
}

TEST(PyroscopeRetry, BackoffGrowsWithJitterAndIsCapped) {
  Duration min = 500ms, max = 30s;
  EXPECT_EQ(backoff_delay(min, max, 0, 0.0), 250ms);
  EXPECT_NEAR(double(backoff_delay(min, max, 0, 0.999999).count()), 499'999'750.0, 1000.0);
  EXPECT_EQ(backoff_delay(min, max, 3, 0.0), 2s);
  EXPECT_EQ(backoff_delay(min, max, 20, 0.0), 15s);
  EXPECT_LE(backoff_delay(min, max, 1000, 0.9999), max);
}

TEST(PyroscopeIds, UuidV4) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = uuid_v4();
    ASSERT_EQ(id.size(), 36u);
    EXPECT_EQ(id[14], '4');
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(PyroscopeAuth, BasicAuthHeader) {
  EXPECT_EQ(basic_auth_header("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  EXPECT_EQ(basic_auth_header("a", ""), "Basic YTo=");
  EXPECT_EQ(basic_auth_header("ab", "c"), "Basic YWI6Yw==");
}

}  // namespace
}  // namespace ember
