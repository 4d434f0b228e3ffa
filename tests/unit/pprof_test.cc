#include "agent/export/pprof.h"

#include <gtest/gtest.h>

#include <set>

#include "profile.pb.h"
#include "profile_builders.h"

namespace ember {
namespace {

namespace pb = perftools::profiles;
using namespace ember::testing;

struct Fixture {
  std::shared_ptr<const Mapping> exe = make_mapping("/usr/bin/app", 0x400000, 0x500000, "abcdef0123");
  std::shared_ptr<const Mapping> kernel = make_mapping("[kernel.kallsyms]", 0xffff800000000000ull, ~0ull);
  LocationRef leaf = make_location(0x401000, exe, {"leaf"});
  LocationRef inlined = make_location(0x402000, exe, {"inner_inlined", "caller"});
  LocationRef main_ = make_location(0x403000, exe, {"main"});
  LocationRef ksym = make_location(0xffffffff81001000, kernel, {"do_syscall_64"}, origin::kKernel);

  Profile profile() {
    Profile p;
    p.labels = labels({{"service_name", "app"}});
    p.start_time_ns = 1'700'000'000'000'000'000ull;
    p.end_time_ns = p.start_time_ns + 10'000'000'000ull;
    p.frequency_hz = 100;
    p.period_ns = 10'000'000;
    p.samples.push_back(ProfileSample{{leaf, inlined, main_}, 6, 42, "app", 60'000'000});
    p.samples.push_back(ProfileSample{{ksym, leaf, main_}, 3, 42, "app-worker", 30'000'000});
    return p;
  }
};

pb::Profile decode(const Result<std::string>& gz) {
  EXPECT_TRUE(gz.ok());
  if (!gz.ok()) return {};
  auto raw = gzip_decompress(*gz);
  EXPECT_TRUE(raw.ok());
  pb::Profile p;
  EXPECT_TRUE(p.ParseFromString(*raw));
  return p;
}

TEST(Pprof, SampleTypesPeriodAndTimes) {
  Fixture f;
  pb::Profile p = decode(encode_pprof_gz(f.profile()));
  const auto& s = p.string_table();
  ASSERT_GT(s.size(), 0);
  EXPECT_EQ(s[0], "");
  ASSERT_EQ(p.sample_type_size(), 2);
  EXPECT_EQ(s[p.sample_type(0).type()], "samples");
  EXPECT_EQ(s[p.sample_type(0).unit()], "count");
  EXPECT_EQ(s[p.sample_type(1).type()], "cpu");
  EXPECT_EQ(s[p.sample_type(1).unit()], "nanoseconds");
  EXPECT_EQ(s[p.period_type().type()], "cpu");
  EXPECT_EQ(s[p.period_type().unit()], "nanoseconds");
  EXPECT_EQ(p.period(), 10'000'000);
  EXPECT_EQ(p.time_nanos(), 1'700'000'000'000'000'000ll);
  EXPECT_EQ(p.duration_nanos(), 10'000'000'000ll);
  EXPECT_EQ(s[p.default_sample_type()], "cpu");
}

TEST(Pprof, SampleTypesFollowTheEvent) {
  Fixture f;
  Profile off = f.profile();
  off.event = EventKind::kOffCpu;
  off.frequency_hz = 0;
  off.period_ns = 0;
  off.samples[0].value = 123'456;
  pb::Profile p = decode(encode_pprof_gz(off));
  auto s = [&](int64_t i) { return p.string_table(int(i)); };
  ASSERT_EQ(p.sample_type_size(), 2);
  EXPECT_EQ(s(p.sample_type(0).type()), "samples");
  EXPECT_EQ(s(p.sample_type(1).type()), "off_cpu");
  EXPECT_EQ(s(p.sample_type(1).unit()), "nanoseconds");
  EXPECT_EQ(s(p.period_type().type()), "off_cpu");
  EXPECT_EQ(s(p.default_sample_type()), "off_cpu");
  EXPECT_EQ(p.period(), 0);  // measured, not sampled
  // Values are [count, the values measured], not count x period.
  EXPECT_EQ(p.sample(0).value(0), 6);
  EXPECT_EQ(p.sample(0).value(1), 123'456);
  for (int i = 0; i < p.string_table_size(); ++i) EXPECT_NE(p.string_table(i), "cpu");
}

TEST(Pprof, SamplesLocationsFunctionsAndMappings) {
  Fixture f;
  pb::Profile p = decode(encode_pprof_gz(f.profile()));
  const auto& s = p.string_table();
  ASSERT_EQ(p.sample_size(), 2);
  // Values are [count, count * period].
  EXPECT_EQ(p.sample(0).value(0), 6);
  EXPECT_EQ(p.sample(0).value(1), 60'000'000);
  EXPECT_EQ(p.sample(1).value(0), 3);
  // Locations are shared between samples: 4 distinct.
  EXPECT_EQ(p.location_size(), 4);
  EXPECT_EQ(p.sample(0).location_id(0), p.sample(1).location_id(1));  // leaf
  // Ids are 1-based and index the arrays.
  for (int i = 0; i < p.location_size(); ++i) EXPECT_EQ(p.location(i).id(), uint64_t(i + 1));
  for (int i = 0; i < p.function_size(); ++i) EXPECT_EQ(p.function(i).id(), uint64_t(i + 1));

  auto function_name = [&](uint64_t fid) { return s[p.function(int(fid - 1)).name()]; };
  const pb::Location& inl = p.location(int(p.sample(0).location_id(1) - 1));
  EXPECT_EQ(inl.address(), 0x402000u);
  ASSERT_EQ(inl.line_size(), 2);  // inlined frame first, then its caller
  EXPECT_EQ(function_name(inl.line(0).function_id()), "inner_inlined");
  EXPECT_EQ(function_name(inl.line(1).function_id()), "caller");

  ASSERT_EQ(p.mapping_size(), 2);
  const pb::Mapping& exe = p.mapping(int(inl.mapping_id() - 1));
  EXPECT_EQ(s[exe.filename()], "/usr/bin/app");
  EXPECT_EQ(s[exe.build_id()], "abcdef0123");
  EXPECT_EQ(exe.memory_start(), 0x400000u);
  EXPECT_EQ(exe.memory_limit(), 0x500000u);
  EXPECT_TRUE(exe.has_functions());
  EXPECT_TRUE(exe.has_inline_frames());
}

TEST(Pprof, SampleLabelsCarryPidAndThread) {
  Fixture f;
  pb::Profile p = decode(encode_pprof_gz(f.profile()));
  const auto& s = p.string_table();
  const auto& sample = p.sample(1);
  bool pid = false, thread = false;
  for (const auto& l : sample.label()) {
    if (s[l.key()] == "pid") pid = l.num() == 42;
    if (s[l.key()] == "thread_name") thread = s[l.str()] == "app-worker";
  }
  EXPECT_TRUE(pid);
  EXPECT_TRUE(thread);
  PprofOptions no_labels;
  no_labels.sample_labels = false;
  EXPECT_EQ(decode(encode_pprof_gz(f.profile(), no_labels)).sample(0).label_size(), 0);
}

TEST(Pprof, StringsAreStoredOnce) {
  Fixture f;
  pb::Profile p = decode(encode_pprof_gz(f.profile()));
  std::set<std::string> seen;
  for (const auto& str : p.string_table()) EXPECT_TRUE(seen.insert(str).second) << str;
}

TEST(Pprof, GzipRoundTripAndCorruption) {
  std::string data(100000, 'x');
  auto compressed = gzip_compress(data);
  ASSERT_TRUE(compressed.ok());
  const std::string& gz = *compressed;
  EXPECT_LT(gz.size(), data.size() / 10);
  EXPECT_EQ(gz[0], '\x1f');  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  EXPECT_EQ(*gzip_decompress(gz), data);
  EXPECT_FALSE(gzip_decompress(gz.substr(0, gz.size() / 2)).ok());
  EXPECT_FALSE(gzip_decompress("not gzip at all").ok());
}

}  // namespace
}  // namespace ember
