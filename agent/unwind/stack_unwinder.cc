#include "agent/unwind/stack_unwinder.h"

#include <algorithm>
#include <cstring>
#include <span>

#include "agent/unwind/unwinder.h"
#include "ember_abi.h"

namespace ember {
namespace {

UnwindStop from_bpf(uint8_t stop) {
  switch (stop) {
    case EMBER_STOP_END: return UnwindStop::kComplete;
    case EMBER_STOP_TRUNCATED: return UnwindStop::kTruncated;
    case EMBER_STOP_NO_MAPPING:
    case EMBER_STOP_NO_TABLES: return UnwindStop::kNoMapping;
    case EMBER_STOP_UNSUPPORTED: return UnwindStop::kUnsupportedCfi;
    case EMBER_STOP_READ_ERROR: return UnwindStop::kReadError;
    case EMBER_STOP_BAD_FRAME: return UnwindStop::kBadFrame;
    case EMBER_STOP_FP_END: return UnwindStop::kFramePointerEnd;
    default: return UnwindStop::kFramePointers;
  }
}

UnwindStop from_reference(unwind::StopReason r) {
  switch (r) {
    case unwind::StopReason::kEndOfStack: return UnwindStop::kComplete;
    case unwind::StopReason::kTruncated: return UnwindStop::kTruncated;
    case unwind::StopReason::kNoMapping: return UnwindStop::kNoMapping;
    case unwind::StopReason::kUnsupportedCfi: return UnwindStop::kUnsupportedCfi;
    case unwind::StopReason::kReadError: return UnwindStop::kReadError;
    case unwind::StopReason::kBadFrame: return UnwindStop::kBadFrame;
    case unwind::StopReason::kFramePointerEnd: return UnwindStop::kFramePointerEnd;
  }
  return UnwindStop::kBadFrame;
}

// The stack bytes BPF copied, as the reference unwinder's memory.
class CopiedStack final : public unwind::Memory {
 public:
  explicit CopiedStack(const StackCopy& c) : c_(c) {}
  bool read(uint64_t addr, void* out, size_t n) const override {
    if (addr < c_.base || addr + n > c_.base + c_.bytes.size() || addr + n < addr) return false;
    std::memcpy(out, c_.bytes.data() + (addr - c_.base), n);
    return true;
  }

 private:
  const StackCopy& c_;
};

}  // namespace

const char* unwind_stop_name(UnwindStop stop) {
  switch (stop) {
    case UnwindStop::kComplete: return "complete";
    case UnwindStop::kNoUserStack: return "no_user_stack";
    case UnwindStop::kReadError: return "read_error";
    case UnwindStop::kEmpty: return "empty";
    case UnwindStop::kTruncated: return "truncated";
    case UnwindStop::kNoMapping: return "no_mapping";
    case UnwindStop::kUnsupportedCfi: return "unsupported_cfi";
    case UnwindStop::kBadFrame: return "bad_frame";
    case UnwindStop::kFramePointerEnd: return "frame_pointer_end";
    case UnwindStop::kFramePointers: return "frame_pointers";
    case UnwindStop::kCount: break;
  }
  return "unknown";
}

StackUnwinder::StackUnwinder(Metrics& metrics, unwind::UnwindTableCache* tables,
                             const FrameOrigins& origins)
    : tables_(tables),
      origins_(origins),
      finished_(metrics.counter("ember_unwind_user_space_total", "",
                                "Samples whose walk user space finished from a stack copy")),
      finished_frames_(metrics.counter("ember_unwind_user_space_frames_total", "",
                                       "Frames recovered in user space from stack copies")) {
  for (size_t i = 0; i < size_t(UnwindStop::kCount); ++i)
    stops_[i] = &metrics.counter("ember_unwind_stops_total",
                                 std::string("reason=\"") + unwind_stop_name(UnwindStop(i)) + "\"",
                                 "Samples by how their user stack ended");
}

UnwoundSample StackUnwinder::unwind(RawSample&& raw) {
  UnwoundSample out;
  out.meta = std::move(raw.meta);
  out.frames.reserve(raw.kernel_stack.size() + raw.user_stack.size());

  bool first = true;
  for (uint64_t addr : raw.kernel_stack) {
    if (addr == 0) break;
    out.frames.push_back(StackFrame{addr, origin::kKernel, !first, 0});
    first = false;
  }
  // User slots: each goes to the decoder of the origin it is tagged with. A
  // slot no decoder takes (an unknown tag, a kernel address that leaked into
  // a user stack read, garbage) ends the walk there.
  size_t user_frames = 0;
  bool undecodable = false;
  const std::span<const uint64_t> slots(raw.user_stack);
  for (size_t i = 0; i < slots.size();) {
    if (slots[i] == 0) break;  // the end, as the kernel's own walker marks it
    FrameDecoder* d = origins_.decoder(slot_origin(slots[i]));
    size_t before = out.frames.size();
    size_t used = d ? d->decode(slots.subspan(i), user_frames == 0, out.frames) : 0;
    if (used == 0) {
      out.frames.resize(before);
      undecodable = true;
      break;
    }
    i += std::min(used, slots.size() - i);
    user_frames += out.frames.size() - before;
  }

  if (raw.flags & EMBER_SAMPLE_F_KERNEL_THREAD) out.stop = UnwindStop::kNoUserStack;
  else if (raw.ustack_err != 0) out.stop = UnwindStop::kReadError;
  else if (user_frames == 0 && !undecodable) out.stop = UnwindStop::kEmpty;
  else if (undecodable) out.stop = UnwindStop::kBadFrame;
  else out.stop = from_bpf(raw.unwind_stop);

  // The copy resumes from the last slot BPF wrote, so only a walk that
  // decoded every slot can go on from it.
  if (raw.stack_copy && tables_ && out.meta.process && user_frames > 0 && !undecodable)
    finish_from_copy(raw, out);
  stops_[size_t(out.stop)]->add();
  return out;
}

void StackUnwinder::finish_from_copy(const RawSample& raw, UnwoundSample& out) {
  const StackCopy& c = *raw.stack_copy;
  auto [it, inserted] = rule_sources_.try_emplace(out.meta.process.get());
  if (inserted) {
    it->second.snap = out.meta.process;
    it->second.rules = std::make_unique<unwind::ProcessRuleSource>(out.meta.process, *tables_);
  }
  unwind::Registers regs0;
  regs0.ip = c.pc;
  regs0.sp = c.sp;
  regs0.bp = c.bp;
  regs0.gpr = c.gpr;
  regs0.have_gpr = c.first;
  unwind::FrameState st;
  st.pc = c.pc;
  st.sp = c.sp;
  st.bp = c.bp;
  st.is_return = c.is_return;
  st.first = c.first;
  CopiedStack mem(c);
  // BPF already recorded this frame's pc: step past it, then walk on.
  unwind::StepResult s = unwind::step(st, regs0, mem, *it->second.rules);
  finished_.add();
  if (!s.ok) {
    out.stop = from_reference(s.stop);
    return;
  }
  size_t user_frames = 0;
  for (const auto& f : out.frames) user_frames += !f.kernel();
  unwind::UnwindResult rest;
  unwind::unwind_from(st, regs0, mem, *it->second.rules,
                      EMBER_MAX_USER_DEPTH > user_frames ? EMBER_MAX_USER_DEPTH - user_frames : 0,
                      &rest);
  for (size_t i = 0; i < rest.pcs.size(); ++i)
    out.frames.push_back(StackFrame{rest.pcs[i], origin::kNative, rest.is_return[i], 0});
  finished_frames_.add(rest.pcs.size());
  out.stop = from_reference(rest.stop);
}

}  // namespace ember
