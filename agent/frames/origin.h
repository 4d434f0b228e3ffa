// Frame origins: where a frame came from, and which handlers turn it into
// frames (unwind) and into names (symbolize). Read this first to add a runtime.
//
// Every frame of a sample carries an OriginId:
//   kernel   kernel text, named from kallsyms
//   native   machine code in a mapped file: ELF symbols, DWARF, debug files
//   go       native code named by a Go binary's pclntab  } told apart from
//   jit      anonymous code named by /tmp/perf-PID.map   } native when named
//   8..63    interpreters and managed runtimes (Python, Java, ...)
//
// The path of a frame through the pipeline:
//   BPF     writes user frames as 64-bit slots; bits 56-61 of a slot carry its
//           origin (EMBER_ORIGIN_SHIFT in bpf/ember_abi.h), 0 being native.
//   unwind  (StackUnwinder) reads each slot's tag and asks that origin's
//           FrameDecoder to turn its slots into StackFrames: a runtime's frame
//           may take several slots (a code object, then an offset in it).
//   symbolize (DefaultSymbolizeStage) asks the frame's FrameSymbolizer for
//           its Location, once per distinct frame per process per interval:
//           the stage interns what handlers return.
//   after   aggregation, pprof, folded stacks, flame graphs and uploads see
//           only Locations. They need no change for a new origin.
//
// Adding a runtime:
//   1. its BPF part, tagging its slots with a new EMBER_ORIGIN_* id;
//   2. a folder agent/runtimes/<name>/ with its FrameDecoder and
//      FrameSymbolizer (agent/runtimes/native/ and kernel/ are the examples);
//   3. one line in register_origins() (agent/runtimes/register.cc).
// tests/unit/frame_origin_test.cc registers a made-up origin that way and
// follows its frames into every output format.
//
// Threading: handlers run on the pipeline thread only (decoders in the unwind
// stage, symbolizers in the symbolize stage). The registry is filled before
// the pipeline starts and read-only after.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/model/types.h"
#include "common/result.h"

namespace ember {

// Slot layout: the origin tag and the bit BPF sets on a frame that is not a
// return address (see ember_abi.h).
inline constexpr int kOriginShift = 56;
inline constexpr uint64_t kOriginMask = 0x3f;
inline constexpr uint64_t kSlotNotReturn = 1ull << 62;
inline constexpr uint64_t kSlotPayloadMask = (1ull << kOriginShift) - 1;
inline OriginId slot_origin(uint64_t slot) { return OriginId((slot >> kOriginShift) & kOriginMask); }

// Unwind half: turns an origin's BPF slots into frames.
class FrameDecoder {
 public:
  virtual ~FrameDecoder() = default;
  // `slots` starts at a slot tagged with this origin and runs to the end of
  // the user stack. Appends this frame (or frames) to `out` and returns how
  // many slots it used; 0 means the slots are malformed, and the walk stops
  // there (UnwindStop::kBadFrame). `first`: no frame precedes it in the user
  // stack, so its address is where the thread was, not a return address.
  virtual size_t decode(std::span<const uint64_t> slots, bool first,
                        std::vector<StackFrame>& out) = 0;
};

// Symbolize half: names an origin's frames.
class FrameSymbolizer {
 public:
  struct Symbolized {
    LocationRef location;  // never null
    // False: do not intern it (a name that may appear later, such as JIT
    // code whose perf-map line is not written yet).
    bool cacheable = true;
    // The address is in no mapping of this snapshot: the stage re-reads the
    // process's maps once and asks again.
    bool missed_mapping = false;
  };
  virtual ~FrameSymbolizer() = default;
  // `process` is the sample's snapshot (a placeholder for kernel threads).
  virtual Symbolized symbolize(const StackFrame& frame,
                           const std::shared_ptr<const ProcessSnapshot>& process,
                           uint64_t now_ns) = 0;
  // False when names do not depend on the process (kernel frames): the stage
  // interns them once for all processes.
  virtual bool per_process() const { return true; }
  // End of an aggregation interval: per-interval state may go.
  virtual void end_interval() {}
};

// The registry: one entry per origin, filled at start-up.
class FrameOrigins {
 public:
  struct Entry {
    std::string name;  // "native", "kernel", "go", "jit", "python", ...
    std::unique_ptr<FrameDecoder> decoder;        // null: BPF never tags slots with it
    std::unique_ptr<FrameSymbolizer> symbolizer;  // null: a refinement named by another's
  };

  FrameOrigins();  // names the built-in ids; their handlers come from register_origins()

  // Registers (or completes) origin `id`. An id whose handler is already set
  // is an error, so two runtimes cannot claim one tag.
  Status add(OriginId id, std::string name, std::unique_ptr<FrameDecoder> decoder,
             std::unique_ptr<FrameSymbolizer> symbolizer);

  FrameDecoder* decoder(OriginId id) const { return id < origin::kMax ? entries_[id].decoder.get() : nullptr; }
  FrameSymbolizer* symbolizer(OriginId id) const {
    return id < origin::kMax ? entries_[id].symbolizer.get() : nullptr;
  }
  // "origin_<id>" for an id nobody registered.
  std::string name(OriginId id) const;
  void end_interval();

 private:
  std::array<Entry, origin::kMax> entries_;
};

}  // namespace ember
