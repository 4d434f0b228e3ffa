// ProcessLabeler: the label stage. Gives each sample the labels of the series
// it belongs to, and decides which processes are profiled at all.
//
// For each process (once per process image, cached):
//   1. discover: __meta_process_* from /proc (under Options.proc_root), the
//      cgroup's systemd unit and container, and the Kubernetes pod from the
//      PodIndex (agent/label/discovery.h);
//   2. defaults: service_name, namespace, pod, container, node, computed from
//      the discovered labels, then the static `labels:` on top (a user-set
//      label wins over a default);
//   3. relabel_configs over all of that (so rules can read and overwrite the
//      defaults, as in Grafana Alloy's pyroscope.ebpf); a keep/drop verdict of
//      "drop" stops profiling the process;
//   4. every label starting with "__" is removed. If the rules removed
//      service_name, the default comes back (Pyroscope needs one).
//
// Kernel threads form one series, {service_name="kernel"} plus node and the
// static labels; the rules are applied to that set once (so a rule can drop
// all kernel threads, e.g. on service_name="kernel"), with no __meta_process_*
// labels since it stands for many threads.
//
// Late pods: a process whose cgroup names a container or pod the index does
// not know yet gets provisional labels and a PendingLabels token for up to
// `late_pod_grace_ns`; the aggregator holds those samples apart and calls
// resolve_pending() at the end of the interval, so a pod that appears by then
// labels them all. Pending processes never get a kernel verdict (it could
// still change).
//
// Kernel verdicts: a dropped process is written to the VerdictSink (the BPF
// drop maps) by cgroup id when RuleAnalysis proves the verdict depends only on
// cgroup-level labels and the sample's cgroup id is verified to be that
// cgroup, else by tgid. Exec and exit (in ring order) forget the process and
// its tgid verdict.
//
// `ember record` uses a single series for everything it recorded.
//
// Threading: everything runs on the pipeline thread (labels_for, the
// lifecycle calls, resolve_pending from the aggregator's take()), except
// set_verdict_sink(), which is called once before the pipeline starts.
// Bound: at most `max_processes` cached processes (least recently used go).
#pragma once

#include <functional>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "agent/label/discovery.h"
#include "agent/label/relabel.h"
#include "agent/label/verdict.h"
#include "common/metrics.h"
#include "agent/model/stages.h"
#include "k8s/pod_index.h"

namespace ember {

class ProcessLabeler final : public Labeler {
 public:
  struct Options {
    Options() = default;
    Options(bool single, Labels labels)
        : single_series(single), static_labels(std::move(labels)) {}
    // When set, every sample goes to one series with these labels.
    bool single_series = false;
    // Added to every series (the YAML `labels:` map).
    Labels static_labels;
    // Where /proc is (Config.paths.proc). Empty: read nothing, label from the
    // sample's process snapshot alone (executable and comm).
    std::string proc_root;
    // Where /sys is, to verify cgroup ids (cgroup v2 at fs/cgroup or
    // fs/cgroup/unified).
    std::string sys_root = "/sys";
    std::vector<RelabelRule> relabel_configs;
    bool kubernetes = false;  // pod metadata wanted (Config: kubernetes_enabled)
    std::string node_name;
    const PodIndex* pods = nullptr;  // null: no pod labels (yet)
    size_t max_processes = 65536;
    // How long (sample clock) a process may wait for its pod before its
    // provisional labels become final.
    uint64_t late_pod_grace_ns = 120'000'000'000ull;
    // Cgroup verdicts kept in the kernel at once (the map's size).
    size_t max_cgroup_verdicts = 4096;
    // Whether `cgroup_id` is the cgroup v2 directory `path` (default: its
    // inode under sys_root). Tests replace it.
    std::function<bool(uint64_t cgroup_id, const std::string& path)> cgroup_id_matches;
    Metrics* metrics = nullptr;  // null: counted privately
  };
  explicit ProcessLabeler(Options opts);

  LabelDecision labels_for(const SymbolizedSample& sample) override;
  LabelSetRef resolve_pending(const PendingLabels& pending) override;
  void process_exec(uint32_t pid) override;
  void process_exit(uint32_t pid) override;
  void end_interval() override;

  // Before the pipeline starts: where drop verdicts go (null: nowhere).
  void set_verdict_sink(VerdictSink* sink);
  // Late binding of the pod index (the agent creates it after the session).
  // Before the pipeline starts.
  void set_pod_index(const PodIndex* pods) { opts_.pods = pods; }

  // Everything decided about one process, for `ember targets` and tests.
  struct Evaluation {
    Labels input;        // discovered + default + static labels, before relabeling
    LabelSetRef labels;  // final; null when relabeling dropped the process
    bool pending = false;  // its pod is not known yet (labels provisional)
    bool cgroup_level = false;  // the verdict holds for its whole cgroup
  };
  Evaluation evaluate(const ProcessFacts& facts) const;
  Evaluation evaluate_kernel_threads() const;
  // Whether relabel_configs can drop anything (then verdicts go to the kernel).
  bool can_drop() const { return analysis_.can_drop; }

  // The group name of a process, as used for service_name without discovery.
  static std::string service_name_for(const SampleMeta& meta);

 private:
  enum class KernelKey { kNone, kTgid, kCgroup };
  struct Pending;
  struct Entry {
    uint64_t generation = 0;  // of the snapshot it was built from
    ProcessFacts facts;
    Evaluation eval;
    bool wants_pod = false;
    uint64_t pod_generation = 0;  // the index's, when matching was last tried
    uint64_t first_seen_ns = 0;   // sample clock
    std::shared_ptr<Pending> pending;
    KernelKey kernel = KernelKey::kNone;
    uint64_t cgroup_id = 0;
    uint64_t last_used = 0;
  };

  LabelSetRef intern(Labels labels) const;
  LabelSetRef finish(Labels labels, const std::string& default_service, bool* dropped) const;
  Entry& entry_for(const SymbolizedSample& s);
  void reevaluate(Entry& e);
  void write_verdict(Entry& e);
  void forget_verdict(uint32_t pid, Entry* e);
  void evict_if_needed();
  bool cgroup_matches(uint64_t id, const std::string& path) const;

  Options opts_;
  RuleAnalysis analysis_;
  VerdictSink* sink_ = nullptr;
  LabelSetRef single_;
  LabelSetRef kernel_;  // null: relabeling dropped kernel threads
  std::unordered_map<uint32_t, Entry> entries_;
  uint64_t use_clock_ = 0;
  uint64_t revisit_generation_ = 0;
  std::unordered_set<uint32_t> kernel_tgids_;  // tgids with a verdict in the kernel
  std::list<uint64_t> kernel_cgroups_;         // cgroup verdicts, oldest first
  std::unordered_map<uint64_t, std::list<uint64_t>::iterator> kernel_cgroup_pos_;
  // Interned final label sets: processes of one service share one.
  mutable std::map<Labels, LabelSetRef> interned_;

  std::unique_ptr<Metrics> own_metrics_;
  Counter* labeled_;
  Counter* dropped_;
  Counter* pending_;
  Counter* verdict_tgid_;
  Counter* verdict_cgroup_;
  Counter* map_full_tgid_;
  Counter* map_full_cgroup_;
};

}  // namespace ember
