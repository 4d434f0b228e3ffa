// ProcessRuleSource: answers "which unwind rule covers this pc" for one
// process snapshot, through its mappings and the shared table cache. Used by
// the reference unwinder when user space finishes a stack, and by tests.
// Not thread-safe: one per unwinding thread (it memoizes per mapping).
#pragma once

#include <memory>
#include <vector>

#include "agent/unwind/table_cache.h"
#include "agent/unwind/unwinder.h"

namespace ember::unwind {

class ProcessRuleSource final : public RuleSource {
 public:
  ProcessRuleSource(std::shared_ptr<const ProcessSnapshot> proc, UnwindTableCache& cache);
  RuleLookup lookup(uint64_t pc) const override;

 private:
  struct Slot {
    bool resolved = false;
    std::shared_ptr<const UnwindTable> table;
    uint64_t bias = 0;
  };
  std::shared_ptr<const ProcessSnapshot> proc_;
  UnwindTableCache& cache_;
  mutable std::vector<Slot> slots_;
};

}  // namespace ember::unwind
