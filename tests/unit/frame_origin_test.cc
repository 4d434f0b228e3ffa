// A made-up runtime, registered the way a real one is (agent/frames/
// origin.h): its BPF part would tag two-slot frames (a code object, then a
// line) with origin 40; its decoder and symbolizer live in this file only.
// Its frames must come out of the real unwind and symbolize stages and show
// up in pprof, folded stacks and the flame graph with no change elsewhere.
#include <gtest/gtest.h>

#include <set>

#include "agent/aggregate/aggregator.h"
#include "agent/export/flamegraph.h"
#include "agent/export/folded.h"
#include "agent/export/pprof.h"
#include "agent/label/labeler.h"
#include "agent/pipeline/pipeline.h"
#include "agent/runtimes/register.h"
#include "agent/symbolize/symbolize_stage.h"
#include "agent/unwind/stack_unwinder.h"
#include "profile.pb.h"

namespace ember {
namespace {

constexpr OriginId kFake = 40;

uint64_t fake_slot(uint64_t code) { return (uint64_t(kFake) << kOriginShift) | code; }

class FakeDecoder final : public FrameDecoder {
 public:
  size_t decode(std::span<const uint64_t> slots, bool first, std::vector<StackFrame>& out) override {
    if (slots.size() < 2) return 0;  // a frame cut in half is malformed
    out.push_back(StackFrame{slots[0] & kSlotPayloadMask, kFake, !first, slots[1]});
    return 2;
  }
};

class FakeSymbolizer final : public FrameSymbolizer {
 public:
  Symbolized symbolize(const StackFrame& f, const std::shared_ptr<const ProcessSnapshot>&,
                       uint64_t) override {
    ++calls;
    auto loc = std::make_shared<Location>();
    loc->address = f.address;
    loc->origin = kFake;
    loc->resolved = true;
    Line line;
    line.function = "fake_fn_" + std::to_string(f.address);
    line.file = "app.fake";
    line.line = int64_t(f.aux);
    loc->lines.push_back(std::move(line));
    Symbolized s;
    s.location = std::move(loc);
    return s;
  }
  int calls = 0;
};

class Capture final : public Exporter {
 public:
  void export_batch(ProfileBatch&& b) override {
    for (auto& p : b.profiles) profiles.push_back(std::move(p));
  }
  std::vector<Profile> profiles;
};

struct Rig {
  Rig() : origins(make_origins(OriginDeps{metrics})) {
    auto sym = std::make_unique<FakeSymbolizer>();
    fake = sym.get();
    EXPECT_TRUE(origins.add(kFake, "fake", std::make_unique<FakeDecoder>(), std::move(sym)).ok());
  }
  Metrics metrics;
  FrameOrigins origins;
  FakeSymbolizer* fake = nullptr;
};

RawSample sample(std::vector<uint64_t> slots) {
  RawSample s;
  s.meta.pid = 7;
  s.meta.comm = "fakeapp";
  s.meta.value = 10'000'000;
  s.user_stack = std::move(slots);
  return s;
}

TEST(FrameOrigin, ARegisteredOriginsFramesReachEveryOutput) {
  Rig rig;
  StackUnwinder unwinder(rig.metrics, nullptr, rig.origins);
  DefaultSymbolizeStage symbolize(rig.origins, nullptr, SystemClock::instance(), rig.metrics);
  ProcessLabeler labeler(ProcessLabeler::Options{true, {{"service_name", "fakeapp"}}});
  StackAggregator aggregator({100, 1000}, rig.metrics);
  Capture exporter;
  Pipeline pipeline({}, Pipeline::Stages{unwinder, symbolize, labeler, aggregator, exporter},
                    nullptr, SystemClock::instance(), rig.metrics);
  // Leaf first: fake_fn_2 at line 12, called from fake_fn_1 at line 30.
  for (int i = 0; i < 3; ++i) pipeline.process(sample({fake_slot(2), 12, fake_slot(1), 30}));
  pipeline.process(sample({fake_slot(1), 31}));
  pipeline.flush_interval();

  EXPECT_EQ(rig.fake->calls, 3);  // interned: one lookup per distinct frame
  ASSERT_EQ(exporter.profiles.size(), 1u);
  const Profile& p = exporter.profiles[0];
  EXPECT_EQ(p.total_count(), 4u);

  FoldedOptions fo;
  fo.process_root = false;
  EXPECT_EQ(render_folded(fold_profile(p, fo)), "fake_fn_1 1\nfake_fn_1;fake_fn_2 3\n");  // folded lines sort by stack

  perftools::profiles::Profile pb;
  build_pprof(p, {}, &pb);
  auto str = [&](int64_t i) { return pb.string_table(int(i)); };
  std::set<std::string> functions;
  for (const auto& f : pb.function()) functions.insert(str(f.name()) + "@" + str(f.filename()));
  EXPECT_EQ(functions, (std::set<std::string>{"fake_fn_1@app.fake", "fake_fn_2@app.fake"}));
  bool line_12 = false;
  for (const auto& l : pb.location())
    for (const auto& line : l.line()) line_12 |= line.line() == 12;
  EXPECT_TRUE(line_12);

  std::string svg = render_flamegraph_svg(fold_profile(p), FlamegraphOptions{});
  EXPECT_NE(svg.find("fake_fn_2"), std::string::npos);
  EXPECT_NE(svg.find("fake_fn_1"), std::string::npos);
}

TEST(FrameOrigin, AnUnregisteredTagEndsTheWalkAsABadFrame) {
  Rig rig;
  StackUnwinder unwinder(rig.metrics, nullptr, rig.origins);
  UnwoundSample u = unwinder.unwind(sample({fake_slot(2), 12, (uint64_t(41) << kOriginShift) | 5, 0x401000}));
  ASSERT_EQ(u.frames.size(), 1u);
  EXPECT_EQ(u.frames[0].origin, kFake);
  EXPECT_EQ(u.frames[0].aux, 12u);
  EXPECT_EQ(u.stop, UnwindStop::kBadFrame);
  // Half a frame is malformed too.
  EXPECT_EQ(unwinder.unwind(sample({0x401000, fake_slot(2)})).stop, UnwindStop::kBadFrame);
  EXPECT_EQ(unwinder.unwind(sample({0x401000, fake_slot(2)})).frames.size(), 1u);
}

TEST(FrameOrigin, AFrameOfAnOriginWithoutSymbolizerIsNamedByItsOrigin) {
  Rig rig;
  ASSERT_TRUE(rig.origins.add(42, "nameless", std::make_unique<FakeDecoder>(), nullptr).ok());
  DefaultSymbolizeStage symbolize(rig.origins, nullptr, SystemClock::instance(), rig.metrics);
  UnwoundSample u;
  u.frames.push_back(StackFrame{9, 42, false, 0});
  SymbolizedSample s = symbolize.symbolize(std::move(u));
  ASSERT_EQ(s.stack.size(), 1u);
  EXPECT_FALSE(s.stack[0]->resolved);
  EXPECT_EQ(s.stack[0]->lines[0].function, "[nameless]");
  EXPECT_EQ(rig.metrics.total("ember_frames_unresolved_total"), 1u);
}

TEST(FrameOrigin, TwoRuntimesCannotClaimOneTag) {
  Rig rig;
  EXPECT_FALSE(rig.origins.add(kFake, "other", std::make_unique<FakeDecoder>(), nullptr).ok());
  EXPECT_FALSE(rig.origins.add(origin::kNative, "native", std::make_unique<FakeDecoder>(), nullptr).ok());
  EXPECT_FALSE(rig.origins.add(64, "too_big", nullptr, nullptr).ok());
  EXPECT_EQ(rig.origins.name(kFake), "fake");
  EXPECT_EQ(rig.origins.name(origin::kGo), "go");
  EXPECT_EQ(rig.origins.name(50), "origin_50");
}

}  // namespace
}  // namespace ember
