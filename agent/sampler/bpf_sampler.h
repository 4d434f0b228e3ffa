// BpfSampler: the sample stage's kernel half. It loads profile.bpf.c, opens
// one CPU-clock perf event per online CPU, attaches the program to each, and
// drains the ring buffer on its own thread, handing every record (in ring
// order) to a callback.
//
// Ownership: the skeleton, every bpf_link (each owns its perf event fd) and
// the ring buffer are held by RAII members; create() returns a sampler only
// once all of them exist, so a failure never leaves anything attached.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/config/config.h"  // UnwinderMode
#include "agent/label/verdict.h"
#include "common/metrics.h"
#include "agent/sampler/kernel_features.h"
#include "agent/unwind/bpf_tables.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "ember_abi.h"

struct profile_bpf;
struct bpf_link;
struct ring_buffer;

namespace ember {

struct SamplerOptions {
  // Samples per second per CPU of the CPU-clock timer; its period is also
  // the off-CPU sampling period (see offcpu_period_ns in profile.bpf.c).
  int frequency_hz = 100;
  // What to measure. cpu: timer samples of running threads. off_cpu: how
  // long threads waited switched out (the sched_switch and sys_exit
  // tracepoints). A wall-clock profile is both, added up after the ring.
  bool cpu = true;
  bool off_cpu = false;
  // Threads that can be switched out at once with their switch-out time
  // kept (off-CPU only); past it an interval is lost and counted.
  uint32_t max_waiting_threads = 65536;
  // Waits left out in BPF (counted): shorter than the minimum, longer than
  // the maximum. 0: no bound.
  uint64_t off_cpu_min_wait_ns = 0;
  uint64_t off_cpu_max_wait_ns = 0;

  uint64_t ring_buffer_bytes = 0;  // rounded up to a power of two; 0: auto_ring_buffer_bytes()
  uint32_t max_targets = 16384;
  uint32_t max_processes = 65536;  // sizes the "seen process" map
  bool filter_targets = false;  // only the tgids added with add_target (and their children)
  bool include_idle = false;
  bool kernel_stacks = true;
  bool user_stacks = true;
  std::string sysfs_root = "/sys";
  bool collect_bpf_stats = false;  // enable kernel run-time stats for our programs
  // How often the drain thread empties the ring when nothing wakes it
  // earlier (exec events, a new process's first samples and a quarter-full
  // ring do). Each drain costs a wakeup of this thread and one of the
  // pipeline's, 20-50 us of CPU each on a small VM, which at 100 Hz on 2
  // CPUs was most of the agent's cost (bench/overhead/agent_cost.sh).
  Duration drain_period = std::chrono::milliseconds(250);
  UnwinderMode unwinder = UnwinderMode::kAuto;
  uint64_t unwind_table_bytes = uint64_t(32) << 20;  // row pages, preallocated
  uint32_t unwind_mapping_entries = 65536;            // process mappings, all processes
  uint32_t stack_copy_bytes = 16384;                  // handed to user space when BPF cannot finish
  // Relabel verdicts: when set, the sampler skips processes the label stage
  // dropped (drop_tgids / drop_cgroups maps, sized here). Off for `ember
  // record` and for configs whose relabel_configs cannot drop anything.
  bool check_verdicts = false;
  uint32_t verdict_tgid_entries = 16384;
  uint32_t verdict_cgroup_entries = 4096;
  // Kernel features not to use even where the kernel has them
  // (sampler.disable_kernel_features): tests of older kernels' fallbacks on
  // a newer one, or a way around a kernel bug.
  std::vector<std::string> disabled_features;
};

// What `ember kernel-check` reports for one kernel.
struct LoadCheck {
  KernelFeatures features;    // of that kernel, after disabled_features
  std::vector<std::string> programs;  // loaded (verified), by name
};

// The ring size that holds a second of 4 KiB samples from every CPU (the
// drain thread polls every 250 ms, and BPF wakes it when the ring is a
// quarter full), as a power of two >= 2 MiB.
uint64_t auto_ring_buffer_bytes(size_t cpus, int frequency_hz);

// Online CPUs from <sysfs_root>/devices/system/cpu/online ("0-3,5").
Result<std::vector<int>> online_cpus(const std::string& sysfs_root);
Result<std::vector<int>> parse_cpu_list(const std::string& text);

class BpfSampler {
 public:
  using RecordFn = std::function<void(const void* data, size_t size)>;
  // Called on the drain thread after each drain of the ring (after the
  // records it read), so the receiver can hand them on as one batch.
  using DrainedFn = std::function<void()>;

  static Result<std::unique_ptr<BpfSampler>> create(const SamplerOptions& opts, RecordFn on_record,
                                                    DrainedFn on_drained, Metrics& metrics);

  // Loads every program the sampler could use on a kernel, without
  // attaching anything, and unloads them again. With `btf_path`, the CO-RE
  // relocations and feature choices are those of the kernel that BTF file
  // describes (the programs are still verified by the running kernel);
  // otherwise those of the running kernel. The error explains a failure
  // (explain_load_failure).
  static Result<LoadCheck> check_load(const SamplerOptions& opts, const std::string& btf_path);
  ~BpfSampler();
  BpfSampler(const BpfSampler&) = delete;
  BpfSampler& operator=(const BpfSampler&) = delete;

  // Adds a process to the target set (only with filter_targets).
  Status add_target(uint32_t tgid);

  // Starts the drain thread; stop() drains what is left and joins it.
  void start();
  void stop();

  // Sums the per-CPU counters and publishes them to Metrics.
  std::array<uint64_t, EMBER_CTR_MAX> read_counters();

  struct ProgStats {
    uint64_t run_time_ns = 0;
    uint64_t run_count = 0;
  };
  // Kernel-measured cost of the sampling program (needs collect_bpf_stats).
  ProgStats sample_prog_stats() const;
  size_t cpu_count() const { return cpus_; }

  // True when the table-driven unwinder is running; then unwind_maps() are
  // the BPF maps BpfUnwindTables fills.
  bool uses_tables() const { return uses_tables_; }
  // The kernel features in use (probed, minus disabled_features).
  const KernelFeatures& features() const { return features_; }
  const unwind::UnwindMapFds& unwind_maps() const { return unwind_maps_; }
  // Kernel memory of the unwind maps (all preallocated at load).
  uint64_t unwind_map_bytes() const { return unwind_map_bytes_; }

  // The verdict maps, as the label stage's sink; null unless check_verdicts.
  // Lives as long as the sampler.
  VerdictSink* verdicts() { return verdicts_.get(); }

 private:
  struct SkelDeleter {
    void operator()(profile_bpf* s) const;
  };
  struct LinkDeleter {
    void operator()(bpf_link* l) const;
  };
  struct RingDeleter {
    void operator()(ring_buffer* r) const;
  };
  using SkelPtr = std::unique_ptr<profile_bpf, SkelDeleter>;
  // What to load, decided from the options and the kernel's features.
  struct LoadPlan {
    KernelFeatures features;
    bool tables = false;       // the table-driven sampler (else frame pointers)
    bool check_only = false;   // kernel-check: every usable program, smallest maps
    uint64_t ring_bytes = 0;
    std::string btf_path;      // relocate against this BTF instead of the kernel's
    std::string kernel;        // for messages: the release, or the BTF's path
  };
  // Opens the object, sets knobs and map sizes, loads it; a failure is
  // explained (load_diagnosis.h).
  static Result<SkelPtr> load_skeleton(const SamplerOptions& opts, const LoadPlan& plan);

  BpfSampler(RecordFn on_record, DrainedFn on_drained, Metrics& metrics);
  void drain_loop();
  static int on_ring_record(void* ctx, void* data, size_t size);

  RecordFn on_record_;
  DrainedFn on_drained_;
  int drain_poll_ms_ = 250;
  Metrics& metrics_;
  SkelPtr skel_;
  std::vector<std::unique_ptr<bpf_link, LinkDeleter>> links_;  // perf events + tracepoints
  std::unique_ptr<ring_buffer, RingDeleter> ring_;
  unwind::UnwindMapFds unwind_maps_;
  bool uses_tables_ = false;
  KernelFeatures features_;
  uint64_t unwind_map_bytes_ = 0;
  size_t cpus_ = 0;     // CPUs with an attached perf event (0 when off-CPU only)
  UniqueFd stats_fd_;  // keeps kernel BPF run-time stats on while held
  std::atomic<bool> stop_{false};
  std::thread drain_thread_;
  std::array<Counter*, EMBER_CTR_MAX> counters_{};
  std::unique_ptr<VerdictSink> verdicts_;
};

}  // namespace ember
