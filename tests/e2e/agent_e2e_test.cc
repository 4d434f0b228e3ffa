// `ember agent` end to end, as root: continuous whole-system profiling into
// a directory, one pprof per service per interval.
#include <gtest/gtest.h>

#include "agent/export/pprof.h"
#include "e2e_util.h"
#include "profile.pb.h"

namespace ember::e2e {
namespace {

class AgentE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "end-to-end tests need root (BPF)";
  }
};

TEST_F(AgentE2E, WritesOneProfilePerServicePerInterval) {
  TempDir tmp;
  std::ofstream(tmp / "ember.yaml") << "frequency: 100\n"
                                       "interval: 1s\n"
                                       "labels:\n  env: e2e\n"
                                       "output:\n  directory: " << (tmp / "profiles") << "\n";
  Proc burner({fixture("ratio_fp"), "120"});  // killed at the end
  Proc agent({ember_bin(), "agent", "--config", tmp / "ember.yaml"}, tmp / "out", tmp / "err");

  // The workload's finished profiles (temp files are renamed into place).
  const std::filesystem::path dir = tmp / "profiles";
  int ratio_files = 0;
  uint64_t leaf_samples = 0;
  std::string bad;
  auto count = [&] {
    ratio_files = 0;
    leaf_samples = 0;
    std::error_code ec;
    for (const auto& ent : std::filesystem::directory_iterator(dir, ec)) {
      std::string name = ent.path().filename().string();
      if (name.rfind("ratio_fp-", 0) != 0 || name.find(".tmp") != std::string::npos) continue;
      ++ratio_files;
      auto raw = gzip_decompress(read_file(ent.path().string()));
      perftools::profiles::Profile p;
      if (!raw.ok() || !p.ParseFromString(*raw)) {
        bad = name;
        continue;
      }
      const auto& s = p.string_table();
      for (const auto& sample : p.sample()) {
        const auto& loc = p.location(int(sample.location_id(0) - 1));
        if (loc.line_size() && s[p.function(int(loc.line(0).function_id() - 1)).name()] == "leaf")
          leaf_samples += uint64_t(sample.value(0));
      }
    }
    return ratio_files >= 3 && leaf_samples >= 250;
  };
  // About four 1 s intervals of the workload (on an idle machine ~4.5 s).
  wait_until(count);
  agent.signal(SIGTERM);
  ASSERT_EQ(agent.wait(std::chrono::seconds(60)), 0) << read_file(tmp / "err");
  std::string log = read_file(tmp / "err");
  EXPECT_NE(log.find("level=info"), std::string::npos) << log;  // structured logs

  for (const auto& ent : std::filesystem::directory_iterator(dir)) {
    std::string name = ent.path().filename().string();
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << "temp file left behind: " << name;
  }
  count();
  EXPECT_EQ(bad, "") << "not a gzipped pprof profile";
  report_figure("profile_files", ratio_files);
  report_figure("leaf_samples", double(leaf_samples));
  EXPECT_GE(ratio_files, 3) << log;
  EXPECT_GE(leaf_samples, 250u) << log;
}

TEST_F(AgentE2E, CheckValidatesAndExplainsConfigErrors) {
  TempDir tmp;
  std::ofstream(tmp / "bad.yaml") << "interval: 5s\nfrequncy: 99\nsampler:\n  ring_buffer_size: lots\n";
  auto bad = run({ember_bin(), "agent", "--config", tmp / "bad.yaml", "--check"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("bad.yaml:2: frequncy: unknown key (did you mean 'frequency'?)"),
            std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("bad.yaml:4: sampler.ring_buffer_size"), std::string::npos) << bad.err;

  std::ofstream(tmp / "good.yaml") << "frequency: 49\n";
  auto good = run({ember_bin(), "agent", "--config", tmp / "good.yaml", "--interval", "20s", "--check"});
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_NE(good.out.find("frequency: 49"), std::string::npos);
  EXPECT_NE(good.out.find("interval: 20s"), std::string::npos);  // the flag overrides the file

  auto missing = run({ember_bin(), "agent", "--config", tmp / "nope.yaml"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("nope.yaml"), std::string::npos);
}

}  // namespace
}  // namespace ember::e2e
