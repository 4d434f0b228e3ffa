#include "agent/runtimes/native/native_frames.h"
#include "common/drops.h"

#include <cstdio>

namespace ember {
namespace {

// x86-64 and arm64 user space ends well below this; anything above is a
// kernel address that leaked into a user stack read, or garbage.
constexpr uint64_t kUserSpaceEnd = 0x0000800000000000ull;

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

size_t NativeFrameDecoder::decode(std::span<const uint64_t> slots, bool first,
                                  std::vector<StackFrame>& out) {
  // The first user frame is where user code was interrupted (or entered the
  // kernel), so it is an instruction address, not a return address; so is a
  // frame BPF flagged as interrupted by a signal.
  const uint64_t slot = slots[0];
  const bool not_return = slot & kSlotNotReturn;
  const uint64_t addr = slot & kSlotPayloadMask;
  if (addr == 0 || addr >= kUserSpaceEnd) return 0;
  out.push_back(StackFrame{addr, origin::kNative, !first && !not_return, 0});
  return 1;
}

NativeFrameSymbolizer::NativeFrameSymbolizer(Symbolizer& symbolizer, Metrics& metrics)
    : symbolizer_(symbolizer),
      unresolved_no_mapping_(drop_counter(metrics, Drop::kFrameNoMapping)),
      unresolved_unreadable_(drop_counter(metrics, Drop::kFrameBinaryUnreadable)),
      unresolved_no_symbol_(drop_counter(metrics, Drop::kFrameNoSymbol)) {}

NativeFrameSymbolizer::SnapshotState& NativeFrameSymbolizer::state_for(
    const std::shared_ptr<const ProcessSnapshot>& snap) {
  auto [it, inserted] = snapshots_.try_emplace(snap.get());
  if (inserted) {
    // Holding the snapshot keeps its address from being reused as a key
    // while this entry exists.
    it->second.snap = snap;
    it->second.mappings.resize(snap->mappings.size());
    it->second.binaries.resize(snap->mappings.size());
  }
  return it->second;
}

std::shared_ptr<const Mapping> NativeFrameSymbolizer::mapping_for(SnapshotState& st,
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

FrameSymbolizer::Symbolized NativeFrameSymbolizer::symbolize(
    const StackFrame& f, const std::shared_ptr<const ProcessSnapshot>& process, uint64_t) {
  SnapshotState& st = state_for(process);
  const MapEntry* m = st.snap->find(f.address);
  Symbolizer::BinaryMemo* memo = m ? &st.binaries[size_t(m - st.snap->mappings.data())] : nullptr;
  UserSymbol us = symbolizer_.resolve_user(*st.snap, f.address, f.return_address, memo);
  auto loc = std::make_shared<Location>();
  loc->address = f.address;
  loc->origin = us.jit ? origin::kJit : us.binary && us.binary->go_binary() ? origin::kGo
                                                                            : origin::kNative;
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

  Symbolized out;
  Line line;
  if (!us.frames.empty() && !us.frames.back().function.empty()) {
    // Inlined calls become frames of their own, innermost first.
    for (size_t i = 0; i + 1 < us.frames.size(); ++i) {
      auto& sf = us.frames[i];
      loc->lines.push_back(Line{std::move(sf.function), std::move(sf.system_name), std::move(sf.file),
                                sf.line, 0});
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
    out.missed_mapping = true;
    unresolved_no_mapping_.add();
  }
  loc->lines.push_back(std::move(line));
  // Unnamed code outside any file may be JIT code whose perf-map line is
  // not written yet: ask again next time rather than remember the miss.
  out.cacheable = loc->resolved || (m && m->is_file()) || us.via_exec_hint;
  out.location = std::move(loc);
  return out;
}

}  // namespace ember
