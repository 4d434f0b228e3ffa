// StackAggregator: counts identical stacks per series over an interval.
//
// A stack is identified by its Location pointers: the symbolize stage interns
// Locations, so equal pointers mean equal frames within an interval (and the
// entries here hold the Locations alive, so a pointer cannot be reused while
// it is a key). Samples also keep their pid and thread name, which become
// pprof sample labels.
//
// Runs on the pipeline thread. Bounded by `max_stacks` distinct stacks per
// interval; samples past that are counted as dropped, not silently merged.
#pragma once

#include <unordered_map>
#include <vector>

#include "agent/pipeline/metrics.h"
#include "agent/pipeline/stages.h"

namespace ember {

class StackAggregator final : public Aggregator {
 public:
  struct Options {
    int frequency_hz = 100;
    size_t max_stacks = 1'000'000;
  };
  StackAggregator(Options opts, Metrics& metrics);

  void add(LabeledSample&& sample) override;
  ProfileBatch take(uint64_t start_time_ns, uint64_t end_time_ns) override;
  uint64_t pending_samples() const override { return pending_; }

 private:
  struct Key {
    uint32_t pid;
    std::string comm;
    std::vector<const Location*> frames;
    bool operator==(const Key& o) const {
      return pid == o.pid && frames == o.frames && comm == o.comm;
    }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Entry {
    std::vector<LocationRef> stack;
    uint64_t count = 0;
  };
  struct Series {
    LabelSetRef labels;
    std::unordered_map<Key, Entry, KeyHash> stacks;
  };
  struct LabelSetHash {
    size_t operator()(const LabelSet* l) const { return l->hash(); }
  };
  struct LabelSetEq {
    bool operator()(const LabelSet* a, const LabelSet* b) const { return *a == *b; }
  };

  Options opts_;
  std::unordered_map<const LabelSet*, Series, LabelSetHash, LabelSetEq> series_;
  size_t stacks_ = 0;
  uint64_t pending_ = 0;
  Counter& aggregated_;
  Counter& dropped_;
};

}  // namespace ember
