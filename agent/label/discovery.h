// Target discovery for the label stage: what Ember knows about a process, as
// Prometheus-style __meta_* labels, and the default labels derived from them.
//
//   read_process_facts()  /proc/PID/{comm,cmdline,exe,cgroup} under an injected
//                         proc root (Config.paths.proc; tests use a temp dir)
//   match_pod()           the process's Kubernetes container/pod, from PodIndex
//   discovered_labels()   __meta_process_*, __meta_systemd_unit,
//                         __meta_container_*, __meta_kubernetes_*
//   add_default_labels()  service_name, namespace, pod, container, node
//   RuleAnalysis          which labels the keep/drop verdict of a rule list can
//                         depend on, to decide whether a verdict holds for a
//                         whole cgroup (filter by cgroup id) or only for one
//                         process (filter by tgid)
//
// Everything here is a pure function of its inputs apart from
// read_process_facts(), and is shared by the label stage and `ember targets`.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "agent/label/relabel.h"
#include "k8s/cgroup.h"
#include "k8s/pod_index.h"

namespace ember {

// What /proc says about one process.
struct ProcessFacts {
  uint32_t pid = 0;
  std::string exe;      // readlink of exe, "" if unknown
  std::string comm;
  std::string cmdline;  // arguments joined by single spaces
  CgroupInfo cgroup;
  std::string cgroup_v2_path;  // the "0::" line's path, "" on v1-only hosts
  bool kernel_thread = false;  // PF_KTHREAD in stat (or no exe and no cmdline)
  bool found = false;          // false when the process directory was missing
};

// Reads <proc_root>/<pid>/{comm,cmdline,exe,cgroup,stat}. Missing files leave
// their fields empty; never fails.
ProcessFacts read_process_facts(const std::string& proc_root, uint32_t pid);

// The same facts from text already read: `cmdline_raw` NUL-separated as in
// /proc/PID/cmdline, `cgroup_text` as in /proc/PID/cgroup. The sample stage
// reads these with a process's maps (ProcessSnapshot), so the label stage
// reads nothing again, and a process that exited before it was labeled still
// has its cgroup, container and pod.
ProcessFacts process_facts_from(uint32_t pid, std::string exe, std::string comm,
                                const std::string& cmdline_raw, const std::string& cgroup_text);

// The pod (and container) a process belongs to, if the index knows it.
struct PodMatch {
  bool wanted = false;   // the cgroup names a container or pod to look for
  bool matched = false;  // found in the index
  std::shared_ptr<const PodInfo> pod;
  std::string container_name;
  std::string image;
};
// By container id first, then by pod UID. `pods` may be null (no Kubernetes).
PodMatch match_pod(const PodIndex* pods, const CgroupInfo& cgroup);

// Prometheus's label-name sanitizing: every char outside [a-zA-Z0-9_] -> '_'.
std::string sanitize_label_name(const std::string& name);

// `systemd unit` -> the service it names, for service_name: "nginx.service"
// -> "nginx"; "" for scopes (session-3.scope, docker-<id>.scope, init.scope),
// slices and the per-user manager (user@1000.service).
std::string systemd_service_name(const std::string& unit);

// The base name of an executable path without " (deleted)"; "" if none.
std::string exe_base_name(const std::string& exe);

// The __meta_* labels of a process. `node_name` and `kubernetes` (whether pod
// metadata is on at all) fill __meta_kubernetes_node_name.
Labels discovered_labels(const ProcessFacts& facts, const PodMatch& pod,
                         const std::string& node_name, bool kubernetes);

// Where service_name came from: cgroup-level sources (a pod, a systemd
// service) give every process of the cgroup the same name; the executable
// does not.
enum class ServiceSource { kPodAnnotation, kPodLabel, kPodContainer, kSystemdUnit, kExecutable };

// Adds service_name, namespace, pod, container and node computed from the
// __meta_* labels in `labels` (see the README for the precedence). Returns
// where service_name came from.
ServiceSource add_default_labels(Labels& labels);

// The labels the keep/drop verdict of a rule list can depend on. Computed once
// per rule list by walking the rules backwards: a keep/drop rule needs its
// source labels; a rule writing a needed label needs its sources too.
// `any` when that cannot be bounded (a labelmap or a templated target_label
// feeding a later keep/drop).
struct RuleAnalysis {
  bool can_drop = false;  // some rule may drop a target
  bool any = false;
  std::set<std::string> inputs;

  static RuleAnalysis of(const std::vector<RelabelRule>& rules);
  // True when the verdict for a process whose per-process labels are
  // `process_level` cannot differ between processes of one cgroup.
  bool cgroup_level(const std::set<std::string>& process_level) const;
};

// The labels that differ between processes of one cgroup: __meta_process_*,
// and service_name when it came from the executable.
std::set<std::string> process_level_labels(ServiceSource service);

}  // namespace ember
