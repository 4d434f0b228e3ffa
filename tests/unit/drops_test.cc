#include "common/drops.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace ember {
namespace {

TEST(Drops, EveryReasonIsOneUniqueValidSeries) {
  std::set<std::pair<std::string, std::string>> seen;
  const std::regex metric("ember_[a-z_]+_total");
  const std::regex reason("[a-z_]+");
  for (size_t i = 0; i < kDropCount; ++i) {
    const DropInfo& d = drop_info(Drop(i));
    EXPECT_TRUE(std::regex_match(d.metric, metric)) << d.metric;
    EXPECT_TRUE(std::regex_match(d.reason, reason)) << d.reason;
    EXPECT_STRNE(d.help, "");
    EXPECT_TRUE(seen.emplace(d.metric, d.reason).second) << d.metric << " " << d.reason;
  }
}

TEST(Drops, CountersCarryTheReasonAfterExtraLabels) {
  Metrics m;
  drop_counter(m, Drop::kSampleTooManyStacks).add(2);
  drop_counter(m, Drop::kUploadRejected, "server=\"s\"").add();
  upload_samples_drop_counter(m, Drop::kUploadRejected, "server=\"s\"").add(7);
  EXPECT_EQ(m.counter("ember_samples_lost_total", "reason=\"too_many_stacks\"").value(), 2u);
  EXPECT_EQ(m.counter("ember_upload_profiles_dropped_total", "server=\"s\",reason=\"rejected\"").value(), 1u);
  EXPECT_EQ(m.counter("ember_upload_samples_dropped_total", "server=\"s\",reason=\"rejected\"").value(), 7u);
  EXPECT_NE(m.prometheus_text().find("# HELP ember_samples_lost_total Samples lost, by reason"), std::string::npos);
}

}  // namespace
}  // namespace ember
