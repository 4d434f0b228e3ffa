// The seams of the pipeline. Each stage is an interface so that everything
// after the BPF ring buffer runs in unit tests with fakes on either side.
//
//   RawSample --Unwinder--> UnwoundSample --SymbolizeStage--> SymbolizedSample
//   --Labeler--> LabeledSample --Aggregator--> ProfileBatch --Exporter--> out
//
// All stages but the Exporter run on the pipeline thread; the Exporter gets
// whole batches and may hand them to its own thread.
#pragma once

#include "agent/model/types.h"

namespace ember {

class Unwinder {
 public:
  virtual ~Unwinder() = default;
  virtual UnwoundSample unwind(RawSample&& sample) = 0;
  // Called after each aggregation interval: per-interval caches may go.
  virtual void end_interval() {}
};

class SymbolizeStage {
 public:
  virtual ~SymbolizeStage() = default;
  virtual SymbolizedSample symbolize(UnwoundSample&& sample) = 0;
  // Called after each aggregation interval: per-interval caches may go.
  virtual void end_interval() {}
};

// What the label stage decided for a sample.
struct LabelDecision {
  LabelSetRef labels;        // the series; null (and no `pending`): do not profile
  PendingLabelsRef pending;  // set: `labels` are provisional, decided at aggregation
};

class Labeler {
 public:
  virtual ~Labeler() = default;
  virtual LabelDecision labels_for(const SymbolizedSample& sample) = 0;
  // At the end of an interval, the final labels of a process labels_for()
  // marked pending (null: do not profile). Called by the aggregator's take().
  virtual LabelSetRef resolve_pending(const PendingLabels& pending) { return pending.provisional; }
  // Process lifecycle in ring order: every sample taken before the event has
  // been through labels_for() already, none after it has.
  virtual void process_exec(uint32_t pid) {}
  virtual void process_exit(uint32_t pid) {}
  // Called after each aggregation interval.
  virtual void end_interval() {}
};

class Aggregator {
 public:
  virtual ~Aggregator() = default;
  virtual void add(LabeledSample&& sample) = 0;
  // Hands over everything since the last take, as one profile per series.
  virtual ProfileBatch take(uint64_t start_time_ns, uint64_t end_time_ns) = 0;
  virtual uint64_t pending_samples() const = 0;
};

class Exporter {
 public:
  virtual ~Exporter() = default;
  virtual void export_batch(ProfileBatch&& batch) = 0;
  // Finishes pending work (e.g. writes out the last batch) before shutdown.
  virtual void flush() {}
};

}  // namespace ember
