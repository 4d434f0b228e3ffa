// Kernel support: load-failure explanations from real libbpf logs, and
// kernel features read from a kernel's BTF.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "agent/config/config.h"
#include "agent/sampler/kernel_features.h"
#include "agent/sampler/load_diagnosis.h"

namespace ember {
namespace {

// What libbpf 1.1 printed (debug level included) when the object built
// against a 6.18 vmlinux.h was loaded on Debian 12's 6.1.0-50 (issue 17):
// captured in a kernel-matrix VM, unrelated lines trimmed.
const char* kCoreMismatchLog = R"(libbpf: sec '.relperf_event': relo #40: insn #737 against 'unwind_procs'
libbpf: prog 'ember_sample_fp': relo #39: <byte_off> [91] struct bpf_perf_event_data.regs.ip (0:0:16 @ offset 128)
libbpf: prog 'ember_sample_dwarf': relo #40: <byte_off> [91] struct bpf_perf_event_data.regs.cs (0:0:17:0 @ offset 136)
libbpf: prog 'ember_sample_dwarf': relo #40: matching candidate #0 <byte_off> [10026] struct bpf_perf_event_data.regs.cs (0:0:17 @ offset 136)
libbpf: prog 'ember_sample_dwarf': relo #40: patched insn #141 (LDX/ST/STX) off 136 -> 136
libbpf: prog 'ember_sample_dwarf': relo #40: insn #141 (LDX/ST/STX) unexpected mem size: got 8, exp 2
libbpf: prog 'ember_sample_dwarf': relo #40: failed to patch insn #141: -22
libbpf: failed to perform CO-RE relocations: -22
libbpf: failed to load object 'profile_bpf'
libbpf: failed to load BPF skeleton 'profile_bpf': -22
)";

TEST(LoadDiagnosis, NamesTheProgramTheFieldAndTheKernel) {
  std::string msg = explain_load_failure(kCoreMismatchLog, "6.1.0-50-amd64", -EINVAL);
  EXPECT_NE(msg.find("'ember_sample_dwarf'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("struct bpf_perf_event_data.regs.cs"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Linux 6.1.0-50-amd64"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected mem size: got 8, exp 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Invalid argument"), std::string::npos) << msg;
  // Not the field of an earlier, successful relocation.
  EXPECT_EQ(msg.find("regs.ip"), std::string::npos) << msg;
}

// A kernel older than a helper (Debian 11's 5.10 has no bpf_loop): its
// verifier names the helper only by number.
const char* kMissingHelperLog = R"(libbpf: prog 'ember_sample_dwarf': BPF program load failed: Invalid argument
libbpf: prog 'ember_sample_dwarf': -- BEGIN PROG LOAD LOG --
0: R1=ctx(id=0,off=0,imm=0) R10=fp0
; int ember_sample_dwarf(struct bpf_perf_event_data* ctx) { return sample(ctx, true); }
0: (bf) r6 = r1
1: (85) call bpf_get_current_pid_tgid#14
2: (b7) r1 = 0
3: (63) *(u32 *)(r10 -4) = r1
4: (bf) r2 = r10
5: (07) r2 += -4
6: (18) r1 = 0xffff8880047c5000
8: (85) call bpf_map_lookup_elem#1
9: (15) if r0 == 0x0 goto pc+2
10: (79) r1 = *(u64 *)(r0 +0)
11: (07) r1 += 1
12: (7b) *(u64 *)(r0 +0) = r1
13: (85) call unknown#181
invalid func unknown#181
processed 14 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0
-- END PROG LOAD LOG --
libbpf: failed to load program 'ember_sample_dwarf'
libbpf: failed to load object 'profile_bpf'
)";

TEST(LoadDiagnosis, NamesAMissingHelperAndShowsTheVerifierLogEnds) {
  std::string msg = explain_load_failure(kMissingHelperLog, "5.10.0-46-amd64", -EINVAL);
  EXPECT_NE(msg.find("'ember_sample_dwarf'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bpf_loop (Linux 5.17)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Linux 5.10.0-46-amd64"), std::string::npos) << msg;
  // The first lines and the last ones, with the count of those left out.
  EXPECT_NE(msg.find("0: R1=ctx"), std::string::npos) << msg;
  EXPECT_NE(msg.find("invalid func unknown#181"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lines; --log-level=debug"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("2: (b7) r1 = 0"), std::string::npos) << msg;
}

// A CO-RE access to a field the kernel lacks is poisoned by libbpf; if the
// code is reachable, the verifier trips on libbpf's marker call.
const char* kPoisonedLog = R"(libbpf: prog 'ember_exec': relo #3: <byte_off> [12] struct mm_struct.saved_auxv (0:3 @ offset 24)
libbpf: prog 'ember_exec': relo #3: no matching targets found
libbpf: prog 'ember_exec': relo #3: substituting insn #20 w/ invalid insn
libbpf: prog 'ember_exec': BPF program load failed: Invalid argument
libbpf: prog 'ember_exec': -- BEGIN PROG LOAD LOG --
20: (85) call unknown#195896080
invalid func unknown#195896080
-- END PROG LOAD LOG --
)";

TEST(LoadDiagnosis, NamesAFieldTheKernelDoesNotHave) {
  std::string msg = explain_load_failure(kPoisonedLog, "5.4.0", -EINVAL);
  EXPECT_NE(msg.find("'ember_exec'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not have (struct mm_struct.saved_auxv)"), std::string::npos) << msg;
}

TEST(LoadDiagnosis, AnythingElseShowsLibbpfsLastLines) {
  std::string msg = explain_load_failure(
      "libbpf: map 'events': failed to create: Operation not permitted(-1)\n"
      "libbpf: failed to load object 'profile_bpf'\n",
      "6.1.0", -EPERM);
  EXPECT_NE(msg.find("map 'events': failed to create"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Linux 6.1.0 (Operation not permitted)"), std::string::npos) << msg;
}

TEST(KernelFeatures, ConfigAcceptsExactlyTheSamplersFeatureNames) {
  std::vector<std::string> config_names(std::begin(kKernelFeatureNames), std::end(kKernelFeatureNames));
  EXPECT_EQ(config_names, kernel_feature_names());
  KernelFeatures f;
  f.bpf_loop = f.task_pt_regs = true;
  EXPECT_TRUE(disable_kernel_feature(&f, "bpf_loop"));
  EXPECT_FALSE(f.bpf_loop);
  EXPECT_TRUE(f.task_pt_regs);
  auto bad = disable_kernel_feature(&f, "bpf_lop");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("bpf_loop, task_pt_regs"), std::string::npos);
}

TEST(KernelFeatures, FromTheHelpersAKernelsBtfNames) {
  struct Case {
    const char* file;
    bool loop, pt_regs;
  } cases[] = {
      {"fake_btf_5_10.o", false, false},
      {"fake_btf_5_15.o", false, true},
      {"fake_btf_6_1.o", true, true},
  };
  for (const auto& c : cases) {
    auto f = kernel_features_from_btf(std::string(FIXTURE_DIR) + "/" + c.file);
    ASSERT_TRUE(f) << f.error().message;
    EXPECT_EQ(f->bpf_loop, c.loop) << c.file;
    EXPECT_EQ(f->task_pt_regs, c.pt_regs) << c.file;
  }
  auto missing = kernel_features_from_btf(std::string(FIXTURE_DIR) + "/no-such.btf");
  EXPECT_FALSE(missing);
  // Any BTF without the enum is not a kernel's.
  auto other = kernel_features_from_btf(std::string(FIXTURE_DIR) + "/fake_btf_none.o");
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message.find("no enum bpf_func_id"), std::string::npos);
}

}  // namespace
}  // namespace ember
