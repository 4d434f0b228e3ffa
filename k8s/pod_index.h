// PodIndex: what the agent knows about the pods on its node, keyed by the
// container ids that appear in cgroup paths. Filled by the pod watcher
// (k8s/pod_watch.h) from one list+watch of the API server; read by the label
// stage for every new process and again at aggregation time, so a process
// that started before its pod showed up in the watch is still labeled.
//
// Threading: the watcher thread writes, any thread reads; implementations
// lock internally and hand out immutable snapshots.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace ember {

struct PodInfo {
  std::string namespace_name;
  std::string name;
  std::string uid;
  std::string node_name;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  // The owning workload: the Deployment behind a ReplicaSet, the CronJob
  // behind a Job, else the direct controller (StatefulSet, DaemonSet, Job,
  // ReplicaSet without a Deployment, ...). Empty for bare pods.
  std::string controller_kind;
  std::string controller_name;
};

struct ContainerInfo {
  std::shared_ptr<const PodInfo> pod;
  std::string container_name;
  std::string image;
};

class PodIndex {
 public:
  virtual ~PodIndex() = default;
  // The container with this id (64 hex digits, as in cgroup paths; the
  // runtime prefix such as "containerd://" already stripped), if known.
  virtual std::optional<ContainerInfo> find_container(const std::string& container_id) const = 0;
  // The pod with this UID (for processes whose cgroup names the pod but not
  // the container, e.g. the pause container or a crashed runtime shim).
  virtual std::shared_ptr<const PodInfo> find_pod(const std::string& pod_uid) const = 0;
  // Bumps on every change, so callers can cheaply tell whether labels they
  // computed earlier (e.g. "no pod yet") may have become stale.
  virtual uint64_t generation() const = 0;
};

}  // namespace ember
