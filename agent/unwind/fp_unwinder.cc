#include "agent/unwind/fp_unwinder.h"

#include "ember_abi.h"

namespace ember {
namespace {

// x86-64 and arm64 user space ends well below this; anything above is a
// kernel address that leaked into a user stack read, or garbage.
constexpr uint64_t kUserSpaceEnd = 0x0000800000000000ull;

}  // namespace

const char* unwind_stop_name(UnwindStop stop) {
  switch (stop) {
    case UnwindStop::kComplete: return "complete";
    case UnwindStop::kNoUserStack: return "no_user_stack";
    case UnwindStop::kReadError: return "read_error";
    case UnwindStop::kEmpty: return "empty";
    case UnwindStop::kTruncated: return "truncated";
  }
  return "unknown";
}

FramePointerUnwinder::FramePointerUnwinder(Metrics& metrics) {
  for (int i = 0; i < 5; ++i) {
    auto stop = static_cast<UnwindStop>(i);
    stops_[i] = &metrics.counter("ember_unwind_stops_total",
                                 std::string("reason=\"") + unwind_stop_name(stop) + "\"",
                                 "Samples by how their user stack ended");
  }
}

UnwoundSample FramePointerUnwinder::unwind(RawSample&& raw) {
  UnwoundSample out;
  out.meta = std::move(raw.meta);
  out.frames.reserve(raw.kernel_stack.size() + raw.user_stack.size());

  bool first = true;
  for (uint64_t addr : raw.kernel_stack) {
    if (addr == 0) break;
    out.frames.push_back(StackFrame{addr, FrameKind::kKernel, !first});
    first = false;
  }
  // The first user frame is where user code was interrupted (or entered the
  // kernel), so it is an instruction address, not a return address.
  first = true;
  size_t user_frames = 0;
  for (uint64_t addr : raw.user_stack) {
    if (addr == 0 || addr >= kUserSpaceEnd) break;
    out.frames.push_back(StackFrame{addr, FrameKind::kUser, !first});
    first = false;
    ++user_frames;
  }

  if (raw.flags & EMBER_SAMPLE_F_KERNEL_THREAD) out.stop = UnwindStop::kNoUserStack;
  else if (raw.ustack_err != 0) out.stop = UnwindStop::kReadError;
  else if (user_frames == 0) out.stop = UnwindStop::kEmpty;
  else if (raw.user_stack.size() >= EMBER_MAX_STACK_DEPTH) out.stop = UnwindStop::kTruncated;
  else out.stop = UnwindStop::kComplete;
  stops_[int(out.stop)]->add();
  return out;
}

}  // namespace ember
