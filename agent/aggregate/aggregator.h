// StackAggregator: counts identical stacks per series and event kind over
// an interval, and sums their values.
//
// A stack is identified by its Location pointers: the symbolize stage interns
// Locations, so equal pointers mean equal frames within an interval (and the
// entries here hold the Locations alive, so a pointer cannot be reused while
// it is a key). Samples also keep their pid and thread name, which become
// pprof sample labels.
//
// Samples whose labels are provisional (LabeledSample.pending: the process's
// pod was not known yet) are kept apart, one group per pending process, and
// given their final labels in take() by `resolve_pending` (the label stage),
// so a pod that shows up before the interval ends labels all of them.
//
// Each series yields one Profile per event kind it saw (CPU samples and
// off-CPU intervals of one process are different profiles: different units),
// among the kinds Options::profiles asks for. A wall-clock profile is made
// here from the other two: every CPU sample (worth its period in ns) and
// every off-CPU interval also counts into the wall profile of its series,
// under the same stack. A sample whose own kind is not asked for and that
// feeds no wall profile still gets its own profile: nothing is dropped
// silently.
//
// Runs on the pipeline thread. Bounded by `max_stacks` distinct stacks per
// interval; samples past that are counted as dropped, not silently merged.
#pragma once

#include <array>
#include <functional>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "agent/model/stages.h"

namespace ember {

class StackAggregator final : public Aggregator {
 public:
  struct Options {
    Options() = default;
    Options(int hz, size_t stacks) : frequency_hz(hz), max_stacks(stacks) {}
    int frequency_hz = 100;
    size_t max_stacks = 1'000'000;
    // Profiles to make, by EventKind: cpu and off_cpu by default.
    std::array<bool, kEventKinds> profiles{true, true, false};
    // Final labels of a pending group at take() time; null result: drop its
    // samples. Unset: the provisional labels are final.
    std::function<LabelSetRef(const PendingLabels&)> resolve_pending;
  };
  StackAggregator(Options opts, Metrics& metrics);

  void add(LabeledSample&& sample) override;
  ProfileBatch take(uint64_t start_time_ns, uint64_t end_time_ns) override;
  uint64_t pending_samples() const override { return pending_; }

 private:
  struct Key {
    uint32_t pid;
    EventKind event;
    std::string comm;
    std::vector<const Location*> frames;
    bool operator==(const Key& o) const {
      return pid == o.pid && event == o.event && frames == o.frames && comm == o.comm;
    }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Entry {
    std::vector<LocationRef> stack;
    uint64_t count = 0;
    uint64_t value = 0;
  };
  using Stacks = std::unordered_map<Key, Entry, KeyHash>;
  struct Series {
    LabelSetRef labels;
    Stacks stacks;
  };
  struct LabelSetHash {
    size_t operator()(const LabelSet* l) const { return l->hash(); }
  };
  struct LabelSetEq {
    bool operator()(const LabelSet* a, const LabelSet* b) const { return *a == *b; }
  };

  struct PendingGroup {
    PendingLabelsRef pending;
    Stacks stacks;
    uint64_t samples = 0;
  };
  // Counts `ls` into its own kind's profile and into the wall one, as asked;
  // false when the stack bound dropped it.
  bool count_into(Stacks& stacks, LabeledSample& ls);
  // Counts `ls` into the entry of `key`, made if new (the stack moved in,
  // or copied when `copy`); the caller checked the bound.
  void add_to(Stacks& stacks, Key&& key, LabeledSample& ls, bool copy);

  Options opts_;
  std::unordered_map<const LabelSet*, Series, LabelSetHash, LabelSetEq> series_;
  std::unordered_map<const PendingLabels*, PendingGroup> pending_groups_;
  size_t stacks_ = 0;
  uint64_t pending_ = 0;
  std::array<Counter*, kEventKinds> aggregated_{};
  Counter& dropped_;
  Counter& late_labeled_;
  Counter& late_unmatched_;
  Counter& late_dropped_;
};

}  // namespace ember
