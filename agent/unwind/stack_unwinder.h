// StackUnwinder: the unwind stage. BPF walks stacks in the kernel (by unwind
// tables, or by frame pointers); this stage turns its two arrays into one
// frame list with honest metadata — which frames are return addresses, where
// each came from, why the user stack ended. Each user slot goes to the
// decoder of the origin it is tagged with (agent/frames/origin.h). When BPF
// handed over a copy of the stack because a process's tables were not loaded
// yet, it finishes the native walk here with the same tables and the
// reference unwinder.
//
// Runs on the pipeline thread. Its only cache (one rule source per process
// snapshot) is dropped at the end of every interval.
#pragma once

#include <memory>
#include <unordered_map>

#include "agent/frames/origin.h"
#include "agent/model/stages.h"
#include "agent/unwind/process_rules.h"
#include "agent/unwind/table_cache.h"
#include "common/metrics.h"

namespace ember {

class StackUnwinder final : public Unwinder {
 public:
  // `tables` may be null: then stack copies cannot be finished (frame-pointer
  // mode never sends any). `origins` must outlive the unwinder.
  StackUnwinder(Metrics& metrics, unwind::UnwindTableCache* tables, const FrameOrigins& origins);
  UnwoundSample unwind(RawSample&& sample) override;
  void end_interval() override { rule_sources_.clear(); }

 private:
  void finish_from_copy(const RawSample& raw, UnwoundSample& out);

  unwind::UnwindTableCache* tables_;
  const FrameOrigins& origins_;
  struct Source {
    std::shared_ptr<const ProcessSnapshot> snap;  // keeps the key's address unique
    std::unique_ptr<unwind::ProcessRuleSource> rules;
  };
  std::unordered_map<const ProcessSnapshot*, Source> rule_sources_;
  Counter* stops_[size_t(UnwindStop::kCount)];
  Counter& finished_;
  Counter& finished_frames_;
};

}  // namespace ember
