#include "agent/label/labeler.h"

#include <sys/stat.h>

#include <algorithm>

namespace ember {

// The label stage's token for a process waiting for its pod: what it needs to
// label the process again at the end of the interval, even after it exited.
struct ProcessLabeler::Pending final : PendingLabels {
  ProcessFacts facts;
};

ProcessLabeler::ProcessLabeler(Options opts) : opts_(std::move(opts)) {
  Metrics* m = opts_.metrics;
  if (!m) {
    own_metrics_ = std::make_unique<Metrics>();
    m = own_metrics_.get();
  }
  labeled_ = &m->counter("ember_label_processes_total", "result=\"labeled\"",
                         "Processes (images) the label stage labeled, by verdict");
  dropped_ = &m->counter("ember_label_processes_total", "result=\"dropped\"");
  pending_ = &m->counter("ember_label_processes_total", "result=\"pending_pod\"");
  verdict_tgid_ = &m->counter("ember_label_kernel_verdicts_total", "key=\"tgid\"",
                              "Drop verdicts written to the sampler's maps, by key");
  verdict_cgroup_ = &m->counter("ember_label_kernel_verdicts_total", "key=\"cgroup\"");
  map_full_tgid_ = &m->counter("ember_label_verdict_map_full_total", "map=\"tgid\"",
                               "Drop verdicts that did not fit in the sampler's maps "
                               "(those samples are dropped in user space instead)");
  map_full_cgroup_ = &m->counter("ember_label_verdict_map_full_total", "map=\"cgroup\"");

  analysis_ = RuleAnalysis::of(opts_.relabel_configs);
  if (opts_.single_series) {
    single_ = intern(opts_.static_labels);
    return;
  }
  Evaluation k = evaluate_kernel_threads();
  kernel_ = k.labels;
}

void ProcessLabeler::set_verdict_sink(VerdictSink* sink) {
  sink_ = sink;
  if (sink_ && !single_ && !kernel_) sink_->drop_kernel_threads(true);
}

LabelSetRef ProcessLabeler::intern(Labels labels) const {
  auto it = interned_.find(labels);
  if (it != interned_.end()) return it->second;
  // Bounded: the aggregator compares label sets by value, so forgetting an
  // interned set only costs a duplicate.
  if (interned_.size() >= 65536) interned_.clear();
  auto ref = std::make_shared<const LabelSet>(labels);
  interned_.emplace(std::move(labels), ref);
  return ref;
}

std::string ProcessLabeler::service_name_for(const SampleMeta& meta) {
  if (!meta.process) return "kernel";
  std::string base = exe_base_name(meta.process->exe_path);
  if (!base.empty()) return base;
  if (!meta.process->comm.empty()) return meta.process->comm;
  return meta.comm.empty() ? "unknown" : meta.comm;
}

// Steps 3 and 4: relabel, restore service_name, drop "__" labels.
LabelSetRef ProcessLabeler::finish(Labels labels, const std::string& default_service,
                                   bool* dropped) const {
  *dropped = !relabel(opts_.relabel_configs, labels);
  if (*dropped) return nullptr;
  if (labels.find("service_name") == labels.end()) labels["service_name"] = default_service;
  Labels out;
  for (auto& [k, v] : labels)
    if (k.rfind("__", 0) != 0 && !v.empty()) out.emplace(k, v);
  return intern(std::move(out));
}

ProcessLabeler::Evaluation ProcessLabeler::evaluate(const ProcessFacts& facts) const {
  Evaluation ev;
  PodMatch pod = match_pod(opts_.pods, facts.cgroup);
  ev.pending = pod.wanted && !pod.matched;
  ev.input = discovered_labels(facts, pod, opts_.node_name, opts_.kubernetes);
  ServiceSource source = add_default_labels(ev.input);
  const std::string default_service = ev.input["service_name"];
  // Static labels are the user's: they win over the defaults.
  for (const auto& [k, v] : opts_.static_labels) ev.input[k] = v;
  ev.cgroup_level = analysis_.cgroup_level(process_level_labels(source));
  bool dropped = false;
  ev.labels = finish(ev.input, default_service, &dropped);
  return ev;
}

ProcessLabeler::Evaluation ProcessLabeler::evaluate_kernel_threads() const {
  Evaluation ev;
  if (opts_.kubernetes && !opts_.node_name.empty()) {
    ev.input["__meta_kubernetes_node_name"] = opts_.node_name;
    ev.input["node"] = opts_.node_name;
  }
  ev.input["service_name"] = "kernel";
  for (const auto& [k, v] : opts_.static_labels) ev.input[k] = v;
  bool dropped = false;
  ev.labels = finish(ev.input, "kernel", &dropped);
  return ev;
}

ProcessLabeler::Entry& ProcessLabeler::entry_for(const SymbolizedSample& s) {
  const SampleMeta& meta = s.meta;
  const uint64_t generation = meta.process->generation;
  auto it = entries_.find(meta.pid);
  if (it != entries_.end() && it->second.generation == generation) {
    it->second.last_used = ++use_clock_;
    return it->second;
  }
  if (it != entries_.end()) {
    // A new image without an exec event seen (e.g. one lost to a full ring):
    // its old verdict does not apply.
    forget_verdict(meta.pid, &it->second);
    entries_.erase(it);
  }
  evict_if_needed();
  Entry e;
  e.generation = generation;
  e.first_seen_ns = meta.time_ns;
  e.cgroup_id = meta.cgroup_id;
  e.last_used = ++use_clock_;
  // The snapshot is the image the sample came from (/proc may already show a
  // newer one, or nothing), and when the sample stage read it from /proc it
  // holds everything discovery needs. Other snapshots (built from an exec
  // hint after the process was gone, or by tests) leave the rest to /proc.
  const ProcessSnapshot& snap = *meta.process;
  if (!opts_.proc_root.empty()) {
    e.facts = snap.maps_ok ? ProcessFacts{} : read_process_facts(opts_.proc_root, meta.pid);
    if (!e.facts.found)
      e.facts = process_facts_from(meta.pid, snap.exe_path, snap.comm, snap.cmdline_raw, snap.cgroup_text);
  }
  e.facts.pid = meta.pid;
  if (!snap.exe_path.empty()) e.facts.exe = snap.exe_path;
  if (!snap.comm.empty()) e.facts.comm = snap.comm;
  if (e.facts.comm.empty()) e.facts.comm = meta.comm;
  e.eval = evaluate(e.facts);
  e.wants_pod = e.eval.pending;
  if (opts_.pods) e.pod_generation = opts_.pods->generation();
  if (e.eval.pending) {
    auto p = std::make_shared<Pending>();
    p->pid = meta.pid;
    p->provisional = e.eval.labels;
    p->facts = e.facts;
    e.pending = std::move(p);
    pending_->add();
  } else {
    (e.eval.labels ? labeled_ : dropped_)->add();
  }
  return entries_.emplace(meta.pid, std::move(e)).first->second;
}

// The pod index changed: try to match a process still without its pod.
void ProcessLabeler::reevaluate(Entry& e) {
  e.pod_generation = opts_.pods->generation();
  Evaluation ev = evaluate(e.facts);
  if (ev.pending) return;  // still unknown
  e.eval = std::move(ev);
  e.pending.reset();
  (e.eval.labels ? labeled_ : dropped_)->add();
  // A drop verdict written after the grace period no longer holds.
  if (e.kernel != KernelKey::kNone && e.eval.labels) forget_verdict(e.facts.pid, &e);
}

LabelDecision ProcessLabeler::labels_for(const SymbolizedSample& sample) {
  if (single_) return {single_, nullptr};
  if (!sample.meta.process) return {kernel_, nullptr};
  Entry& e = entry_for(sample);
  if (e.wants_pod && e.eval.pending && opts_.pods && opts_.pods->generation() != e.pod_generation)
    reevaluate(e);
  if (e.eval.pending) {
    uint64_t t = sample.meta.time_ns;
    uint64_t age = t > e.first_seen_ns ? t - e.first_seen_ns : 0;  // CPUs interleave on the ring
    if (age < opts_.late_pod_grace_ns && e.pending)
      return {e.eval.labels, e.pending};
    // Waited long enough: the provisional labels are final (the index is
    // still asked again whenever it changes, see end_interval()).
    if (e.pending) {
      e.pending.reset();
      (e.eval.labels ? labeled_ : dropped_)->add();
    }
  }
  if (!e.eval.labels) {
    if (e.kernel == KernelKey::kNone) write_verdict(e);
    return {};
  }
  return {e.eval.labels, nullptr};
}

bool ProcessLabeler::cgroup_matches(uint64_t id, const std::string& path) const {
  if (opts_.cgroup_id_matches) return opts_.cgroup_id_matches(id, path);
  // The v2 cgroup id is the inode of its directory in cgroupfs.
  for (const char* mount : {"/fs/cgroup", "/fs/cgroup/unified"}) {
    struct stat st {};
    if (::stat((opts_.sys_root + mount + path).c_str(), &st) == 0 && uint64_t(st.st_ino) == id)
      return true;
  }
  return false;
}

void ProcessLabeler::write_verdict(Entry& e) {
  if (!sink_ || !analysis_.can_drop) return;
  const std::string& v2 = e.facts.cgroup_v2_path;
  // Never the root cgroup: it holds kernel threads and everything of hosts
  // without cgroup v2 delegation. The path must be the one the identity
  // came from, and the sample's cgroup id must be that directory.
  bool by_cgroup = e.eval.cgroup_level && e.cgroup_id != 0 && !v2.empty() && v2 != "/" &&
                   v2 == e.facts.cgroup.path && cgroup_matches(e.cgroup_id, v2);
  if (by_cgroup) {
    if (kernel_cgroup_pos_.count(e.cgroup_id)) {
      e.kernel = KernelKey::kCgroup;
      return;
    }
    VerdictSink::Put r = sink_->drop_cgroup(e.cgroup_id);
    if (r == VerdictSink::Put::kFull && !kernel_cgroups_.empty()) {
      // Cgroups have no exit event to clean up on: make room by forgetting
      // the oldest verdict (its processes reach user space and are dropped
      // there, then written again).
      map_full_cgroup_->add();
      uint64_t oldest = kernel_cgroups_.front();
      sink_->forget_cgroup(oldest);
      kernel_cgroup_pos_.erase(oldest);
      kernel_cgroups_.pop_front();
      r = sink_->drop_cgroup(e.cgroup_id);
    }
    if (r == VerdictSink::Put::kOk) {
      kernel_cgroups_.push_back(e.cgroup_id);
      kernel_cgroup_pos_[e.cgroup_id] = std::prev(kernel_cgroups_.end());
      while (kernel_cgroups_.size() > opts_.max_cgroup_verdicts) {
        sink_->forget_cgroup(kernel_cgroups_.front());
        kernel_cgroup_pos_.erase(kernel_cgroups_.front());
        kernel_cgroups_.pop_front();
      }
      verdict_cgroup_->add();
      e.kernel = KernelKey::kCgroup;
      return;
    }
    if (r == VerdictSink::Put::kFull) map_full_cgroup_->add();
    // Fall back to the process itself.
  }
  VerdictSink::Put r = sink_->drop_tgid(e.facts.pid);
  if (r == VerdictSink::Put::kOk) {
    kernel_tgids_.insert(e.facts.pid);
    verdict_tgid_->add();
    e.kernel = KernelKey::kTgid;
  } else if (r == VerdictSink::Put::kFull) {
    map_full_tgid_->add();
  }
}

void ProcessLabeler::forget_verdict(uint32_t pid, Entry* e) {
  if (kernel_tgids_.erase(pid) && sink_) sink_->forget_tgid(pid);
  if (e && e->kernel == KernelKey::kCgroup && sink_) {
    auto it = kernel_cgroup_pos_.find(e->cgroup_id);
    if (it != kernel_cgroup_pos_.end()) {
      sink_->forget_cgroup(e->cgroup_id);
      kernel_cgroups_.erase(it->second);
      kernel_cgroup_pos_.erase(it);
    }
  }
  if (e) e->kernel = KernelKey::kNone;
}

void ProcessLabeler::process_exec(uint32_t pid) {
  auto it = entries_.find(pid);
  if (it == entries_.end()) {
    forget_verdict(pid, nullptr);
    return;
  }
  // Only the tgid verdict: a cgroup verdict is about the cgroup, which the
  // new image is still in.
  if (it->second.kernel == KernelKey::kCgroup) it->second.kernel = KernelKey::kNone;
  forget_verdict(pid, &it->second);
  entries_.erase(it);
}

void ProcessLabeler::process_exit(uint32_t pid) { process_exec(pid); }

LabelSetRef ProcessLabeler::resolve_pending(const PendingLabels& pending) {
  const auto* p = dynamic_cast<const Pending*>(&pending);
  if (!p || !opts_.pods) return pending.provisional;
  Evaluation ev = evaluate(p->facts);
  if (ev.pending) return pending.provisional;
  // Labeled now; later samples find the pod through labels_for() too.
  return ev.labels;
}

void ProcessLabeler::end_interval() {
  if (!opts_.pods || single_) return;
  uint64_t gen = opts_.pods->generation();
  if (gen == revisit_generation_) return;
  revisit_generation_ = gen;
  // Processes whose grace period ended unmatched and were dropped in the
  // kernel send no samples that could notice the pod: look again here.
  for (auto& [pid, e] : entries_)
    if (e.wants_pod && e.eval.pending && !e.pending && e.pod_generation != gen) reevaluate(e);
}

void ProcessLabeler::evict_if_needed() {
  if (entries_.size() < std::max<size_t>(opts_.max_processes, 16)) return;
  // Drop the least recently used eighth at once, so this runs rarely.
  std::vector<std::pair<uint64_t, uint32_t>> by_use;
  by_use.reserve(entries_.size());
  for (const auto& [pid, e] : entries_) by_use.emplace_back(e.last_used, pid);
  size_t n = std::max<size_t>(by_use.size() / 8, 1);
  std::nth_element(by_use.begin(), by_use.begin() + long(n - 1), by_use.end());
  for (size_t i = 0; i < n; ++i) {
    // Tgid verdicts stay (exit forgets them through kernel_tgids_); a
    // process that comes back is simply labeled again.
    entries_.erase(by_use[i].second);
  }
}

}  // namespace ember
