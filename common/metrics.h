// Metrics: the agent's self-accounting. "Drops are data": every sample that
// is lost or degraded increments a counter named for the reason, and every
// counter here is reported (at the end of `ember record`, per interval in the
// agent's log, and as Prometheus text).
//
// Any thread may increment; counters are atomics that live as long as the
// registry, so call sites keep a reference and pay one atomic add.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ember {

class Counter {
 public:
  void add(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  void set(uint64_t n) { v_.store(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Metrics {
 public:
  enum class Kind { kCounter, kGauge };
  struct Row {
    std::string name;  // e.g. "ember_samples_lost_total"
    std::string labels;  // e.g. reason="ring_full" (already formatted)
    Kind kind;
    std::string help;
    uint64_t value;
  };

  // Returns the counter for (name, labels), creating it on first use.
  // `labels` is a preformatted Prometheus label list without braces.
  Counter& counter(const std::string& name, const std::string& labels = "",
                   const std::string& help = "");
  Counter& gauge(const std::string& name, const std::string& labels = "",
                 const std::string& help = "");

  std::vector<Row> snapshot() const;
  // Prometheus text exposition format.
  std::string prometheus_text() const;
  // Sum of every row of `name` (all label values).
  uint64_t total(const std::string& name) const;

 private:
  Counter& get(const std::string& name, const std::string& labels, const std::string& help,
               Kind kind);
  struct Entry {
    Kind kind;
    std::string help;
    std::unique_ptr<Counter> counter;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Entry> entries_;
};

}  // namespace ember
