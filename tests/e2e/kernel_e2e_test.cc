// Kernel support end to end, as root on this machine's kernel: the kernel
// check, and the fallbacks of older kernels forced on this one (Ember's
// feature probes turned off). The same fallbacks run for real on 5.10 and
// 5.15 in the kernel matrix (tests/kernels).
#include <gtest/gtest.h>

#include "e2e_util.h"

namespace ember::e2e {
namespace {

class KernelE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "end-to-end tests need root (BPF)";
  }
};

TEST_F(KernelE2E, KernelCheckLoadsEveryProgramHereAndAgainstThisKernelsBtf) {
  auto r = run({ember_bin(), "kernel-check"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("OK: loaded"), std::string::npos) << r.out;
  for (const char* prog : {"ember_sample_fp", "ember_exec", "ember_exit", "ember_fork", "ember_switch_fp",
                           "ember_switch_dwarf", "ember_sys_exit_fp", "ember_sys_exit_dwarf"})
    EXPECT_NE(r.out.find(prog), std::string::npos) << prog << "\n" << r.out;
  auto btf = run({ember_bin(), "kernel-check", "--btf", "/sys/kernel/btf/vmlinux"});
  EXPECT_EQ(btf.exit_code, 0) << btf.out << btf.err;
  // Checking as a kernel without bpf_loop leaves the table sampler out.
  auto old = run({ember_bin(), "kernel-check", "--disable-kernel-feature", "bpf_loop"});
  EXPECT_EQ(old.exit_code, 0) << old.out << old.err;
  EXPECT_NE(old.out.find("bpf_loop: no"), std::string::npos) << old.out;
  EXPECT_EQ(old.out.find("ember_sample_dwarf"), std::string::npos) << old.out;
  // A file that is not a kernel's BTF fails, saying so.
  auto bad = run({ember_bin(), "kernel-check", "--btf", fixture("fake_btf_none.o")});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_NE(bad.out.find("not a kernel's BTF"), std::string::npos) << bad.out;
}

// A 5.8-5.14 kernel, simulated: no bpf_loop (so frame pointers), no
// bpf_task_pt_regs (so the kernel's own walk for samples taken in the
// kernel). A frame-pointer workload keeps its whole chain and true shares.
TEST_F(KernelE2E, OlderKernelFallbacksKeepFullChainsAndTrueShares) {
  TempDir tmp;
  auto r = run({ember_bin(), "record", "-F", "199", "--disable-kernel-feature", "bpf_loop",
                "--disable-kernel-feature", "task_pt_regs", "-o", tmp / "out.folded", "--",
                fixture("ratio_fp"), "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("bpf_loop is off"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bpf_task_pt_regs is off"), std::string::npos) << r.err;
  uint64_t leaf = 0, chain[3] = {};
  const char* callers[3] = {"caller_a", "caller_b", "caller_c"};
  for (const auto& s : parse_folded(read_file(tmp / "out.folded"))) {
    if (!s.contains("leaf")) continue;
    leaf += s.count;
    for (int i = 0; i < 3; ++i)
      if (s.has_chain({"main", "run", callers[i], "leaf"})) chain[i] += s.count;
  }
  uint64_t full = chain[0] + chain[1] + chain[2];
  std::printf("[ info ] leaf %llu, full chain %llu: a=%llu b=%llu c=%llu\n", (unsigned long long)leaf,
              (unsigned long long)full, (unsigned long long)chain[0], (unsigned long long)chain[1],
              (unsigned long long)chain[2]);
  ASSERT_GT(leaf, 500u);
  expect_share_at_least("full_chain_of_leaf", double(full), double(leaf), 0.99);
  const double truth[3] = {0.6, 0.3, 0.1};
  for (int i = 0; i < 3; ++i)
    expect_share_binomial(std::string("share_") + callers[i], double(chain[i]), double(full), truth[i]);
}

// Without bpf_task_pt_regs, samples taken in the kernel still carry the
// user stack (from the kernel's frame-pointer walk): a process that lives
// in write(2) shows its user code under the kernel frames.
TEST_F(KernelE2E, KernelModeSamplesKeepTheirUserStackWithoutTaskPtRegs) {
  if (!have_program("dd")) GTEST_SKIP() << "dd missing";
  TempDir tmp;
  auto r = run({ember_bin(), "record", "-F", "199", "--disable-kernel-feature", "task_pt_regs",
                "-o", tmp / "out.folded", "--", "dd", "if=/dev/zero", "of=/dev/null", "bs=1",
                "count=3000000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  uint64_t in_kernel = 0, with_user = 0;
  for (const auto& s : parse_folded(read_file(tmp / "out.folded"))) {
    if (s.frames.empty() || s.frames[0] != "dd") continue;
    bool kernel = false, user = false;
    for (size_t i = 1; i < s.frames.size(); ++i) {
      const auto& f = s.frames[i];
      bool k = f.size() > 4 && f.compare(f.size() - 4, 4, "_[k]") == 0;
      kernel |= k;
      user |= !k && f != "[unknown]";
    }
    if (!kernel) continue;
    in_kernel += s.count;
    if (user) with_user += s.count;
  }
  std::printf("[ info ] %llu samples in the kernel, %llu with user frames\n",
              (unsigned long long)in_kernel, (unsigned long long)with_user);
  ASSERT_GT(in_kernel, 100u);
  expect_share_at_least("kernel_samples_with_user_frames", double(with_user), double(in_kernel), 0.95);
}

TEST_F(KernelE2E, TablesOnRequestWithoutBpfLoopFailNamingIt) {
  auto r = run({ember_bin(), "record", "--unwinder", "tables", "--disable-kernel-feature",
                "bpf_loop", "-o", "/tmp/ember-unused.folded", "--", "true"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("bpf_loop"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("table-driven unwinder"), std::string::npos) << r.err;
  auto bad = run({ember_bin(), "record", "--disable-kernel-feature", "bpf_lop", "--", "true"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("unknown kernel feature 'bpf_lop'"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace ember::e2e
