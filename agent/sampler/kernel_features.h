// KernelFeatures: the BPF abilities of a kernel that change what Ember can
// do, each probed once at start. Ember runs on every kernel from 5.8; each
// feature below buys something specific, and without it Ember falls back
// (README "Requirements" lists them with their kernel versions).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace ember {

struct KernelFeatures {
  // bpf_loop (5.17): the table-driven unwinder, so code built without frame
  // pointers unwinds completely. Without it: frame pointers only.
  bool bpf_loop = false;
  // bpf_task_pt_regs (5.15): samples taken while the CPU was in the kernel
  // get their user stack from Ember's own walker (tables, or frame pointers
  // with the prologue fix-up). Without it: the kernel's frame-pointer walk
  // (bpf_get_stack) for those samples.
  bool task_pt_regs = false;
};

// Feature names as users write them (sampler.disable_kernel_features,
// --disable-kernel-feature): "bpf_loop", "task_pt_regs".
const std::vector<std::string>& kernel_feature_names();
// Turns off the named feature; an error naming the valid ones otherwise.
Status disable_kernel_feature(KernelFeatures* f, const std::string& name);

// The running kernel, by asking its verifier (libbpf's helper probes).
KernelFeatures probe_running_kernel();

// The kernel a BTF file describes (a raw BTF blob or an ELF file with a .BTF
// section, such as /sys/kernel/btf/vmlinux or a vmlinux): a helper exists
// when the kernel's `enum bpf_func_id` names it.
Result<KernelFeatures> kernel_features_from_btf(const std::string& path);

}  // namespace ember
