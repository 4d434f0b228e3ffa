#include "agent/unwind/stack_unwinder.h"
#include "agent/runtimes/register.h"
#include "symbolizer/symbolizer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include <set>

#include "ember_abi.h"

namespace ember {
namespace {

TEST(StackUnwinder, OnlyTheInterruptedFrameIsNotAReturnAddress) {
  Metrics m;
  FrameOrigins origins = make_origins(OriginDeps{m});
  StackUnwinder u(m, nullptr, origins);
  RawSample raw;
  raw.meta.pid = 5;
  raw.kernel_stack = {0xffffffff81000010, 0xffffffff81000020};
  raw.user_stack = {0x401010, 0x402020, 0x403030};
  UnwoundSample out = u.unwind(std::move(raw));
  ASSERT_EQ(out.frames.size(), 5u);
  EXPECT_EQ(out.frames[0].origin, origin::kKernel);
  EXPECT_FALSE(out.frames[0].return_address);
  EXPECT_TRUE(out.frames[1].return_address);
  // The first user frame is where user code entered the kernel.
  EXPECT_EQ(out.frames[2].origin, origin::kNative);
  EXPECT_FALSE(out.frames[2].return_address);
  EXPECT_TRUE(out.frames[3].return_address);
  EXPECT_TRUE(out.frames[4].return_address);
  EXPECT_EQ(out.stop, UnwindStop::kComplete);  // raw.unwind_stop 0: the walk reached the end
  EXPECT_EQ(out.meta.pid, 5u);
}

TEST(StackUnwinder, DropsGarbageAndCountsWhyStacksEnded) {
  Metrics m;
  FrameOrigins origins = make_origins(OriginDeps{m});
  StackUnwinder u(m, nullptr, origins);
  RawSample raw;
  raw.user_stack = {0x401010, 0xffffffff81000000, 0x402020};  // a kernel address leaked in
  auto out = u.unwind(std::move(raw));
  EXPECT_EQ(out.frames.size(), 1u);

  RawSample kthread;
  kthread.flags = EMBER_SAMPLE_F_KERNEL_THREAD;
  kthread.kernel_stack = {0xffffffff81000010};
  EXPECT_EQ(u.unwind(std::move(kthread)).stop, UnwindStop::kNoUserStack);

  RawSample err;
  err.ustack_err = -14;
  EXPECT_EQ(u.unwind(std::move(err)).stop, UnwindStop::kReadError);

  RawSample empty;
  EXPECT_EQ(u.unwind(std::move(empty)).stop, UnwindStop::kEmpty);

  RawSample deep;
  deep.user_stack.assign(EMBER_MAX_USER_DEPTH, 0x401000);
  deep.unwind_stop = EMBER_STOP_TRUNCATED;
  EXPECT_EQ(u.unwind(std::move(deep)).stop, UnwindStop::kTruncated);

  RawSample fp;
  fp.user_stack = {0x401000, 0x402000};
  fp.unwind_stop = EMBER_STOP_FP_ONLY;
  EXPECT_EQ(u.unwind(std::move(fp)).stop, UnwindStop::kFramePointers);

  EXPECT_EQ(m.total("ember_unwind_stops_total"), 6u);
  // The stack with a kernel address among its user frames ends there, at a
  // bad frame: it is not counted as complete.
  std::set<std::string> seen = {"bad_frame", "no_user_stack", "read_error", "empty", "truncated",
                                 "frame_pointers"};
  for (const auto& r : m.snapshot()) {
    if (r.name != "ember_unwind_stops_total") continue;
    std::string reason = r.labels.substr(8, r.labels.size() - 9);  // reason="..."
    EXPECT_EQ(r.value, seen.count(reason) ? 1u : 0u) << r.labels;
  }
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// A stack copy is finished in user space with the same tables: here a real
// process (this test binary) provides the copy, taken of our own stack.
__attribute__((noinline)) void take_copy(RawSample* out) {
  uint64_t sp, bp;
  asm volatile("mov %%rsp, %0; mov %%rbp, %1" : "=r"(sp), "=r"(bp));
  StackCopy c;
  c.pc = reinterpret_cast<uint64_t>(__builtin_return_address(0));
  c.sp = sp;
  c.bp = bp;
  c.base = sp & ~uint64_t(4095);
  c.is_return = true;
  c.first = false;
  // Our frame: the pc above is the return into our caller, so the copy's
  // state must describe the caller's frame: its sp is just above ours.
  c.sp = reinterpret_cast<uint64_t>(__builtin_frame_address(0)) + 16;
  c.bp = *reinterpret_cast<uint64_t*>(__builtin_frame_address(0));
  // Page by page, stopping at the top of the stack, as BPF does.
  int fd = ::open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
  for (int page = 0; page < 16; ++page) {
    size_t at = c.bytes.size();
    c.bytes.resize(at + 4096);
    if (::pread(fd, c.bytes.data() + at, 4096, off_t(c.base + at)) != 4096) {
      c.bytes.resize(at);
      break;
    }
  }
  ::close(fd);
  out->user_stack = {c.pc};
  out->stack_copy = std::move(c);
}

TEST(StackUnwinder, FinishesAWalkFromAStackCopy) {
  Metrics m;
  unwind::UnwindTableCache cache({});
  FrameOrigins origins = make_origins(OriginDeps{m});
  StackUnwinder u(m, &cache, origins);
  RawSample raw;
  raw.meta.pid = uint32_t(getpid());
  auto snap = read_process_snapshot("/proc", getpid());
  ASSERT_TRUE(snap.ok());
  raw.meta.process = std::move(*snap);
  raw.unwind_stop = EMBER_STOP_NO_TABLES;
  take_copy(&raw);
  UnwoundSample out = u.unwind(std::move(raw));
  // From this test function up through gtest's runner, main and _start.
  EXPECT_EQ(out.stop, UnwindStop::kComplete) << unwind_stop_name(out.stop);
  EXPECT_GT(out.frames.size(), 8u);
  EXPECT_EQ(m.total("ember_unwind_user_space_total"), 1u);
  Symbolizer sym(SymbolizerOptions{});
  bool saw_main = false;
  for (const auto& f : out.frames) {
    UserSymbol us = sym.resolve_user(*out.meta.process, f.address, f.return_address);
    if (us.function == "main") saw_main = true;
  }
  EXPECT_TRUE(saw_main);
}

}  // namespace
}  // namespace ember
