#include "agent/unwind/fp_unwinder.h"

#include <gtest/gtest.h>

#include "ember_abi.h"

namespace ember {
namespace {

TEST(FramePointerUnwinder, OnlyTheInterruptedFrameIsNotAReturnAddress) {
  Metrics m;
  FramePointerUnwinder u(m);
  RawSample raw;
  raw.meta.pid = 5;
  raw.kernel_stack = {0xffffffff81000010, 0xffffffff81000020};
  raw.user_stack = {0x401010, 0x402020, 0x403030};
  UnwoundSample out = u.unwind(std::move(raw));
  ASSERT_EQ(out.frames.size(), 5u);
  EXPECT_EQ(out.frames[0].kind, FrameKind::kKernel);
  EXPECT_FALSE(out.frames[0].return_address);
  EXPECT_TRUE(out.frames[1].return_address);
  // The first user frame is where user code entered the kernel.
  EXPECT_EQ(out.frames[2].kind, FrameKind::kUser);
  EXPECT_FALSE(out.frames[2].return_address);
  EXPECT_TRUE(out.frames[3].return_address);
  EXPECT_TRUE(out.frames[4].return_address);
  EXPECT_EQ(out.stop, UnwindStop::kComplete);
  EXPECT_EQ(out.meta.pid, 5u);
}

TEST(FramePointerUnwinder, DropsGarbageAndCountsWhyStacksEnded) {
  Metrics m;
  FramePointerUnwinder u(m);
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
  deep.user_stack.assign(EMBER_MAX_STACK_DEPTH, 0x401000);
  EXPECT_EQ(u.unwind(std::move(deep)).stop, UnwindStop::kTruncated);

  EXPECT_EQ(m.total("ember_unwind_stops_total"), 5u);
  for (const auto& r : m.snapshot()) {
    if (r.name == "ember_unwind_stops_total") {
      EXPECT_EQ(r.value, 1u) << r.labels;
    }
  }
}

}  // namespace
}  // namespace ember
