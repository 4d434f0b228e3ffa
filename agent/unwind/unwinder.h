// The reference unwinder: executes UnwindRules over a memory image, frame by
// frame. It is the specification the BPF unwinder follows step for step, so
// unit tests can check tables against real processes without BPF, and the
// unwind stage uses it to finish stacks BPF could not (a process whose
// tables were not loaded yet sends a copy of its stack instead).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "agent/unwind/unwind_table.h"

namespace ember::unwind {

// Registers at the first frame. Only ip, sp and bp are tracked past it; the
// rest (DWARF numbering) serve rules valid in the first frame alone.
struct Registers {
  uint64_t ip = 0, sp = 0, bp = 0;
  std::array<uint64_t, 16> gpr{};
  bool have_gpr = false;
};

class Memory {
 public:
  virtual ~Memory() = default;
  virtual bool read(uint64_t addr, void* out, size_t n) const = 0;
  bool read_u64(uint64_t addr, uint64_t* out) const { return read(addr, out, sizeof(*out)); }
};

// What the unwinder knows about a pc: whether any mapping holds it, and the
// rule for it (kNone when the mapping has no table, e.g. JIT code).
struct RuleLookup {
  bool mapped = false;
  UnwindRule rule;
};

class RuleSource {
 public:
  virtual ~RuleSource() = default;
  virtual RuleLookup lookup(uint64_t pc) const = 0;
};

// Why unwinding stopped. Mirrors the BPF side's reasons (ember_abi.h).
enum class StopReason : uint8_t {
  kEndOfStack,      // reached the outermost frame: the stack is complete
  kTruncated,       // hit the frame limit
  kNoMapping,       // pc in no known mapping
  kUnsupportedCfi,  // a rule we do not execute
  kReadError,       // stack memory could not be read
  kBadFrame,        // the next frame is not above this one, or pc is 0
  kFramePointerEnd, // frame-pointer fallback reached rbp == 0
};
const char* stop_reason_name(StopReason r);

struct UnwindResult {
  std::vector<uint64_t> pcs;  // innermost first; pcs[i > 0] are return addresses
                              // unless the frame below was a signal frame
  std::vector<bool> is_return;
  StopReason stop = StopReason::kEndOfStack;
};

// The state between two steps, so a walk can be resumed (BPF hands over a
// state and a stack copy; user space continues from there).
struct FrameState {
  uint64_t pc = 0, sp = 0, bp = 0;
  bool is_return = false;  // look up pc - 1
  bool first = true;       // first frame: every register is known
};

struct StepResult {
  bool ok = false;
  StopReason stop = StopReason::kEndOfStack;
};

// Moves `st` from a frame to its caller. Exactly one step of unwind().
StepResult step(FrameState& st, const Registers& regs0, const Memory& mem, const RuleSource& rules);

UnwindResult unwind(const Registers& regs, const Memory& mem, const RuleSource& rules,
                    size_t max_frames = 128);
// Continues a walk from `st` (its pc not yet recorded), appending to `out`.
void unwind_from(FrameState st, const Registers& regs0, const Memory& mem, const RuleSource& rules,
                 size_t max_frames, UnwindResult* out);

}  // namespace ember::unwind
