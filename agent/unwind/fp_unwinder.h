// FramePointerUnwinder: the unwind stage for stacks the kernel already walked
// by frame pointers (bpf_get_stack). Its job is to turn the two raw address
// arrays into one frame list with honest metadata: which frames are return
// addresses (so the symbolizer looks up the call, not the instruction after
// it), garbage dropped, and why the user stack ended, counted by reason.
//
// When the BPF side gains an .eh_frame unwinder, it produces the same
// RawSample shape and this stage stays; only the stop reasons grow.
#pragma once

#include "agent/pipeline/metrics.h"
#include "agent/pipeline/stages.h"

namespace ember {

class FramePointerUnwinder final : public Unwinder {
 public:
  explicit FramePointerUnwinder(Metrics& metrics);
  UnwoundSample unwind(RawSample&& sample) override;

 private:
  Counter* stops_[5];
};

}  // namespace ember
