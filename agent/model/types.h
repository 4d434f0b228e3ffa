// The plain values that flow between the pipeline's stages:
//
//   sample (BPF ring) -> RawSample
//   unwind            -> UnwoundSample
//   symbolize         -> SymbolizedSample
//   label             -> LabeledSample
//   aggregate         -> ProfileBatch (once per interval)
//   export            -> files, servers
//
// Values are copied or moved between threads; the only shared state they
// carry is immutable (ProcessSnapshot, Mapping, Location, LabelSet), held by
// shared_ptr so a process can exit without invalidating samples in flight.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/model/event.h"
#include "common/labels.h"
#include "symbolizer/process_maps.h"

namespace ember {

// What every stage knows about a sample besides its stack.
struct SampleMeta {
  // What was measured, and how much of it, in event_type(event).unit: for a
  // CPU sample the sampling period, for an off-CPU one the time switched out.
  EventKind event = EventKind::kCpu;
  uint64_t value = 0;
  uint32_t pid = 0;  // tgid
  uint32_t tid = 0;
  uint32_t cpu = 0;
  uint64_t time_ns = 0;    // CLOCK_MONOTONIC, as BPF took it
  uint64_t cgroup_id = 0;  // cgroup v2 id
  std::string comm;        // thread name
  // The process's mappings as the sample stage saw them when it drained the
  // sample; null for kernel threads. Immutable and shared.
  std::shared_ptr<const ProcessSnapshot> process;
};

// --- sample stage ------------------------------------------------------------
// Registers and stack bytes BPF handed over when it could not finish the
// walk; the unwind stage resumes from here with the same tables.
struct StackCopy {
  uint64_t pc = 0, sp = 0, bp = 0;
  uint64_t base = 0;  // address of bytes[0]
  std::array<uint64_t, 16> gpr{};
  bool is_return = false;
  bool first = false;
  std::vector<uint8_t> bytes;
};

struct RawSample {
  SampleMeta meta;
  uint32_t flags = 0;  // EMBER_SAMPLE_F_*
  int32_t kstack_err = 0;
  int32_t ustack_err = 0;
  uint8_t unwind_stop = 0;  // enum ember_unwind_stop
  std::vector<uint64_t> kernel_stack;  // innermost first
  // Innermost first. A frame whose pc is not a return address (the one a
  // signal interrupted) has EMBER_FRAME_NOT_RETURN set.
  std::vector<uint64_t> user_stack;
  std::optional<StackCopy> stack_copy;
};

struct ExecEvent {
  uint32_t pid = 0;
  uint64_t time_ns = 0;
  ExecHint hint;  // executable identity and load placement
  std::string comm;
  std::string filename;  // as passed to execve
};

struct ExitEvent {
  uint32_t pid = 0;
  uint64_t time_ns = 0;
};

// --- unwind stage ------------------------------------------------------------
// Where a frame came from: kernel, native code, Go, JIT, or a runtime's
// interpreter. agent/frames/origin.h explains origins and how to add one.
using OriginId = uint8_t;
namespace origin {  // equal to enum ember_origin (bpf/ember_abi.h)
inline constexpr OriginId kNative = 0;
inline constexpr OriginId kKernel = 1;
inline constexpr OriginId kGo = 2;
inline constexpr OriginId kJit = 3;
inline constexpr OriginId kFirstRuntime = 8;
inline constexpr size_t kMax = 64;  // a user-stack slot's 6-bit tag
}  // namespace origin

struct StackFrame {
  // Native and kernel frames: the instruction address. Other origins: what
  // their decoder made of their slots (a code object's address, say).
  uint64_t address = 0;
  OriginId origin = origin::kNative;
  // True for every frame but the one the CPU was executing: the address is a
  // return address, and the call that produced it ends one byte earlier.
  bool return_address = false;
  // A second word for origins that need one (an instruction offset in an
  // interpreted code object); 0 for native and kernel frames.
  uint64_t aux = 0;
  bool kernel() const { return origin == origin::kKernel; }
};

// Why the user stack ended. kComplete: the walk reached the outermost frame
// (an end-of-stack marker), so the stack is known to be whole.
enum class UnwindStop : uint8_t {
  kComplete,
  kNoUserStack,     // kernel thread, or user stacks disabled
  kReadError,       // user memory could not be read
  kEmpty,           // a user task with no user frames
  kTruncated,       // hit the depth limit
  kNoMapping,       // a pc in no known mapping
  kUnsupportedCfi,  // CFI the unwinders do not execute
  kBadFrame,        // the caller's frame was not above the callee's
  kFramePointerEnd, // frame pointers ran out (rbp == 0) where no CFI exists
  kFramePointers,   // walked by frame pointers only: completeness unknown
  kCount,
};
const char* unwind_stop_name(UnwindStop stop);

struct UnwoundSample {
  SampleMeta meta;
  std::vector<StackFrame> frames;  // innermost first: kernel frames, then user
  UnwindStop stop = UnwindStop::kComplete;
};

// --- symbolize stage ---------------------------------------------------------
// A file (or the kernel) mapped into an address space. One Mapping exists per
// mapping of a process snapshot, so addresses stay in the process's own
// address space in every output.
struct Mapping {
  uint64_t start = 0;
  uint64_t limit = 0;
  uint64_t file_offset = 0;
  std::string file;      // path as the process sees it, or "[kernel.kallsyms]"
  std::string build_id;  // lowercase hex, empty if none
  bool kernel = false;
};

// One source-level frame: a function, and where in it.
struct Line {
  std::string function;     // demangled, as shown to users
  std::string system_name;  // as in the symbol table (mangled)
  std::string file;         // source file, when known
  int64_t line = 0;
  // Offset of the address from the function's start (0 if unknown).
  uint64_t offset = 0;
};

// A symbolized address. `lines` is innermost first: a call inlined into its
// caller yields two Lines for one address. Never empty: an address that could
// not be resolved gets one Line named "module+0xoffset" or "[unknown]".
struct Location {
  uint64_t address = 0;
  // The frame's origin, refined by naming: native code a Go pclntab or a
  // perf map named says kGo or kJit.
  OriginId origin = origin::kNative;
  bool kernel() const { return origin == origin::kKernel; }
  bool resolved = false;  // false when the name is a placeholder
  std::shared_ptr<const Mapping> mapping;  // null when the address is in no known mapping
  std::vector<Line> lines;
};
using LocationRef = std::shared_ptr<const Location>;

struct SymbolizedSample {
  SampleMeta meta;
  std::vector<LocationRef> stack;  // innermost first
  UnwindStop stop = UnwindStop::kComplete;
};

// --- label stage -------------------------------------------------------------
// Sorted, unique label names. Immutable once built; shared by all samples of
// a process.
class LabelSet {
 public:
  LabelSet() = default;
  explicit LabelSet(const Labels& labels);
  const std::vector<std::pair<std::string, std::string>>& labels() const { return labels_; }
  const std::string& get(const std::string& name) const;  // "" if absent
  bool operator==(const LabelSet& o) const { return labels_ == o.labels_; }
  size_t hash() const { return hash_; }
  std::string to_string() const;  // {a="1", b="2"}

 private:
  std::vector<std::pair<std::string, std::string>> labels_;
  size_t hash_ = 0;
};
using LabelSetRef = std::shared_ptr<const LabelSet>;

// A process whose final labels are not known yet: its cgroup names a
// Kubernetes container or pod the pod index has not seen (the pod watch lags
// the process start). The label stage hands one out per such process; the
// aggregator keeps those samples apart and asks the label stage again when
// the interval ends (Labeler::resolve_pending), so they still get the pod's
// labels if it showed up in time. The label stage subclasses it to keep what
// it needs to finish the job, even after the process exited.
struct PendingLabels {
  virtual ~PendingLabels() = default;
  uint32_t pid = 0;
  // The labels to use if the pod never shows up; null: those would be dropped.
  LabelSetRef provisional;
};
using PendingLabelsRef = std::shared_ptr<const PendingLabels>;

struct LabeledSample {
  SymbolizedSample sample;
  LabelSetRef labels;  // the series this sample belongs to
  // Set when `labels` are provisional (see PendingLabels); `labels` may
  // then be null.
  PendingLabelsRef pending;
};

// --- aggregate stage ---------------------------------------------------------
struct ProfileSample {
  std::vector<LocationRef> stack;  // innermost first
  uint64_t count = 0;              // samples
  uint32_t pid = 0;
  std::string comm;
  uint64_t value = 0;  // sum of their values, in the event's unit
};

// One series' samples of one event kind over one interval.
struct Profile {
  LabelSetRef labels;
  EventKind event = EventKind::kCpu;
  uint64_t start_time_ns = 0;  // wall clock
  uint64_t end_time_ns = 0;
  // The sampling timer, for periodic events (event_type(event).periodic);
  // zero for measured ones.
  int frequency_hz = 0;
  uint64_t period_ns = 0;  // 1e9 / frequency
  std::vector<ProfileSample> samples;
  uint64_t total_count() const {
    uint64_t n = 0;
    for (const auto& s : samples) n += s.count;
    return n;
  }
  uint64_t total_value() const {
    uint64_t n = 0;
    for (const auto& s : samples) n += s.value;
    return n;
  }
};

struct ProfileBatch {
  std::vector<Profile> profiles;
};

}  // namespace ember
