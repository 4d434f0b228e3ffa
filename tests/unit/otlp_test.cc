// The OTLP profiles request, decoded with the same field numbers the
// protocol defines: one resource per series with semantic-convention
// attributes, one dictionary whose tables start with their empty entry and
// hold nothing twice, CPU as samples/count with a cpu/nanoseconds period.
#include "agent/export/otlp.h"

#include <gtest/gtest.h>

#include <set>

#include "agent/export/pprof.h"
#include "otlp_profiles.pb.h"
#include "profile_builders.h"

namespace ember {
namespace {

namespace pb = ember::otlp;
using namespace ember::testing;

struct Fixture {
  std::shared_ptr<const Mapping> exe = make_mapping("/usr/bin/app", 0x400000, 0x500000, "abcdef0123");
  LocationRef leaf = make_location(0x401000, exe, {"inlined", "leaf"});
  LocationRef main_ = make_location(0x402000, exe, {"main"});
  LocationRef kfn = make_location(0xffffffff81001000, nullptr, {"do_syscall_64"}, origin::kKernel);

  Profile cpu(Labels labels) const {
    Profile p;
    p.labels = ember::testing::labels(labels);
    p.start_time_ns = 1'700'000'000'000'000'000ull;
    p.end_time_ns = p.start_time_ns + 10'000'000'000ull;
    p.frequency_hz = 100;
    p.period_ns = 10'000'000;
    p.samples.push_back(ProfileSample{{leaf, main_}, 6, 42, "worker", 60'000'000});
    p.samples.push_back(ProfileSample{{kfn, leaf, main_}, 2, 42, "worker", 20'000'000});
    return p;
  }
};

pb::ExportProfilesServiceRequest decode(const std::vector<const Profile*>& ps) {
  auto raw = encode_otlp_request(ps, {"1.2.3"});
  EXPECT_TRUE(raw.ok());
  pb::ExportProfilesServiceRequest req;
  EXPECT_TRUE(raw.ok() && req.ParseFromString(*raw));
  return req;
}

std::string attr(const pb::Resource& r, const std::string& key) {
  for (const auto& kv : r.attributes())
    if (kv.key() == key)
      return kv.value().has_int_value() ? std::to_string(kv.value().int_value()) : kv.value().string_value();
  return "<absent>";
}

TEST(Otlp, ResourcesCarryTheSeriesLabelsUnderSemanticConventionNames) {
  Fixture f;
  Profile a = f.cpu({{"service_name", "shop"}, {"namespace", "prod"}, {"pod", "shop-1"},
                     {"container", "app"}, {"node", "n1"}, {"env", "e2e"}, {"__meta_x", "hidden"}});
  Profile b = f.cpu({{"service_name", "db"}, {"pid", "77"}});
  auto req = decode({&a, &b});
  ASSERT_EQ(req.resource_profiles_size(), 2);
  const auto& r = req.resource_profiles(0).resource();
  EXPECT_EQ(attr(r, "service.name"), "shop");
  EXPECT_EQ(attr(r, "k8s.namespace.name"), "prod");
  EXPECT_EQ(attr(r, "k8s.pod.name"), "shop-1");
  EXPECT_EQ(attr(r, "k8s.container.name"), "app");
  EXPECT_EQ(attr(r, "k8s.node.name"), "n1");
  EXPECT_EQ(attr(r, "env"), "e2e");
  EXPECT_EQ(attr(r, "__meta_x"), "<absent>");
  const auto& r2 = req.resource_profiles(1).resource();
  EXPECT_EQ(attr(r2, "service.name"), "db");
  ASSERT_EQ(r2.attributes_size(), 2);
  EXPECT_EQ(r2.attributes(0).key(), "process.pid");  // labels in name order: pid first
  EXPECT_TRUE(r2.attributes(0).value().has_int_value());
  EXPECT_EQ(attr(r2, "process.pid"), "77");
  EXPECT_EQ(req.resource_profiles(0).scope_profiles(0).scope().name(), "ember");
  EXPECT_EQ(req.resource_profiles(0).scope_profiles(0).scope().version(), "1.2.3");
}

TEST(Otlp, CpuIsSamplesCountWithACpuPeriodAndOneValuePerSample) {
  Fixture f;
  Profile a = f.cpu({{"service_name", "shop"}});
  auto req = decode({&a});
  const auto& d = req.dictionary();
  auto s = [&](int32_t i) { return d.string_table(i); };
  const auto& p = req.resource_profiles(0).scope_profiles(0).profiles(0);
  EXPECT_EQ(s(p.sample_type().type_strindex()), "samples");
  EXPECT_EQ(s(p.sample_type().unit_strindex()), "count");
  EXPECT_EQ(s(p.period_type().type_strindex()), "cpu");
  EXPECT_EQ(s(p.period_type().unit_strindex()), "nanoseconds");
  EXPECT_EQ(p.period(), 10'000'000);
  EXPECT_EQ(p.time_unix_nano(), 1'700'000'000'000'000'000ull);
  EXPECT_EQ(p.duration_nano(), 10'000'000'000ull);
  EXPECT_EQ(p.profile_id().size(), 16u);
  ASSERT_EQ(p.samples_size(), 2);
  EXPECT_EQ(p.samples(0).values_size(), 1);
  EXPECT_EQ(p.samples(0).values(0), 6);
  // The kernel frame's stack: leaf first, then the two user frames; the
  // user location has its inlined callee first.
  const auto& st = d.stack_table(p.samples(1).stack_index());
  ASSERT_EQ(st.location_indices_size(), 3);
  const auto& kloc = d.location_table(st.location_indices(0));
  const auto& uloc = d.location_table(st.location_indices(1));
  ASSERT_EQ(uloc.lines_size(), 2);
  EXPECT_EQ(s(d.function_table(uloc.lines(0).function_index()).name_strindex()), "inlined");
  EXPECT_EQ(s(d.function_table(uloc.lines(1).function_index()).name_strindex()), "leaf");
  auto frame_type = [&](const pb::Location& l) {
    for (int32_t i : l.attribute_indices())
      if (s(d.attribute_table(i).key_strindex()) == "profile.frame.type") return d.attribute_table(i).value().string_value();
    return std::string("<absent>");
  };
  EXPECT_EQ(frame_type(kloc), "kernel");
  EXPECT_EQ(frame_type(uloc), "native");
  EXPECT_EQ(kloc.mapping_index(), 0);  // no mapping: the empty entry
  const auto& m = d.mapping_table(uloc.mapping_index());
  EXPECT_EQ(s(m.filename_strindex()), "/usr/bin/app");
  ASSERT_EQ(m.attribute_indices_size(), 1);
  EXPECT_EQ(d.attribute_table(m.attribute_indices(0)).value().string_value(), "abcdef0123");
  // Sample attributes: the pid and thread name.
  std::set<std::string> keys;
  for (int32_t i : p.samples(0).attribute_indices()) keys.insert(s(d.attribute_table(i).key_strindex()));
  EXPECT_EQ(keys, (std::set<std::string>{"process.pid", "thread.name"}));
}

TEST(Otlp, TablesStartEmptyAndHoldNothingTwice) {
  Fixture f;
  Profile a = f.cpu({{"service_name", "shop"}});
  Profile b = f.cpu({{"service_name", "db"}});  // the same frames in another series
  auto req = decode({&a, &b});
  const auto& d = req.dictionary();
  EXPECT_EQ(d.string_table(0), "");
  EXPECT_EQ(d.mapping_table(0).ByteSizeLong(), 0u);
  EXPECT_EQ(d.location_table(0).ByteSizeLong(), 0u);
  EXPECT_EQ(d.function_table(0).ByteSizeLong(), 0u);
  EXPECT_EQ(d.attribute_table(0).ByteSizeLong(), 0u);
  EXPECT_EQ(d.stack_table(0).ByteSizeLong(), 0u);
  EXPECT_EQ(d.link_table(0).ByteSizeLong(), 0u);
  std::set<std::string> strings(d.string_table().begin(), d.string_table().end());
  EXPECT_EQ(strings.size(), size_t(d.string_table_size()));
  EXPECT_EQ(d.location_table_size(), 1 + 3);  // leaf, main, the kernel frame
  EXPECT_EQ(d.stack_table_size(), 1 + 2);
}

TEST(Otlp, MeasuredEventsSendNanosecondsWithoutAPeriod) {
  Fixture f;
  Profile off = f.cpu({{"service_name", "shop"}});
  off.event = EventKind::kOffCpu;
  off.frequency_hz = 0;
  off.period_ns = 0;
  auto req = decode({&off});
  const auto& d = req.dictionary();
  const auto& p = req.resource_profiles(0).scope_profiles(0).profiles(0);
  EXPECT_EQ(d.string_table(p.sample_type().type_strindex()), "off_cpu");
  EXPECT_EQ(d.string_table(p.sample_type().unit_strindex()), "nanoseconds");
  EXPECT_EQ(p.period(), 0);
  EXPECT_EQ(p.samples(0).values(0), 60'000'000);  // the value, not the count
}

TEST(Otlp, AnIntervalIsOneGzipItemWithItsTotals) {
  Fixture f;
  ProfileBatch batch;
  batch.profiles.push_back(f.cpu({{"service_name", "shop"}}));
  batch.profiles.push_back(f.cpu({{"service_name", "db"}}));
  auto item = encode_otlp_for_upload(batch);
  ASSERT_TRUE(item.ok());
  ASSERT_TRUE(*item);
  EXPECT_EQ((*item)->samples, 16u);
  EXPECT_TRUE((*item)->pprof_gz.empty());
  auto raw = gzip_decompress((*item)->otlp_request_gz);
  ASSERT_TRUE(raw.ok());
  pb::ExportProfilesServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(*raw));
  EXPECT_EQ(req.resource_profiles_size(), 2);
  EXPECT_FALSE(*encode_otlp_for_upload(ProfileBatch{}));  // nothing to send
}

TEST(Otlp, AttributeNames) {
  EXPECT_EQ(otlp_attribute_name("service_name"), "service.name");
  EXPECT_EQ(otlp_attribute_name("container_id"), "container.id");
  EXPECT_EQ(otlp_attribute_name("exe"), "process.executable.name");
  EXPECT_EQ(otlp_attribute_name("team"), "team");
}

}  // namespace
}  // namespace ember
