#include "agent/pipeline/wait_join.h"

#include "common/drops.h"
#include "ember_abi.h"

namespace ember {

WaitJoin::WaitJoin(Metrics& metrics)
    : lost_(drop_counter(metrics, Drop::kSampleWaitNeverEnded)),
      unmatched_(metrics.counter("ember_offcpu_runqueue_ends_unmatched_total", "",
                                 "Run-queue wait ends whose sample never arrived (lost to a full ring)")),
      joined_(metrics.counter("ember_offcpu_runqueue_samples_total", "",
                              "Run-queue wait samples given their value")) {}

void WaitJoin::hold(RawSample&& sample) {
  const uint32_t tid = sample.meta.tid;
  auto [it, inserted] = held_.try_emplace(tid);
  if (!inserted) lost_.add();  // its end was lost: a thread waits once at a time
  it->second.sample = std::move(sample);
  it->second.seq = ++seq_;
  order_.emplace_back(tid, seq_);
  auto live = [this](const std::pair<uint32_t, uint64_t>& o) {
    auto h = held_.find(o.first);
    return h != held_.end() && h->second.seq == o.second;
  };
  // The bound: the oldest held go first.
  while (held_.size() > kMaxHeld && !order_.empty()) {
    auto old = order_.front();
    order_.pop_front();
    if (live(old)) {
      held_.erase(old.first);
      lost_.add();
    }
  }
  // Completed holds leave stale entries behind: keep order_ within a few
  // times the bound.
  if (order_.size() > 4 * kMaxHeld) {
    std::deque<std::pair<uint32_t, uint64_t>> kept;
    for (const auto& o : order_)
      if (live(o)) kept.push_back(o);
    order_.swap(kept);
  }
}

std::optional<RawSample> WaitJoin::complete(const WaitEndEvent& e) {
  auto it = held_.find(e.tid);
  if (it == held_.end()) {
    unmatched_.add();
    return std::nullopt;
  }
  if (it->second.sample.meta.time_ns != e.start_ns) {
    // Another wait of the thread: this end's sample, and the held one's end,
    // were lost (a full ring loses both kinds).
    unmatched_.add();
    if (it->second.sample.meta.time_ns < e.start_ns) {
      lost_.add();
      held_.erase(it);
    }
    return std::nullopt;
  }
  RawSample s = std::move(it->second.sample);
  held_.erase(it);
  s.meta.value = e.value;
  s.flags &= ~uint32_t(EMBER_SAMPLE_F_VALUE_FOLLOWS);
  joined_.add();
  return s;
}

void WaitJoin::drop_all() {
  lost_.add(held_.size());
  held_.clear();
  order_.clear();
}

}  // namespace ember
