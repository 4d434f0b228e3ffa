#include "agent/aggregate/aggregator.h"

#include <gtest/gtest.h>

#include "profile_builders.h"

namespace ember {
namespace {

using namespace ember::testing;

LabeledSample sample(LabelSetRef l, std::vector<LocationRef> stack, uint32_t pid = 1,
                     std::string comm = "t") {
  LabeledSample s;
  s.labels = std::move(l);
  s.sample.meta.pid = pid;
  s.sample.meta.comm = std::move(comm);
  s.sample.stack = std::move(stack);
  return s;
}

TEST(Aggregator, CountsIdenticalStacksPerSeries) {
  Metrics m;
  StackAggregator agg({100, 1000}, m);
  auto map = make_mapping("/a", 0, 100);
  auto a = make_location(1, map, {"a"});
  auto b = make_location(2, map, {"b"});
  auto web = labels({{"service_name", "web"}});
  auto web_again = labels({{"service_name", "web"}});  // equal value, other object
  auto db = labels({{"service_name", "db"}});
  for (int i = 0; i < 6; ++i) agg.add(sample(web, {a, b}));
  for (int i = 0; i < 3; ++i) agg.add(sample(web_again, {b}));
  agg.add(sample(db, {a, b}));
  EXPECT_EQ(agg.pending_samples(), 10u);

  ProfileBatch batch = agg.take(1000, 2000);
  ASSERT_EQ(batch.profiles.size(), 2u);
  // Sorted by labels: db before web.
  EXPECT_EQ(batch.profiles[0].labels->get("service_name"), "db");
  EXPECT_EQ(batch.profiles[0].total_count(), 1u);
  const Profile& w = batch.profiles[1];
  EXPECT_EQ(w.labels->get("service_name"), "web");
  EXPECT_EQ(w.total_count(), 9u);
  EXPECT_EQ(w.samples.size(), 2u);
  EXPECT_EQ(w.start_time_ns, 1000u);
  EXPECT_EQ(w.end_time_ns, 2000u);
  EXPECT_EQ(w.period_ns, 10'000'000u);
  EXPECT_EQ(agg.pending_samples(), 0u);
  EXPECT_TRUE(agg.take(2000, 3000).profiles.empty());
}

TEST(Aggregator, OneProfilePerEventKindWithSummedValues) {
  Metrics m;
  StackAggregator agg({100, 1000}, m);
  auto map = make_mapping("/a", 0, 100);
  auto a = make_location(1, map, {"a"});
  auto web = labels({{"service_name", "web"}});
  for (int i = 0; i < 3; ++i) {
    LabeledSample s = sample(web, {a});
    s.sample.meta.value = 10'000'000;  // one CPU period
    agg.add(std::move(s));
  }
  for (uint64_t waited : {5'000u, 7'000'000u}) {
    LabeledSample s = sample(web, {a});  // same stack, pid and thread
    s.sample.meta.event = EventKind::kOffCpu;
    s.sample.meta.value = waited;
    agg.add(std::move(s));
  }
  ProfileBatch batch = agg.take(1000, 2000);
  ASSERT_EQ(batch.profiles.size(), 2u);
  const Profile& cpu = batch.profiles[0];
  const Profile& off = batch.profiles[1];
  EXPECT_EQ(cpu.event, EventKind::kCpu);
  EXPECT_EQ(cpu.total_count(), 3u);
  EXPECT_EQ(cpu.total_value(), 30'000'000u);
  EXPECT_EQ(cpu.period_ns, 10'000'000u);
  EXPECT_EQ(off.event, EventKind::kOffCpu);
  EXPECT_EQ(off.labels->get("service_name"), "web");
  ASSERT_EQ(off.samples.size(), 1u);
  EXPECT_EQ(off.samples[0].count, 2u);
  EXPECT_EQ(off.samples[0].value, 7'005'000u);
  // A measured event has no sampling period.
  EXPECT_EQ(off.frequency_hz, 0);
  EXPECT_EQ(off.period_ns, 0u);
  EXPECT_EQ(m.counter("ember_samples_aggregated_total", "event=\"cpu\"").value(), 3u);
  EXPECT_EQ(m.counter("ember_samples_aggregated_total", "event=\"off_cpu\"").value(), 2u);
}

TEST(Aggregator, PidAndThreadNameSplitStacks) {
  Metrics m;
  StackAggregator agg({100, 1000}, m);
  auto map = make_mapping("/a", 0, 100);
  auto a = make_location(1, map, {"a"});
  auto l = labels({});
  agg.add(sample(l, {a}, 1, "x"));
  agg.add(sample(l, {a}, 2, "x"));
  agg.add(sample(l, {a}, 1, "y"));
  agg.add(sample(l, {a}, 1, "x"));
  auto batch = agg.take(0, 1);
  ASSERT_EQ(batch.profiles.size(), 1u);
  EXPECT_EQ(batch.profiles[0].samples.size(), 3u);
  EXPECT_EQ(batch.profiles[0].total_count(), 4u);
}

TEST(Aggregator, StackBoundDropsAreCounted) {
  Metrics m;
  StackAggregator agg({100, 2}, m);
  auto map = make_mapping("/a", 0, 100);
  auto l = labels({});
  for (uint64_t i = 0; i < 5; ++i) agg.add(sample(l, {make_location(i, map, {"f"})}));
  EXPECT_EQ(agg.pending_samples(), 2u);
  EXPECT_EQ(m.total("ember_samples_lost_total"), 3u);
}

LabeledSample timed(LabelSetRef l, std::vector<LocationRef> stack, EventKind event, uint64_t ns) {
  LabeledSample s = sample(std::move(l), std::move(stack));
  s.sample.meta.event = event;
  s.sample.meta.value = ns;
  return s;
}

// profiles: [wall] alone: CPU samples (a period each) and off-CPU intervals
// of one stack add up in one wall profile; nothing else is made.
TEST(Aggregator, WallProfileAddsCpuSamplesAndOffCpuIntervalsPerStack) {
  Metrics m;
  StackAggregator::Options o(100, 1000);
  o.profiles = {false, false, true};
  StackAggregator agg(o, m);
  auto map = make_mapping("/a", 0, 100);
  auto a = make_location(1, map, {"a"});
  auto b = make_location(2, map, {"b"});
  auto web = labels({{"service_name", "web"}});
  for (int i = 0; i < 3; ++i) agg.add(timed(web, {a}, EventKind::kCpu, 10'000'000));
  agg.add(timed(web, {a}, EventKind::kOffCpu, 25'000'000));
  agg.add(timed(web, {b}, EventKind::kOffCpu, 40'000'000));
  EXPECT_EQ(agg.pending_samples(), 5u);
  ProfileBatch batch = agg.take(1000, 2000);
  ASSERT_EQ(batch.profiles.size(), 1u);
  const Profile& wall = batch.profiles[0];
  EXPECT_EQ(wall.event, EventKind::kWall);
  EXPECT_EQ(wall.period_ns, 0u);  // measured, not sampled by a timer
  EXPECT_EQ(wall.total_value(), 95'000'000u);
  ASSERT_EQ(wall.samples.size(), 2u);
  for (const auto& ps : wall.samples)
    EXPECT_EQ(ps.value, ps.stack[0] == a ? 55'000'000u : 40'000'000u);
  // Each sample is counted once, by what it measured.
  EXPECT_EQ(m.counter("ember_samples_aggregated_total", "event=\"cpu\"").value(), 3u);
  EXPECT_EQ(m.counter("ember_samples_aggregated_total", "event=\"off_cpu\"").value(), 2u);
}

// profiles: [cpu, off_cpu, wall]: each of the three, the wall one their sum.
TEST(Aggregator, WallNextToCpuAndOffCpuLeavesThemWhole) {
  Metrics m;
  StackAggregator::Options o(100, 1000);
  o.profiles = {true, true, true};
  StackAggregator agg(o, m);
  auto map = make_mapping("/a", 0, 100);
  auto a = make_location(1, map, {"a"});
  auto web = labels({{"service_name", "web"}});
  for (int i = 0; i < 2; ++i) agg.add(timed(web, {a}, EventKind::kCpu, 10'000'000));
  agg.add(timed(web, {a}, EventKind::kOffCpu, 7'000'000));
  EXPECT_EQ(agg.pending_samples(), 3u);
  ProfileBatch batch = agg.take(0, 1);
  ASSERT_EQ(batch.profiles.size(), 3u);
  EXPECT_EQ(batch.profiles[0].event, EventKind::kCpu);
  EXPECT_EQ(batch.profiles[0].total_value(), 20'000'000u);
  EXPECT_EQ(batch.profiles[0].total_count(), 2u);
  EXPECT_EQ(batch.profiles[1].event, EventKind::kOffCpu);
  EXPECT_EQ(batch.profiles[1].total_value(), 7'000'000u);
  EXPECT_EQ(batch.profiles[2].event, EventKind::kWall);
  EXPECT_EQ(batch.profiles[2].total_value(), 27'000'000u);
  ASSERT_EQ(batch.profiles[2].samples.size(), 1u);
  EXPECT_EQ(batch.profiles[2].samples[0].stack.size(), 1u);
  EXPECT_EQ(batch.profiles[2].samples[0].stack[0], a);
}

// A kind not asked for that feeds no wall profile keeps its own profile: no
// sample is dropped for the configuration's sake.
TEST(Aggregator, AKindNotAskedForThatFeedsNoWallProfileIsStillKept) {
  Metrics m;
  StackAggregator::Options o(100, 1000);
  o.profiles = {true, false, false};
  StackAggregator agg(o, m);
  auto map = make_mapping("/a", 0, 100);
  auto a = make_location(1, map, {"a"});
  agg.add(timed(labels({}), {a}, EventKind::kOffCpu, 5));
  ProfileBatch batch = agg.take(0, 1);
  ASSERT_EQ(batch.profiles.size(), 1u);
  EXPECT_EQ(batch.profiles[0].event, EventKind::kOffCpu);
}

// Samples of a process whose pod was not known yet: the late-label counters
// count samples, not the entries wall repeats.
TEST(Aggregator, PendingSamplesFeedingWallAreCountedOnce) {
  Metrics m;
  StackAggregator::Options o(100, 1000);
  o.profiles = {true, true, true};
  auto pod = labels({{"pod", "p"}});
  o.resolve_pending = [&](const PendingLabels&) { return pod; };
  StackAggregator agg(o, m);
  auto map = make_mapping("/a", 0, 100);
  auto a = make_location(1, map, {"a"});
  auto pending = std::make_shared<PendingLabels>();
  pending->pid = 7;
  pending->provisional = labels({{"pod", ""}});
  for (EventKind k : {EventKind::kCpu, EventKind::kOffCpu}) {
    LabeledSample s = timed(nullptr, {a}, k, 1000);
    s.pending = pending;
    agg.add(std::move(s));
  }
  ProfileBatch batch = agg.take(0, 1);
  ASSERT_EQ(batch.profiles.size(), 3u);
  for (const auto& p : batch.profiles) EXPECT_EQ(p.labels->get("pod"), "p");
  EXPECT_EQ(batch.profiles[2].total_value(), 2000u);
  EXPECT_EQ(m.counter("ember_label_late_pod_samples_total", "result=\"labeled\"").value(), 2u);
}

// The stack bound takes a sample's own entry and its wall entry together or
// not at all, and counts a sample it drops once: wall stays the sum.
TEST(Aggregator, TheStackBoundKeepsWallTheSumOfTheOthers) {
  Metrics m;
  StackAggregator::Options o(100, 3);
  o.profiles = {true, true, true};
  StackAggregator agg(o, m);
  auto map = make_mapping("/a", 0, 100);
  auto a = make_location(1, map, {"a"});
  auto b = make_location(2, map, {"b"});
  auto l = labels({});
  agg.add(timed(l, {a}, EventKind::kCpu, 10));     // two new entries: 2 of 3
  agg.add(timed(l, {b}, EventKind::kOffCpu, 20));  // two more would be 4: dropped
  agg.add(timed(l, {a}, EventKind::kCpu, 10));     // existing entries: kept
  EXPECT_EQ(m.total("ember_samples_lost_total"), 1u);
  EXPECT_EQ(agg.pending_samples(), 2u);
  ProfileBatch batch = agg.take(0, 1);
  uint64_t wall = 0, others = 0;
  for (const auto& p : batch.profiles) (p.event == EventKind::kWall ? wall : others) += p.total_value();
  EXPECT_EQ(wall, 20u);
  EXPECT_EQ(others, 20u);
}

}  // namespace
}  // namespace ember
