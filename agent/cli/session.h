// Session: one running profiler, wired from a Config. Owns every stage of
// the pipeline and the BPF sampler, and builds them in dependency order so
// that `ember record` and `ember agent` share one assembly.
//
// Members are declared in construction order; the sampler is last, so it is
// destroyed (detached, drained) before anything it feeds.
#pragma once

#include <memory>

#include "agent/aggregate/aggregator.h"
#include "agent/config/config.h"
#include "agent/label/labeler.h"
#include "agent/pipeline/metrics.h"
#include "agent/pipeline/pipeline.h"
#include "agent/process/process_table.h"
#include "agent/sampler/bpf_sampler.h"
#include "agent/symbolize/symbolize_stage.h"
#include "agent/unwind/fp_unwinder.h"
#include "common/clock.h"
#include "symbolizer/symbolizer.h"

namespace ember {

struct SessionOptions {
  Config config;
  bool single_series = false;      // one profile for everything (ember record)
  bool filter_targets = false;     // only add_target()ed process trees
  bool collect_bpf_stats = false;  // kernel-measured BPF cost
  Duration interval{0};            // 0: one interval, ended by stop()
};

class Session {
 public:
  static Result<std::unique_ptr<Session>> create(const SessionOptions& opts, Exporter& exporter);
  ~Session();

  void start();
  // Detaches nothing; drains the ring, processes every queued sample and
  // exports the last interval.
  void stop();

  BpfSampler& sampler() { return *sampler_; }
  Pipeline& pipeline() { return *pipeline_; }
  Metrics& metrics() { return metrics_; }
  Symbolizer& symbolizer() { return *symbolizer_; }
  ProcessTable& processes() { return *processes_; }

 private:
  Session() = default;
  Metrics metrics_;
  std::unique_ptr<Symbolizer> symbolizer_;
  std::unique_ptr<ProcessTable> processes_;  // asks symbolizer_ which files it knows
  std::unique_ptr<FramePointerUnwinder> unwinder_;
  std::unique_ptr<DefaultSymbolizeStage> symbolize_;
  std::unique_ptr<ProcessLabeler> labeler_;
  std::unique_ptr<StackAggregator> aggregator_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<BpfSampler> sampler_;
  bool stopped_ = false;
};

}  // namespace ember
