// DefaultSymbolizeStage: turns addresses into shared, immutable Locations.
//
// It interns one Location per (process snapshot, address) and one Mapping
// per snapshot mapping, so a hot stack costs hash lookups, not ELF work.
// Those interning tables are this stage's only cache; the rule that bounds
// them is "one aggregation interval": end_interval() drops them (profiles
// already built keep their Locations alive by shared_ptr). Parsed binaries
// live in the Symbolizer's own bounded cache across intervals.
//
// Runs on the pipeline thread only.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "agent/pipeline/metrics.h"
#include "agent/pipeline/stages.h"
#include "agent/process/process_table.h"
#include "common/clock.h"
#include "symbolizer/symbolizer.h"

namespace ember {

class DefaultSymbolizeStage final : public SymbolizeStage {
 public:
  // `processes` may be null (tests); then misses are never refreshed.
  DefaultSymbolizeStage(Symbolizer& symbolizer, ProcessTable* processes, const Clock& clock,
                        Metrics& metrics);

  SymbolizedSample symbolize(UnwoundSample&& sample) override;
  void end_interval() override;

 private:
  struct SnapshotState {
    std::shared_ptr<const ProcessSnapshot> snap;
    std::vector<std::shared_ptr<const Mapping>> mappings;  // by index in snap->mappings
    std::shared_ptr<const Mapping> hint_mapping;           // exe placed by exec hint
    std::unordered_map<uint64_t, LocationRef> locations;   // key: addr << 1 | return_address
  };

  SnapshotState& state_for(const std::shared_ptr<const ProcessSnapshot>& snap);
  LocationRef user_location(SnapshotState& st, const StackFrame& f, bool* missed);
  LocationRef kernel_location(const StackFrame& f, uint64_t now_ns);
  std::shared_ptr<const Mapping> mapping_for(SnapshotState& st, const MapEntry& m,
                                             const Binary* bin);

  Symbolizer& symbolizer_;
  ProcessTable* processes_;
  const Clock& clock_;
  std::unordered_map<const ProcessSnapshot*, SnapshotState> snapshots_;
  std::unordered_map<uint64_t, LocationRef> kernel_locations_;
  std::shared_ptr<const Mapping> kernel_mapping_;
  std::shared_ptr<const ProcessSnapshot> no_process_;

  Counter& frames_;
  Counter& unresolved_no_mapping_;
  Counter& unresolved_unreadable_;
  Counter& unresolved_no_symbol_;
  Counter& unresolved_kernel_;
  Counter& refreshes_;
};

}  // namespace ember
