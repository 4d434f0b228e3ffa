#include "agent/unwind/unwinder.h"

namespace ember::unwind {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kEndOfStack: return "end_of_stack";
    case StopReason::kTruncated: return "truncated";
    case StopReason::kNoMapping: return "no_mapping";
    case StopReason::kUnsupportedCfi: return "unsupported_cfi";
    case StopReason::kReadError: return "read_error";
    case StopReason::kBadFrame: return "bad_frame";
    case StopReason::kFramePointerEnd: return "frame_pointer_end";
  }
  return "unknown";
}

StepResult step(FrameState& st, const Registers& regs0, const Memory& mem, const RuleSource& rules) {
  RuleLookup lk = rules.lookup(st.is_return ? st.pc - 1 : st.pc);
  if (!lk.mapped) return {false, StopReason::kNoMapping};
  const UnwindRule& r = lk.rule;

  uint64_t cfa = 0, ra = 0, bp = st.bp;
  bool next_is_return = true;
  switch (r.kind) {
    case UnwindRule::kEndOfStack:
      return {false, StopReason::kEndOfStack};
    case UnwindRule::kUnsupported:
      return {false, StopReason::kUnsupportedCfi};
    case UnwindRule::kNone: {
      // No CFI: trust the frame-pointer chain, as the kernel would.
      if (st.bp == 0) return {false, StopReason::kFramePointerEnd};
      uint64_t next_bp = 0;
      if (!mem.read_u64(st.bp, &next_bp) || !mem.read_u64(st.bp + 8, &ra))
        return {false, StopReason::kReadError};
      cfa = st.bp + 16;
      bp = next_bp;
      break;
    }
    case UnwindRule::kSignal: {
      // The interrupted context is in the sigcontext on the stack.
      uint64_t nsp = 0;
      if (!mem.read_u64(st.sp + r.cfa_offset, &nsp) || !mem.read_u64(st.sp + r.ra_offset, &ra))
        return {false, StopReason::kReadError};
      if (!(r.flags & UnwindRule::kRbpUndefined) && !mem.read_u64(st.sp + r.rbp_offset, &bp))
        return {false, StopReason::kReadError};
      if (ra == 0) return {false, StopReason::kBadFrame};
      st.pc = ra;
      st.sp = nsp;
      st.bp = bp;
      st.is_return = false;  // the interrupted instruction itself
      st.first = false;
      return {true, StopReason::kEndOfStack};
    }
    case UnwindRule::kCfaRsp: cfa = st.sp + r.cfa_offset; break;
    case UnwindRule::kCfaRbp: cfa = st.bp + r.cfa_offset; break;
    case UnwindRule::kCfaPlt:
      cfa = st.sp + r.cfa_offset + (((st.pc & 15) >= r.aux) ? 8 : 0);
      break;
    case UnwindRule::kCfaRbpDeref:
      if (!mem.read_u64(st.bp + r.cfa_offset, &cfa)) return {false, StopReason::kReadError};
      break;
    case UnwindRule::kCfaReg:
      if (!st.first || !regs0.have_gpr) return {false, StopReason::kUnsupportedCfi};
      cfa = regs0.gpr[r.reg] + r.cfa_offset;
      break;
    default:
      return {false, StopReason::kUnsupportedCfi};
  }

  if (r.kind != UnwindRule::kNone) {
    if (r.flags & UnwindRule::kRaInRegister) {
      if (!st.first || !regs0.have_gpr || r.reg >= 16) return {false, StopReason::kUnsupportedCfi};
      ra = regs0.gpr[r.reg];
    } else if (!mem.read_u64(cfa + r.ra_offset, &ra)) {
      return {false, StopReason::kReadError};
    }
    if (r.flags & UnwindRule::kRbpUndefined) bp = 0;
    else if (r.flags & UnwindRule::kRbpFromRbp) {
      if (!mem.read_u64(st.bp + r.rbp_offset, &bp)) return {false, StopReason::kReadError};
    } else if (r.rbp_offset != 0) {
      if (!mem.read_u64(cfa + r.rbp_offset, &bp)) return {false, StopReason::kReadError};
    }
  }
  // The caller's frame is above this one (the stack grows down), and a
  // zero return address ends the chain (e.g. threads without end markers).
  if (ra == 0 || cfa <= st.sp) return {false, StopReason::kBadFrame};
  st.pc = ra;
  st.sp = cfa;
  st.bp = bp;
  st.is_return = next_is_return;
  st.first = false;
  return {true, StopReason::kEndOfStack};
}

void unwind_from(FrameState st, const Registers& regs0, const Memory& mem, const RuleSource& rules,
                 size_t max_frames, UnwindResult* out) {
  for (;;) {
    if (out->pcs.size() >= max_frames) {
      out->stop = StopReason::kTruncated;
      return;
    }
    out->pcs.push_back(st.pc);
    out->is_return.push_back(st.is_return);
    StepResult s = step(st, regs0, mem, rules);
    if (!s.ok) {
      out->stop = s.stop;
      return;
    }
  }
}

UnwindResult unwind(const Registers& regs, const Memory& mem, const RuleSource& rules,
                    size_t max_frames) {
  UnwindResult out;
  FrameState st;
  st.pc = regs.ip;
  st.sp = regs.sp;
  st.bp = regs.bp;
  unwind_from(st, regs, mem, rules, max_frames, &out);
  return out;
}

}  // namespace ember::unwind
