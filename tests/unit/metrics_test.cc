#include "common/metrics.h"

#include <gtest/gtest.h>

namespace ember {
namespace {

TEST(Metrics, CountersByNameAndLabels) {
  Metrics m;
  Counter& full = m.counter("ember_samples_lost_total", "reason=\"ring_buffer_full\"", "Samples lost");
  Counter& queue = m.counter("ember_samples_lost_total", "reason=\"pipeline_queue_full\"");
  full.add(3);
  queue.add();
  EXPECT_EQ(&m.counter("ember_samples_lost_total", "reason=\"ring_buffer_full\""), &full);
  EXPECT_EQ(m.total("ember_samples_lost_total"), 4u);
  EXPECT_EQ(m.total("nothing"), 0u);
  m.gauge("ember_processes_tracked").set(12);
  std::string text = m.prometheus_text();
  EXPECT_NE(text.find("# HELP ember_samples_lost_total Samples lost\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE ember_samples_lost_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("ember_samples_lost_total{reason=\"ring_buffer_full\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("ember_samples_lost_total{reason=\"pipeline_queue_full\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE ember_processes_tracked gauge\nember_processes_tracked 12\n"),
            std::string::npos);
}

}  // namespace
}  // namespace ember
