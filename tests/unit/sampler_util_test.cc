#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "agent/cli/preflight.h"
#include "agent/export/file_exporter.h"
#include "agent/sampler/bpf_sampler.h"

namespace ember {
namespace {

TEST(CpuList, ParsesRangesAndSingles) {
  EXPECT_EQ(*parse_cpu_list("0-3\n"), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(*parse_cpu_list("0,2-3,7"), (std::vector<int>{0, 2, 3, 7}));
  EXPECT_EQ(*parse_cpu_list("5"), (std::vector<int>{5}));
  EXPECT_FALSE(parse_cpu_list("").ok());
  EXPECT_FALSE(parse_cpu_list("3-1").ok());
  EXPECT_FALSE(parse_cpu_list("a-b").ok());
}

TEST(CpuList, ReadsFromAnInjectedSysfs) {
  auto root = std::filesystem::temp_directory_path() / ("ember-sys-" + std::to_string(getpid()));
  std::filesystem::create_directories(root / "devices/system/cpu");
  std::ofstream(root / "devices/system/cpu/online") << "0-1,4\n";
  EXPECT_EQ(*online_cpus(root.string()), (std::vector<int>{0, 1, 4}));
  std::filesystem::remove_all(root);
  EXPECT_FALSE(online_cpus("/nonexistent").ok());
}

TEST(RingBuffer, AutoSizeScalesWithCpusAndFrequency) {
  EXPECT_EQ(auto_ring_buffer_bytes(1, 100), 2u << 20);         // the floor
  EXPECT_EQ(auto_ring_buffer_bytes(2, 100), 2u << 20);         // 800 KiB: still the floor
  EXPECT_EQ(auto_ring_buffer_bytes(8, 100), 4u << 20);         // 8 x 100 x 4 KiB, rounded up
  EXPECT_EQ(auto_ring_buffer_bytes(16, 100), 8u << 20);
  EXPECT_EQ(auto_ring_buffer_bytes(64, 100), 32u << 20);
  EXPECT_EQ(auto_ring_buffer_bytes(64, 1000), 256u << 20);
  EXPECT_EQ(auto_ring_buffer_bytes(4096, 10000), 256u << 20);  // the ceiling
}

TEST(Preflight, KernelReleaseParsing) {
  int ma = 0, mi = 0;
  EXPECT_TRUE(parse_kernel_release("6.1.0-18-amd64", &ma, &mi));
  EXPECT_EQ(ma, 6);
  EXPECT_EQ(mi, 1);
  EXPECT_FALSE(parse_kernel_release("garbage", &ma, &mi));
}

TEST(Preflight, NamesWhatIsMissing) {
  // A sysfs without BTF, and an old kernel: both are reported, precisely.
  auto r = preflight("/nonexistent-sys", "5.4.0-150-generic");
  ASSERT_FALSE(r.ok());
  std::string all;
  for (const auto& e : r.errors) all += e + "\n";
  EXPECT_NE(all.find("kernel 5.4.0-150-generic is too old"), std::string::npos) << all;
  EXPECT_NE(all.find("/nonexistent-sys/kernel/btf/vmlinux is missing"), std::string::npos) << all;
  EXPECT_NE(all.find("CONFIG_DEBUG_INFO_BTF"), std::string::npos) << all;
}

TEST(OutputFormat, FollowsTheExtension) {
  EXPECT_EQ(*output_format_for("x.pb.gz"), OutputFormat::kPprof);
  EXPECT_EQ(*output_format_for("dir/x.folded"), OutputFormat::kFolded);
  EXPECT_EQ(*output_format_for("x.txt"), OutputFormat::kFolded);
  EXPECT_EQ(*output_format_for("x.svg"), OutputFormat::kSvg);
  EXPECT_EQ(*output_format_for("x.html"), OutputFormat::kHtml);
  auto bad = output_format_for("x.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(".pb.gz"), std::string::npos);
}

TEST(OutputFormat, AgentFileNamesCarryServiceEventAndTime) {
  Profile p;
  p.labels = std::make_shared<const LabelSet>(Labels{{"service_name", "web/api"}});
  p.start_time_ns = 1'700'000'000'000'000'000ull;  // 2023-11-14 22:13:20 UTC
  EXPECT_EQ(DirectoryExporter::file_name_for(p), "web_api-cpu-20231114T221320Z.pb.gz");
  p.event = EventKind::kOffCpu;
  p.labels = nullptr;
  EXPECT_EQ(DirectoryExporter::file_name_for(p), "profile-off_cpu-20231114T221320Z.pb.gz");
}

}  // namespace
}  // namespace ember
