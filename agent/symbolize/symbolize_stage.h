// DefaultSymbolizeStage: turns frames into shared, immutable Locations.
//
// Each frame goes to the FrameSymbolizer of its origin (agent/frames/
// origin.h): native code, the kernel, and any runtime registered there. This
// stage interns what they return, one Location per (process snapshot, frame)
// (per frame alone for origins whose names do not depend on the process), so
// a hot stack costs hash lookups, not ELF work. The interning table is this
// stage's only cache; the rule that bounds it is "one aggregation interval":
// end_interval() drops it (profiles already built keep their Locations alive
// by shared_ptr). Parsed binaries live in the Symbolizer's own bounded cache
// across intervals.
//
// When a frame's handler finds no mapping for it, the stage re-reads the
// process's maps once per sample (a library loaded after the snapshot) and
// asks again.
//
// An off-CPU sample taken inside the scheduler (a run-queue wait's, at
// sched_switch) begins with the tracepoint's glue and Ember's own BPF
// program (bpf_prog_*, bpf_trace_run4...): those innermost frames are the
// profiler's, not the workload's, and are dropped here, by name, because
// how many there are differs between kernels.
//
// Runs on the pipeline thread only.
#pragma once

#include <memory>
#include <unordered_map>

#include "agent/frames/origin.h"
#include "agent/model/stages.h"
#include "agent/process/process_table.h"
#include "common/clock.h"
#include "common/metrics.h"

namespace ember {

class DefaultSymbolizeStage final : public SymbolizeStage {
 public:
  // `processes` may be null (tests); then misses are never refreshed.
  // `origins` must outlive the stage.
  DefaultSymbolizeStage(FrameOrigins& origins, ProcessTable* processes, const Clock& clock,
                        Metrics& metrics);

  SymbolizedSample symbolize(UnwoundSample&& sample) override;
  void end_interval() override;

 private:
  static void drop_tracing_frames(std::vector<LocationRef>& stack);
  struct FrameKey {
    uint64_t address;
    uint64_t aux;
    OriginId origin;
    bool return_address;
    bool operator==(const FrameKey& o) const {
      return address == o.address && aux == o.aux && origin == o.origin &&
             return_address == o.return_address;
    }
  };
  struct FrameKeyHash {
    size_t operator()(const FrameKey& k) const;
  };
  using LocationTable = std::unordered_map<FrameKey, LocationRef, FrameKeyHash>;
  struct SnapshotState {
    std::shared_ptr<const ProcessSnapshot> snap;  // keeps the key's address unique
    LocationTable locations;
  };

  SnapshotState& state_for(const std::shared_ptr<const ProcessSnapshot>& snap);
  // The Location of `f` in `snap`; `missed` (may be null) is set when its
  // handler found no mapping for it.
  // `st` caches snap's state across one sample's frames (null: not yet).
  LocationRef location(const std::shared_ptr<const ProcessSnapshot>& snap, SnapshotState*& st,
                       const StackFrame& f, uint64_t now_ns, bool* missed);
  LocationRef unknown_origin(const StackFrame& f);

  FrameOrigins& origins_;
  ProcessTable* processes_;
  const Clock& clock_;
  std::unordered_map<const ProcessSnapshot*, SnapshotState> snapshots_;
  LocationTable shared_locations_;  // origins whose names are per system (kernel)
  std::shared_ptr<const ProcessSnapshot> no_process_;

  Counter& frames_;
  Counter& unresolved_no_handler_;
  Counter& refreshes_;
};

}  // namespace ember
