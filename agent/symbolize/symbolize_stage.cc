#include "agent/symbolize/symbolize_stage.h"

#include <cstdio>

namespace ember {
namespace {

std::string basename_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string hex_offset(const std::string& module, uint64_t off) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "+0x%llx", (unsigned long long)off);
  return module + buf;
}

}  // namespace

DefaultSymbolizeStage::DefaultSymbolizeStage(Symbolizer& symbolizer, ProcessTable* processes,
                                             const Clock& clock, Metrics& metrics)
    : symbolizer_(symbolizer),
      processes_(processes),
      clock_(clock),
      frames_(metrics.counter("ember_frames_symbolized_total", "", "Frames looked up")),
      unresolved_no_mapping_(metrics.counter("ember_frames_unresolved_total",
                                             "reason=\"no_mapping\"",
                                             "Frames shown as module+offset or [unknown]")),
      unresolved_unreadable_(
          metrics.counter("ember_frames_unresolved_total", "reason=\"binary_unreadable\"")),
      unresolved_no_symbol_(
          metrics.counter("ember_frames_unresolved_total", "reason=\"no_symbol\"")),
      unresolved_kernel_(metrics.counter("ember_frames_unresolved_total", "reason=\"kernel\"")),
      refreshes_(metrics.counter("ember_process_refreshes_total", "",
                                 "Re-reads of /proc/PID/maps after an address missed")) {
  auto km = std::make_shared<Mapping>();
  km->file = "[kernel.kallsyms]";
  km->kernel = true;
  km->start = 0xffff800000000000ull;
  km->limit = ~0ull;
  kernel_mapping_ = std::move(km);
  no_process_ = std::make_shared<ProcessSnapshot>();
}

DefaultSymbolizeStage::SnapshotState& DefaultSymbolizeStage::state_for(
    const std::shared_ptr<const ProcessSnapshot>& snap) {
  auto [it, inserted] = snapshots_.try_emplace(snap.get());
  if (inserted) {
    // Holding the snapshot keeps its address from being reused as a key
    // while this entry exists.
    it->second.snap = snap;
    it->second.mappings.resize(snap->mappings.size());
  }
  return it->second;
}

std::shared_ptr<const Mapping> DefaultSymbolizeStage::mapping_for(SnapshotState& st,
                                                                  const MapEntry& m,
                                                                  const Binary* bin) {
  size_t idx = size_t(&m - st.snap->mappings.data());
  auto& slot = st.mappings[idx];
  if (!slot) {
    auto mp = std::make_shared<Mapping>();
    mp->start = m.start;
    mp->limit = m.end;
    mp->file_offset = m.offset;
    mp->file = std::string(m.clean_path());
    if (bin) mp->build_id = bin->build_id();
    slot = std::move(mp);
  }
  return slot;
}

LocationRef DefaultSymbolizeStage::user_location(SnapshotState& st, const StackFrame& f,
                                                 bool* missed) {
  uint64_t key = (f.address << 1) | (f.return_address ? 1 : 0);
  auto it = st.locations.find(key);
  if (it != st.locations.end()) return it->second;

  frames_.add();
  UserSymbol us = symbolizer_.resolve_user(*st.snap, f.address, f.return_address);
  auto loc = std::make_shared<Location>();
  loc->address = f.address;
  loc->kind = FrameKind::kUser;
  const MapEntry* m = st.snap->find(f.address);
  if (m) {
    loc->mapping = mapping_for(st, *m, us.binary.get());
  } else if (us.via_exec_hint) {
    if (!st.hint_mapping) {
      auto mp = std::make_shared<Mapping>();
      mp->start = st.snap->exec_hint->start_code;
      mp->limit = st.snap->exec_hint->end_code;
      mp->file = us.module;
      if (us.binary) {
        mp->build_id = us.binary->build_id();
        mp->file_offset = us.module_offset - (f.address - mp->start);
      }
      st.hint_mapping = std::move(mp);
    }
    loc->mapping = st.hint_mapping;
  }

  Line line;
  if (!us.frames.empty() && !us.frames.back().function.empty()) {
    // Inlined calls become frames of their own, innermost first.
    for (size_t i = 0; i + 1 < us.frames.size(); ++i) {
      auto& f = us.frames[i];
      loc->lines.push_back(Line{std::move(f.function), std::move(f.system_name), std::move(f.file),
                                f.line, 0});
    }
    auto& outer = us.frames.back();
    line.function = std::move(outer.function);
    line.system_name = outer.system_name.empty() ? std::move(us.system_name) : std::move(outer.system_name);
    line.file = std::move(outer.file);
    line.line = outer.line;
    line.offset = us.function_offset;
    loc->resolved = true;
  } else if (!us.function.empty()) {
    line.function = std::move(us.function);
    line.system_name = std::move(us.system_name);
    line.offset = us.function_offset;
    loc->resolved = true;
  } else if (!us.module.empty()) {
    // Placed in a file but no symbol covers it: say where, precisely.
    line.function = hex_offset(basename_of(us.module), us.module_offset);
    (us.binary ? unresolved_no_symbol_ : unresolved_unreadable_).add();
  } else {
    line.function = "[unknown]";
    if (missed) *missed = true;
    unresolved_no_mapping_.add();
  }
  loc->lines.push_back(std::move(line));
  LocationRef ref = std::move(loc);
  // Unnamed code outside any file may be JIT code whose perf-map line is
  // not written yet: ask again next time rather than remember the miss.
  bool jit_miss = !ref->resolved && (!m || !m->is_file()) && !us.via_exec_hint;
  if (!jit_miss) st.locations.emplace(key, ref);
  return ref;
}

LocationRef DefaultSymbolizeStage::kernel_location(const StackFrame& f, uint64_t now_ns) {
  uint64_t key = (f.address << 1) | (f.return_address ? 1 : 0);
  auto it = kernel_locations_.find(key);
  if (it != kernel_locations_.end()) return it->second;
  frames_.add();
  uint64_t lookup = f.return_address ? f.address - 1 : f.address;
  auto ks = symbolizer_.resolve_kernel(lookup, now_ns);
  auto loc = std::make_shared<Location>();
  loc->address = f.address;
  loc->kind = FrameKind::kKernel;
  loc->mapping = kernel_mapping_;
  Line line;
  if (ks) {
    line.function = ks->module.empty() ? ks->function : ks->function + " [" + ks->module + "]";
    line.system_name = ks->function;
    line.offset = ks->offset + (f.return_address ? 1 : 0);
    loc->resolved = true;
  } else {
    line.function = "[unknown]";
    unresolved_kernel_.add();
  }
  loc->lines.push_back(std::move(line));
  LocationRef ref = std::move(loc);
  kernel_locations_.emplace(key, ref);
  return ref;
}

SymbolizedSample DefaultSymbolizeStage::symbolize(UnwoundSample&& in) {
  SymbolizedSample out;
  out.stop = in.stop;
  out.meta = std::move(in.meta);
  out.stack.reserve(in.frames.size());
  uint64_t now = clock_.monotonic_ns();

  const std::shared_ptr<const ProcessSnapshot>& proc =
      out.meta.process ? out.meta.process : no_process_;
  SnapshotState* st = nullptr;
  bool refreshed = false;
  for (size_t i = 0; i < in.frames.size(); ++i) {
    const StackFrame& f = in.frames[i];
    if (f.kind == FrameKind::kKernel) {
      out.stack.push_back(kernel_location(f, now));
      continue;
    }
    if (!st) st = &state_for(proc);
    bool missed = false;
    LocationRef loc = user_location(*st, f, &missed);
    if (missed && !refreshed && processes_ && st->snap->maps_ok) {
      // The address is in no mapping we know: maybe a library was loaded
      // after the snapshot. One re-read per sample at most, rate-limited by
      // the process table.
      refreshed = true;
      if (auto fresh = processes_->refresh(*st->snap)) {
        refreshes_.add();
        out.meta.process = fresh;
        st = &state_for(fresh);
        loc = user_location(*st, f, nullptr);
      }
    }
    out.stack.push_back(std::move(loc));
  }
  return out;
}

void DefaultSymbolizeStage::end_interval() {
  snapshots_.clear();
  kernel_locations_.clear();
}

}  // namespace ember
