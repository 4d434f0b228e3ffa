// WaitJoin: holds the off-CPU samples of run-queue waits until their value
// arrives. BPF sends such a sample when a runnable thread is switched out
// (its user stack can only be read then) and the wait's weight in a
// WaitEndEvent when the thread runs again; both come through the one ring,
// the sample first. This pairs them by thread id.
//
// Both carry the wait's start time, so a sample is paired only with its own
// wait's end. Drain thread only. Bounded: at most kMaxHeld samples (a thread
// holds one at a time, and a run-queue wait lasts milliseconds); a sample superseded
// by its thread's next one, pushed out by the bound, or still held at stop
// is lost and counted (ember_samples_lost_total{reason="wait_never_ended"}),
// and an end with no sample (the sample was lost to a full ring, counted
// there) is counted in ember_offcpu_runqueue_ends_unmatched_total.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>

#include "agent/model/types.h"
#include "agent/pipeline/record_decoder.h"
#include "common/metrics.h"

namespace ember {

class WaitJoin {
 public:
  // A thread holds one at a time, and only while it waits runnable: this is
  // many times the threads that can. A sample with a stack copy is up to
  // about 20 KiB, so the bound also caps the memory (about 20 MiB).
  static constexpr size_t kMaxHeld = 1024;
  explicit WaitJoin(Metrics& metrics);

  void hold(RawSample&& sample);
  // The held sample of e.tid with its value set, or nullopt.
  std::optional<RawSample> complete(const WaitEndEvent& e);
  // Drops (and counts) every sample still held.
  void drop_all();
  size_t held() const { return held_.size(); }
  size_t order_entries() const { return order_.size(); }  // for tests: the bookkeeping's size

 private:
  struct Held {
    RawSample sample;
    uint64_t seq = 0;  // which hold() this is: order_ entries of older ones are stale
  };
  std::unordered_map<uint32_t, Held> held_;
  // (tid, seq) in the order held, for the bound; entries whose seq no longer
  // matches are stale, skipped, and compacted away.
  std::deque<std::pair<uint32_t, uint64_t>> order_;
  uint64_t seq_ = 0;
  Counter& lost_;
  Counter& unmatched_;
  Counter& joined_;
};

}  // namespace ember
