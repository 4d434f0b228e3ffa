// Pipeline: runs every stage behind the BPF ring buffer.
//
// Two threads meet here:
//  - the drain thread (owned by the sampler) calls on_record() for each ring
//    record: it decodes it, applies exec/exit events to the ProcessTable and
//    attaches the process snapshot to each sample *in ring order*, then
//    keeps the sample in its own batch (a run-queue wait's sample first
//    waits for its value, in WaitJoin). This part must be quick: it decides
//    whether a short-lived process can still be symbolized. After each drain
//    of the ring it calls on_drained(), which hands the batch over under one
//    lock with at most one wakeup (a handoff per sample, a lock and a futex
//    wake each, was a third of the agent's CPU: bench/overhead/agent_cost.sh).
//  - the pipeline thread (owned here) takes queued samples through unwind,
//    symbolize, label and aggregate, and every `interval` hands the
//    aggregated profiles to the exporter.
//
// The queue between them is bounded; overflow is counted as a lost sample.
// Exec and exit events also go through it (never dropped: they are tiny and
// one per process), so the label stage sees them in ring order relative to
// samples.
#pragma once

#include <condition_variable>
#include <vector>
#include <mutex>
#include <thread>

#include "common/metrics.h"
#include "agent/model/stages.h"
#include "agent/pipeline/wait_join.h"
#include "agent/process/process_table.h"
#include "common/clock.h"
#include "common/duration.h"

namespace ember {

class Pipeline {
 public:
  struct Stages {
    Unwinder& unwinder;
    SymbolizeStage& symbolizer;
    Labeler& labeler;
    Aggregator& aggregator;
    Exporter& exporter;
  };
  struct Options {
    // Aggregation interval; zero means one interval that ends at stop().
    Duration interval = std::chrono::seconds(10);
    size_t max_queued_samples = 1 << 17;
    // The pipeline thread takes a batch at most this often (or when half the
    // queue waits) instead of waking for every ring wakeup: a storm of short-lived processes wakes the drain thread
    // for each exec, and a wakeup per handoff was most of the agent's CPU
    // there (bench/exec_storm). Zero: hand over at once.
    Duration batch_delay = std::chrono::milliseconds(10);
  };
  static constexpr size_t kBatchWake = 4096;

  // `processes` may be null in tests that attach snapshots themselves.
  Pipeline(Options opts, Stages stages, ProcessTable* processes, const Clock& clock,
           Metrics& metrics);
  ~Pipeline();

  // Drain thread (or, in tests, the one thread that feeds the pipeline).
  void on_record(const void* data, size_t size);
  void on_sample(RawSample&& sample);  // after decoding
  // The end of one drain: queues what on_record gathered since the last one.
  void on_drained();

  // Control (any one thread).
  void start();
  // Processes everything queued, exports the last interval, joins the thread.
  // Call it after the drain thread has stopped: it hands over that thread's
  // last batch.
  void stop();

  // Synchronous path for tests: runs one sample through every stage.
  void process(RawSample&& sample);
  // Ends the current interval now: aggregate -> exporter.
  void flush_interval() { flush_interval_at(clock_.realtime_ns()); }

  uint64_t samples_processed() const { return processed_.value(); }

 private:
  // One entry of the queue: a sample, or a process lifecycle marker.
  struct Item {
    enum class Kind : uint8_t { kSample, kExec, kExit } kind = Kind::kSample;
    uint32_t pid = 0;  // kExec, kExit
    RawSample sample;  // kSample
  };
  void run();
  void enqueue_event(Item::Kind kind, uint32_t pid);
  void enqueue_sample(RawSample&& s);  // into the drain thread's batch
  void handle(Item&& item);

  Options opts_;
  Stages stages_;
  ProcessTable* processes_;
  const Clock& clock_;
  Counter& received_;
  Counter& processed_;
  Counter& queue_full_;
  Counter& malformed_;
  Counter& filtered_;

  // Run-queue samples waiting for their value (drain thread only).
  WaitJoin waits_;

  // The drain thread's batch, handed over by on_drained() (drain thread only).
  std::vector<Item> pending_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> queue_;
  bool idle_ = false;  // the thread waits for an empty queue to fill (mu_)
  bool stopping_ = false;
  // Ends the current interval at `end_ns` (wall clock).
  void flush_interval_at(uint64_t end_ns);

  uint64_t interval_start_ns_ = 0;  // wall clock
  std::thread thread_;
};

}  // namespace ember
