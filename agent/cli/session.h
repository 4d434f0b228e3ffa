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
#include "common/metrics.h"
#include "agent/pipeline/pipeline.h"
#include "agent/process/process_table.h"
#include "agent/sampler/bpf_sampler.h"
#include "agent/symbolize/symbolize_stage.h"
#include "agent/unwind/bpf_tables.h"
#include "agent/unwind/stack_unwinder.h"
#include "agent/unwind/table_cache.h"
#include "common/clock.h"
#include "k8s/pod_index.h"
#include "symbolizer/symbolizer.h"

namespace ember {

// Not included: labeler.h's relabel Labels would clash with the Pyroscope
// exporter's in files that include both (agent_cmd.cc).
class ProcessLabeler;

struct SessionOptions {
  Config config;
  bool single_series = false;      // one profile for everything (ember record)
  bool filter_targets = false;     // only add_target()ed process trees
  bool collect_bpf_stats = false;  // kernel-measured BPF cost
  Duration interval{0};            // 0: one interval, ended by stop()
  uint64_t unwind_cache_bytes = uint64_t(256) << 20;  // user-space copies of tables
  // Load the tables of every running process at start, so whole-system
  // profiles unwind in the kernel from the first seconds on.
  bool preload_processes = false;
  // Pod metadata for labels (owned by the caller, outlives the session);
  // null: none. Ignored with single_series.
  const PodIndex* pods = nullptr;
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
  ProcessLabeler& labeler() { return *labeler_; }
  Metrics& metrics() { return metrics_; }
  // Copies the symbolizer's and unwind-table cache's own counters into
  // metrics() (they are read, not counted as they happen).
  void publish_cache_stats();
  Symbolizer& symbolizer() { return *symbolizer_; }
  ProcessTable& processes() { return *processes_; }
  // Null when unwinding by frame pointers only.
  unwind::BpfUnwindTables* unwind_tables() { return unwind_tables_.get(); }
  unwind::UnwindTableCache& unwind_cache() { return *unwind_cache_; }

 private:
  Session() = default;
  Metrics metrics_;
  std::unique_ptr<Symbolizer> symbolizer_;
  std::unique_ptr<unwind::UnwindTableCache> unwind_cache_;
  // Set once the sampler proves the table-driven unwinder runs; read by the
  // process table's callbacks (drain and pipeline threads), written before
  // start().
  unwind::BpfUnwindTables* tables_hook_ = nullptr;
  std::unique_ptr<ProcessTable> processes_;  // asks symbolizer_ which files it knows
  // Handlers of every frame origin; the unwind and symbolize stages use them.
  std::unique_ptr<FrameOrigins> origins_;
  std::unique_ptr<StackUnwinder> unwinder_;
  std::unique_ptr<DefaultSymbolizeStage> symbolize_;
  std::unique_ptr<ProcessLabeler> labeler_;
  std::unique_ptr<StackAggregator> aggregator_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<BpfSampler> sampler_;
  std::unique_ptr<unwind::BpfUnwindTables> unwind_tables_;  // uses sampler_'s maps: after it
  std::string proc_root_;
  bool preload_ = false;
  bool stopped_ = false;
};

}  // namespace ember
