// Kernel frames: addresses in kernel text, named from /proc/kallsyms
// (modules and BPF programs included). BPF hands them over in their own
// array, so they need no decoder. Names do not depend on the process, so the
// symbolize stage interns them once for everyone. Runs on the pipeline thread.
#pragma once

#include <memory>

#include "agent/frames/origin.h"
#include "common/metrics.h"
#include "symbolizer/symbolizer.h"

namespace ember {

class KernelFrameSymbolizer final : public FrameSymbolizer {
 public:
  KernelFrameSymbolizer(Symbolizer& symbolizer, Metrics& metrics);
  Symbolized symbolize(const StackFrame& frame, const std::shared_ptr<const ProcessSnapshot>& process,
                       uint64_t now_ns) override;
  bool per_process() const override { return false; }

 private:
  Symbolizer& symbolizer_;
  std::shared_ptr<const Mapping> mapping_;  // "[kernel.kallsyms]", shared by every kernel frame
  Counter& unresolved_;
};

}  // namespace ember
