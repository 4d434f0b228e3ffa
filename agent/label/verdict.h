// VerdictSink: where the label stage sends "relabeling dropped this process",
// so the sampler stops sampling it in the kernel instead of shipping every
// sample to user space only to throw it away. The BPF implementation writes
// the drop_tgids / drop_cgroups maps (bpf/profile.bpf.c); tests use a fake.
//
// Keys: a tgid when the verdict depends on anything about the process itself
// (exe, comm, cmdline, pid); the cgroup v2 id (SampleMeta.cgroup_id) only
// when it provably depends on cgroup-level labels alone, so every process in
// that cgroup gets the same verdict. Exec and exit delete tgid entries in the
// kernel too; the label stage also forgets them in ring order (see
// ProcessLabeler::process_exec/process_exit).
//
// Threading: called from the pipeline thread only (the labeler), and once
// before start() for the kernel-thread verdict.
#pragma once

#include <cstdint>

namespace ember {

class VerdictSink {
 public:
  enum class Put { kOk, kFull, kError };
  virtual ~VerdictSink() = default;
  virtual Put drop_tgid(uint32_t tgid) = 0;
  virtual void forget_tgid(uint32_t tgid) = 0;
  virtual Put drop_cgroup(uint64_t cgroup_id) = 0;
  virtual void forget_cgroup(uint64_t cgroup_id) = 0;
  // Relabeling dropped the kernel-thread series (service_name="kernel").
  virtual void drop_kernel_threads(bool drop) = 0;
};

}  // namespace ember
