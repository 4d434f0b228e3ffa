// Native frames: machine code in a file mapped into the process (or, for
// anonymous executable memory, JIT code named by the process's perf map).
//
// NativeFrameDecoder turns a BPF slot into an instruction address.
// NativeFrameSymbolizer names it: the Symbolizer finds the mapping, the
// binary (by build-id, with its debug file), the function, and the source
// lines with inlined calls as frames of their own. A name from a Go binary
// marks the Location origin::kGo; one from a perf map, origin::kJit.
//
// The symbolizer interns one Mapping per mapping of a process snapshot, so
// pprof mappings stay in the process's own address space, and remembers the
// Binary of each, so a mapping's file is opened once per snapshot and
// interval; both tables are dropped at the end of every interval, like the
// stage's Location table (their bound: the mappings of the snapshots seen in
// one interval).
// Runs on the pipeline thread.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "agent/frames/origin.h"
#include "common/metrics.h"
#include "symbolizer/symbolizer.h"

namespace ember {

class NativeFrameDecoder final : public FrameDecoder {
 public:
  size_t decode(std::span<const uint64_t> slots, bool first, std::vector<StackFrame>& out) override;
};

class NativeFrameSymbolizer final : public FrameSymbolizer {
 public:
  NativeFrameSymbolizer(Symbolizer& symbolizer, Metrics& metrics);
  Symbolized symbolize(const StackFrame& frame, const std::shared_ptr<const ProcessSnapshot>& process,
                   uint64_t now_ns) override;
  void end_interval() override { snapshots_.clear(); }

 private:
  struct SnapshotState {
    std::shared_ptr<const ProcessSnapshot> snap;  // keeps the key's address unique
    std::vector<std::shared_ptr<const Mapping>> mappings;  // by index in snap->mappings
    std::vector<Symbolizer::BinaryMemo> binaries;          // by index in snap->mappings
    std::shared_ptr<const Mapping> hint_mapping;           // exe placed by exec hint
  };
  SnapshotState& state_for(const std::shared_ptr<const ProcessSnapshot>& snap);
  std::shared_ptr<const Mapping> mapping_for(SnapshotState& st, const MapEntry& m, const Binary* bin);

  Symbolizer& symbolizer_;
  std::unordered_map<const ProcessSnapshot*, SnapshotState> snapshots_;
  Counter& unresolved_no_mapping_;
  Counter& unresolved_unreadable_;
  Counter& unresolved_no_symbol_;
};

}  // namespace ember
