// The whole pipeline behind the ring buffer, with real stages and no BPF:
// raw samples built from a live fixture process's addresses go in, a
// symbolized, aggregated profile comes out.
#include "agent/pipeline/pipeline.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "agent/aggregate/aggregator.h"
#include "agent/export/folded.h"
#include "agent/label/labeler.h"
#include "agent/runtimes/register.h"
#include "agent/symbolize/symbolize_stage.h"
#include "agent/unwind/stack_unwinder.h"
#include "ember_abi.h"
#include "fixture_process.h"

namespace ember {
namespace {

using testing::FixtureProcess;

class CapturingExporter : public Exporter {
 public:
  void export_batch(ProfileBatch&& b) override {
    std::lock_guard<std::mutex> lock(mu);
    batches.push_back(std::move(b));
  }
  std::mutex mu;
  std::vector<ProfileBatch> batches;
};

// Takes `first_delay` over its first batch, as a first symbolization can.
class SlowFirstExporter : public CapturingExporter {
 public:
  explicit SlowFirstExporter(std::chrono::milliseconds first_delay) : delay(first_delay) {}
  void export_batch(ProfileBatch&& b) override {
    bool first;
    {
      std::lock_guard<std::mutex> lock(mu);
      first = batches.empty();
    }
    if (first) std::this_thread::sleep_for(delay);
    CapturingExporter::export_batch(std::move(b));
  }
  std::chrono::milliseconds delay;
};

struct Rig {
  explicit Rig(bool single, Duration interval = Duration(0))
      : symbolizer(SymbolizerOptions{}),
        table(table_options(symbolizer), SystemClock::instance(), metrics),
        origins(make_origins(OriginDeps{metrics, &symbolizer})),
        unwinder(metrics, nullptr, origins),
        symbolize(origins, &table, SystemClock::instance(), metrics),
        labeler(ProcessLabeler::Options{single, {{"env", "test"}}}),
        aggregator({100, 100000}, metrics),
        pipeline({interval, 1024},
                 Pipeline::Stages{unwinder, symbolize, labeler, aggregator, exporter}, &table,
                 SystemClock::instance(), metrics) {}
  static ProcessTable::Options table_options(Symbolizer& s) {
    ProcessTable::Options o;
    o.file_known = [&s](uint64_t dev, uint64_t ino) { return s.knows_file(dev, ino); };
    return o;
  }
  Metrics metrics;
  Symbolizer symbolizer;
  ProcessTable table;
  FrameOrigins origins;
  StackUnwinder unwinder;
  DefaultSymbolizeStage symbolize;
  ProcessLabeler labeler;
  StackAggregator aggregator;
  CapturingExporter exporter;
  Pipeline pipeline;
};

RawSample user_sample(pid_t pid, std::vector<uint64_t> stack, const char* comm = "symbols_pie") {
  RawSample s;
  s.meta.pid = uint32_t(pid);
  s.meta.tid = uint32_t(pid);
  s.meta.comm = comm;
  s.user_stack = std::move(stack);
  return s;
}

std::string fixture(const char* name) { return std::string(FIXTURE_DIR) + "/" + name; }

TEST(Pipeline, SymbolizesLabelsAndAggregates) {
  FixtureProcess p(fixture("symbols_pie"));
  ASSERT_TRUE(p.ready());
  const auto& a = p.addresses();
  Rig rig(false);
  // A stack as a frame-pointer walk reports it: leaf first. Return
  // addresses point just past a call; the +N offsets the fixture printed
  // land inside each function either way.
  std::vector<uint64_t> stack1 = {a.at("fixture_lib_function"), a.at("fixture_exe_beta"),
                                  a.at("fixture_exe_static")};
  std::vector<uint64_t> stack2 = {a.at("fixture_exe_alpha"), a.at("fixture_exe_static")};
  for (int i = 0; i < 6; ++i) rig.pipeline.on_sample(user_sample(p.pid(), stack1));
  for (int i = 0; i < 3; ++i) rig.pipeline.on_sample(user_sample(p.pid(), stack2));
  // The sample stage attached one shared snapshot; process synchronously.
  rig.pipeline.start();
  rig.pipeline.stop();

  ASSERT_EQ(rig.exporter.batches.size(), 1u);
  const auto& profiles = rig.exporter.batches[0].profiles;
  ASSERT_EQ(profiles.size(), 1u);
  EXPECT_EQ(profiles[0].labels->get("service_name"), "symbols_pie");
  EXPECT_EQ(profiles[0].labels->get("env"), "test");
  FoldedOptions fo;
  fo.process_root = false;
  std::string folded = render_folded(fold_profile(profiles[0], fo));
  EXPECT_EQ(folded,
            "fixture_exe_static;fixture_exe_alpha 3\n"
            "fixture_exe_static;fixture_exe_beta;fixture_lib_function 6\n");
  EXPECT_EQ(rig.pipeline.samples_processed(), 9u);
  EXPECT_EQ(rig.metrics.total("ember_process_snapshots_total"), 1u);
}

TEST(Pipeline, SamplesOfAProcessThatExitedStillResolve) {
  Rig rig(true);
  pid_t pid;
  std::map<std::string, uint64_t> addrs;
  {
    FixtureProcess p(fixture("symbols_nopie"));
    ASSERT_TRUE(p.ready());
    pid = p.pid();
    addrs = p.addresses();
    // Drained while alive: the snapshot is attached now...
    rig.pipeline.on_sample(user_sample(pid, {addrs.at("fixture_lib_second"), addrs.at("fixture_exe_beta")}));
  }  // ...and the process exits here, before the pipeline thread runs.
  rig.pipeline.on_record(nullptr, 0);  // a malformed record is counted, not fatal
  ExitEvent ev{uint32_t(pid), 0};
  ember_exit_event raw{EMBER_REC_EXIT, uint32_t(pid), 0};
  rig.pipeline.on_record(&raw, sizeof(raw));
  EXPECT_EQ(rig.table.size(), 0u);
  (void)ev;
  rig.pipeline.start();
  rig.pipeline.stop();
  ASSERT_EQ(rig.exporter.batches.size(), 1u);
  FoldedOptions fo;
  fo.process_root = false;
  EXPECT_EQ(render_folded(fold_profile(rig.exporter.batches[0].profiles[0], fo)),
            "fixture_exe_beta;fixture_lib_second 1\n");
  EXPECT_EQ(rig.metrics.total("ember_records_malformed_total"), 1u);
}

TEST(Pipeline, UnknownAddressesArePlaceholdersNotDrops) {
  Rig rig(true);
  RawSample s = user_sample(getpid(), {0x10, 0x20});  // not mapped in our process
  s.kernel_stack = {0xffffffff00000010ull};            // no such kernel symbol
  rig.pipeline.on_sample(std::move(s));
  rig.pipeline.start();
  rig.pipeline.stop();
  ASSERT_EQ(rig.exporter.batches.size(), 1u);
  FoldedOptions fo;
  fo.process_root = false;
  EXPECT_EQ(render_folded(fold_profile(rig.exporter.batches[0].profiles[0], fo)),
            "[unknown];[unknown];[unknown]_[k] 1\n");
  EXPECT_GE(rig.metrics.total("ember_frames_unresolved_total"), 2u);
}

TEST(Pipeline, KernelThreadsGetTheirOwnSeries) {
  Rig rig(false);
  RawSample k;
  k.meta.pid = 2;
  k.meta.comm = "kthreadd";
  k.flags = EMBER_SAMPLE_F_KERNEL_THREAD;
  k.kernel_stack = {0xffffffff81000000ull};
  rig.pipeline.on_sample(std::move(k));
  rig.pipeline.start();
  rig.pipeline.stop();
  ASSERT_EQ(rig.exporter.batches.size(), 1u);
  EXPECT_EQ(rig.exporter.batches[0].profiles[0].labels->get("service_name"), "kernel");
}

TEST(Pipeline, IntervalsProduceOneBatchEach) {
  Rig rig(true, std::chrono::milliseconds(100));
  rig.pipeline.start();
  for (int round = 0; round < 3; ++round) {
    rig.pipeline.on_sample(user_sample(getpid(), {0x10}));
    rig.pipeline.on_drained();
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  rig.pipeline.stop();
  uint64_t total = 0;
  for (const auto& b : rig.exporter.batches)
    for (const auto& p : b.profiles) total += p.total_count();
  EXPECT_EQ(total, 3u);  // nothing lost across interval boundaries
  EXPECT_GE(rig.exporter.batches.size(), 2u);
}

// A flush that runs late still ends its interval when it was due, so the next
// interval is not short by the delay (Pyroscope's ingest API rounds to whole
// seconds, and a short interval overlapped the next one).
TEST(Pipeline, ALateFlushEndsTheIntervalWhenItWasDue) {
  using std::chrono::milliseconds;
  const uint64_t interval_ns = 200'000'000;
  Metrics metrics;
  Symbolizer symbolizer{SymbolizerOptions{}};
  ProcessTable table(Rig::table_options(symbolizer), SystemClock::instance(), metrics);
  FrameOrigins origins = make_origins(OriginDeps{metrics, &symbolizer});
  StackUnwinder unwinder(metrics, nullptr, origins);
  DefaultSymbolizeStage symbolize(origins, &table, SystemClock::instance(), metrics);
  ProcessLabeler labeler(ProcessLabeler::Options{true, {{"env", "test"}}});
  StackAggregator aggregator({100, 100000}, metrics);
  SlowFirstExporter exporter(milliseconds(300));  // 1.5 intervals late
  Pipeline pipeline({std::chrono::nanoseconds(interval_ns), 1024},
                    Pipeline::Stages{unwinder, symbolize, labeler, aggregator, exporter}, &table,
                    SystemClock::instance(), metrics);
  pipeline.start();
  for (int i = 0; i < 24; ++i) {  // a few samples in every interval
    pipeline.on_sample(user_sample(getpid(), {0x10}));
    pipeline.on_drained();
    std::this_thread::sleep_for(milliseconds(50));
  }
  pipeline.stop();
  std::lock_guard<std::mutex> lock(exporter.mu);
  ASSERT_GE(exporter.batches.size(), 4u);
  for (size_t i = 0; i < exporter.batches.size(); ++i) {
    const Profile& p = exporter.batches[i].profiles.at(0);
    if (i > 0) {
      EXPECT_EQ(p.start_time_ns, exporter.batches[i - 1].profiles.at(0).end_time_ns) << i;
    }
    if (i + 1 == exporter.batches.size()) break;  // the last one ends at stop()
    // Each interval is the configured length (the realtime clock may be
    // slewed by NTP, hence the small tolerance), the one after the slow
    // export included: it is neither 300 ms long nor 100 ms short.
    EXPECT_NEAR(double(p.end_time_ns - p.start_time_ns), double(interval_ns), 5e6) << i;
  }
}

TEST(Pipeline, QueueOverflowIsCounted) {
  Rig rig(true);  // not started: nothing consumes the queue
  for (int i = 0; i < 1030; ++i) rig.pipeline.on_sample(user_sample(0, {0x10}));
  EXPECT_EQ(rig.metrics.total("ember_samples_lost_total"), 6u);
}

// A run-queue wait's sample (sent when the wait began) waits for the wait's
// end, which carries its value; samples whose end never comes are counted
// as lost, and an end with no sample is counted apart.
TEST(Pipeline, RunQueueSamplesAreJoinedWithTheirWaitsEnd) {
  Rig rig(true);
  auto waiting = [](uint32_t tid) {
    RawSample s = user_sample(0, {0x10});
    s.meta.tid = tid;
    s.meta.event = EventKind::kOffCpu;
    s.flags = EMBER_SAMPLE_F_VALUE_FOLLOWS;
    return s;
  };
  auto end = [&](uint32_t tid, uint64_t value) {
    ember_wait_end e{EMBER_REC_WAIT_END, tid, 0, value};
    rig.pipeline.on_record(&e, sizeof(e));
  };
  rig.pipeline.on_sample(waiting(7));
  rig.pipeline.on_sample(waiting(8));
  end(7, 3'000'000);
  end(9, 1);               // its sample was lost to a full ring
  rig.pipeline.on_sample(waiting(8));  // 8's first end never came
  end(8, 2'000'000);
  rig.pipeline.on_sample(waiting(10));  // still waiting at stop
  rig.pipeline.start();
  rig.pipeline.stop();

  ASSERT_EQ(rig.exporter.batches.size(), 1u);
  uint64_t count = 0, value = 0;
  for (const auto& p : rig.exporter.batches[0].profiles) {
    EXPECT_EQ(p.event, EventKind::kOffCpu);
    count += p.total_count();
    value += p.total_value();
  }
  EXPECT_EQ(count, 2u);
  EXPECT_EQ(value, 5'000'000u);
  EXPECT_EQ(rig.metrics.counter("ember_samples_lost_total", "reason=\"wait_never_ended\"").value(), 2u);
  EXPECT_EQ(rig.metrics.total("ember_offcpu_runqueue_ends_unmatched_total"), 1u);
  EXPECT_EQ(rig.metrics.total("ember_offcpu_runqueue_samples_total"), 2u);
}

// The bound: past WaitJoin::kMaxHeld samples held at once, the oldest go.
TEST(WaitJoin, HoldsAtMostItsBoundOldestFirst) {
  Metrics m;
  WaitJoin j(m);
  for (uint32_t tid = 1; tid <= WaitJoin::kMaxHeld + 5; ++tid) {
    RawSample s;
    s.meta.tid = tid;
    j.hold(std::move(s));
  }
  EXPECT_EQ(j.held(), WaitJoin::kMaxHeld);
  EXPECT_EQ(m.total("ember_samples_lost_total"), 5u);
  EXPECT_FALSE(j.complete(WaitEndEvent{1, 0, 1}).has_value());  // pushed out
  auto last = j.complete(WaitEndEvent{uint32_t(WaitJoin::kMaxHeld + 5), 0, 42});
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->meta.value, 42u);
  EXPECT_EQ(last->flags & EMBER_SAMPLE_F_VALUE_FOLLOWS, 0u);
  // A thread held again and again keeps one entry, and the bookkeeping of
  // the order stays bounded.
  for (int i = 0; i < 100000; ++i) {
    RawSample s;
    s.meta.tid = 99999;
    j.hold(std::move(s));
    j.complete(WaitEndEvent{99999, 0, 1});
  }
  EXPECT_LE(j.held(), WaitJoin::kMaxHeld);
  EXPECT_LE(j.order_entries(), 4 * WaitJoin::kMaxHeld + 1);
  // An end is paired only with the sample of its own wait (same start).
  RawSample s;
  s.meta.tid = 5;
  s.meta.time_ns = 2000;
  j.hold(std::move(s));
  EXPECT_FALSE(j.complete(WaitEndEvent{5, 1000, 7}).has_value());  // an older wait's end
  auto own = j.complete(WaitEndEvent{5, 2000, 9});
  ASSERT_TRUE(own.has_value());
  EXPECT_EQ(own->meta.value, 9u);
}

}  // namespace
}  // namespace ember
