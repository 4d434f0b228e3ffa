#include "agent/symbolize/symbolize_stage.h"
#include "common/drops.h"

namespace ember {

size_t DefaultSymbolizeStage::FrameKeyHash::operator()(const FrameKey& k) const {
  uint64_t h = k.address * 0x9e3779b97f4a7c15ull;
  h ^= (k.aux + 0x632be59bd9b4e019ull + (h << 6) + (h >> 2));
  h ^= (uint64_t(k.origin) << 1 | (k.return_address ? 1 : 0)) * 0xff51afd7ed558ccdull;
  return size_t(h ^ (h >> 29));
}

DefaultSymbolizeStage::DefaultSymbolizeStage(FrameOrigins& origins, ProcessTable* processes,
                                             const Clock& clock, Metrics& metrics)
    : origins_(origins),
      processes_(processes),
      clock_(clock),
      frames_(metrics.counter("ember_frames_symbolized_total", "", "Frames looked up")),
      unresolved_no_handler_(drop_counter(metrics, Drop::kFrameNoOriginHandler)),
      refreshes_(metrics.counter("ember_process_refreshes_total", "",
                                 "Re-reads of /proc/PID/maps after an address missed")) {
  no_process_ = std::make_shared<ProcessSnapshot>();
}

DefaultSymbolizeStage::SnapshotState& DefaultSymbolizeStage::state_for(
    const std::shared_ptr<const ProcessSnapshot>& snap) {
  auto [it, inserted] = snapshots_.try_emplace(snap.get());
  // Holding the snapshot keeps its address from being reused as a key while
  // this entry exists.
  if (inserted) it->second.snap = snap;
  return it->second;
}

LocationRef DefaultSymbolizeStage::unknown_origin(const StackFrame& f) {
  // A frame of an origin nobody registered a symbolizer for: say so rather
  // than guess a name.
  unresolved_no_handler_.add();
  auto loc = std::make_shared<Location>();
  loc->address = f.address;
  loc->origin = f.origin;
  Line line;
  line.function = "[" + origins_.name(f.origin) + "]";
  loc->lines.push_back(std::move(line));
  return loc;
}

LocationRef DefaultSymbolizeStage::location(const std::shared_ptr<const ProcessSnapshot>& snap,
                                            SnapshotState*& st, const StackFrame& f,
                                            uint64_t now_ns, bool* missed) {
  FrameSymbolizer* handler = origins_.symbolizer(f.origin);
  const FrameKey key{f.address, f.aux, f.origin, f.return_address};
  LocationTable* table = &shared_locations_;
  if (!handler || handler->per_process()) {
    if (!st) st = &state_for(snap);
    table = &st->locations;
  }
  auto it = table->find(key);
  if (it != table->end()) return it->second;

  frames_.add();
  if (!handler) {
    LocationRef loc = unknown_origin(f);
    table->emplace(key, loc);
    return loc;
  }
  FrameSymbolizer::Symbolized s = handler->symbolize(f, snap, now_ns);
  if (missed && s.missed_mapping) *missed = true;
  if (s.cacheable) table->emplace(key, s.location);
  return std::move(s.location);
}

SymbolizedSample DefaultSymbolizeStage::symbolize(UnwoundSample&& in) {
  SymbolizedSample out;
  out.stop = in.stop;
  out.meta = std::move(in.meta);
  out.stack.reserve(in.frames.size());
  uint64_t now = clock_.monotonic_ns();

  std::shared_ptr<const ProcessSnapshot> proc = out.meta.process ? out.meta.process : no_process_;
  SnapshotState* st = nullptr;  // proc's, looked up at its first user frame
  bool refreshed = false;
  for (const StackFrame& f : in.frames) {
    bool missed = false;
    LocationRef loc = location(proc, st, f, now, &missed);
    if (missed && !refreshed && processes_ && proc->maps_ok) {
      // The address is in no mapping we know: maybe a library was loaded
      // after the snapshot. One re-read per sample at most, rate-limited by
      // the process table.
      refreshed = true;
      if (auto fresh = processes_->refresh(*proc)) {
        refreshes_.add();
        out.meta.process = fresh;
        proc = fresh;
        st = nullptr;
        loc = location(proc, st, f, now, nullptr);
      }
    }
    out.stack.push_back(std::move(loc));
  }
  if (out.meta.event == EventKind::kOffCpu) drop_tracing_frames(out.stack);
  return out;
}

// The innermost kernel frames of the tracepoint that ran our program: the
// program itself and the kernel's code between the tracepoint and it.
static bool is_tracing_frame(const Location& loc) {
  if (!loc.kernel() || loc.lines.empty()) return false;
  const std::string& n = loc.lines.front().system_name;
  auto starts = [&n](const char* p) { return n.rfind(p, 0) == 0; };
  return starts("bpf_prog_") || starts("bpf_trace_run") || starts("__bpf_trace_") ||
         starts("__traceiter_") || starts("trace_call_bpf");
}

void DefaultSymbolizeStage::drop_tracing_frames(std::vector<LocationRef>& stack) {
  size_t n = 0;
  while (n < stack.size() && stack[n] && is_tracing_frame(*stack[n])) ++n;
  if (n) stack.erase(stack.begin(), stack.begin() + long(n));
}

void DefaultSymbolizeStage::end_interval() {
  snapshots_.clear();
  shared_locations_.clear();
  origins_.end_interval();
}

}  // namespace ember
