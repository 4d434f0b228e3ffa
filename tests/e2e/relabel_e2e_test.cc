// relabel_configs end to end, as root: a `drop` rule on one busy workload's
// comm stops profiling it (in the kernel, after its first samples) while an
// identical workload under another name is still profiled.
#include <gtest/gtest.h>

#include <regex>

#include "agent/export/pprof.h"
#include "e2e_util.h"
#include "profile.pb.h"

namespace ember::e2e {
namespace {

class RelabelE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "end-to-end tests need root (BPF)";
  }
};

uint64_t samples_in(const std::string& path) {
  auto raw = gzip_decompress(read_file(path));
  if (!raw.ok()) return 0;
  perftools::profiles::Profile p;
  if (!p.ParseFromString(*raw)) return 0;
  uint64_t n = 0;
  for (const auto& s : p.sample()) n += uint64_t(s.value(0));
  return n;
}

TEST_F(RelabelE2E, DropRuleStopsProfilingOneWorkload) {
  TempDir tmp;
  // The same busy program under two names: comm is the file name.
  std::filesystem::copy_file(fixture("ratio_fp"), tmp / "burn_keep");
  std::filesystem::copy_file(fixture("ratio_fp"), tmp / "burn_drop");
  std::ofstream(tmp / "ember.yaml") << "frequency: 100\n"
                                       "interval: 1s\n"
                                       "metrics:\n  listen: \"\"\n"
                                       "relabel_configs:\n"
                                       "  - source_labels: [__meta_process_comm]\n"
                                       "    regex: burn_drop\n"
                                       "    action: drop\n"
                                       "output:\n  directory: " << (tmp / "profiles") << "\n";
  Proc keep({tmp / "burn_keep", "8"});
  Proc drop({tmp / "burn_drop", "8"});
  Proc agent({ember_bin(), "agent", "--config", tmp / "ember.yaml"}, tmp / "out", tmp / "err");
  std::this_thread::sleep_for(std::chrono::milliseconds(4500));
  agent.signal(SIGTERM);
  ASSERT_EQ(agent.wait(std::chrono::seconds(60)), 0) << read_file(tmp / "err");
  std::string log = read_file(tmp / "err");

  uint64_t kept = 0, dropped = 0;
  for (const auto& ent : std::filesystem::directory_iterator(tmp / "profiles")) {
    std::string name = ent.path().filename().string();
    if (name.rfind("burn_keep-", 0) == 0) kept += samples_in(ent.path().string());
    if (name.rfind("burn_drop-", 0) == 0) dropped += samples_in(ent.path().string());
  }
  report_figure("kept", double(kept));
  EXPECT_GE(kept, 250u) << log;  // ~4 s of one busy CPU at 100 Hz
  EXPECT_EQ(dropped, 0u) << log;

  // The verdict reached the kernel: the dropped workload's samples stopped
  // being sent at all (about as many as the kept one's).
  std::smatch m;
  ASSERT_TRUE(std::regex_search(log, m, std::regex("(\\d+) samples skipped in the kernel"))) << log;
  EXPECT_GE(std::stoull(m[1]), 200u) << log;
  ASSERT_TRUE(std::regex_search(log, m, std::regex("labeled, (\\d+) dropped"))) << log;
  EXPECT_GE(std::stoull(m[1]), 1u) << log;
}

}  // namespace
}  // namespace ember::e2e
