// `ember targets`: every process Ember would profile right now, with the
// labels its profiles would carry, computed by the same ProcessLabeler the
// agent runs (agent/label/labeler.h) over a /proc tree.
//
// Single-threaded: list_targets() reads /proc on the caller's thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/label/labeler.h"

namespace ember {

struct Target {
  uint32_t pid = 0;
  std::string comm;
  std::string exe;
  std::string cmdline;
  LabelSetRef labels;  // final; for a dropped process, null
  bool dropped = false;
  bool pending_pod = false;   // the pod is not in the index (yet): labels provisional
  bool cgroup_level = false;  // a drop would be enforced per cgroup, not per process
};

struct TargetList {
  std::vector<Target> processes;  // by pid; kernel threads are not listed one by one
  size_t kernel_threads = 0;
  LabelSetRef kernel_labels;  // null: relabeling drops kernel threads
};

// Walks <proc_root>/<pid> directories (numeric names only).
TargetList list_targets(const ProcessLabeler& labeler, const std::string& proc_root);

// What `ember targets` says about Kubernetes, for both renderings.
struct TargetsKubernetes {
  bool enabled = false;
  bool synced = false;
  std::string error;  // why pods are missing, "" if none
  std::string node;   // the node whose pods were listed
  size_t pods = 0;    // pods and containers indexed when the list was read
  size_t containers = 0;
};

// A table: PID, STATUS (with `all`), SERVICE, COMM, LABELS. Dropped processes
// only with `all`.
std::string render_targets_text(const TargetList& t, const TargetsKubernetes& k, bool all);
// {"kubernetes": {...}, "targets": [{"pid", "comm", "exe", "cmdline", "status",
//  "labels": {...}, "kernel_filter"}...], "kernel_threads": {...}}
std::string render_targets_json(const TargetList& t, const TargetsKubernetes& k, bool all);

}  // namespace ember
