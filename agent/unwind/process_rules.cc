#include "agent/unwind/process_rules.h"

namespace ember::unwind {

ProcessRuleSource::ProcessRuleSource(std::shared_ptr<const ProcessSnapshot> proc,
                                     UnwindTableCache& cache)
    : proc_(std::move(proc)), cache_(cache), slots_(proc_->mappings.size()) {}

RuleLookup ProcessRuleSource::lookup(uint64_t pc) const {
  RuleLookup out;
  const MapEntry* m = proc_->find(pc);
  if (!m) return out;
  out.mapped = true;
  Slot& s = slots_[size_t(m - proc_->mappings.data())];
  if (!s.resolved) {
    s.resolved = true;
    s.table = cache_.for_mapping(*proc_, *m).table;
    // The vDSO is mapped whole from its first page, at offset 0.
    if (s.table && !s.table->bias_for(m->start, m->offset, &s.bias)) s.table = nullptr;
  }
  if (s.table) out.rule = s.table->find(pc - s.bias);
  return out;  // no table: kNone, i.e. frame pointers (JIT code, unreadable files)
}

}  // namespace ember::unwind
