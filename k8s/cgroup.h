// Container identity from /proc/PID/cgroup: which container, container
// runtime, Kubernetes pod and systemd unit a process belongs to, read purely
// from cgroup path names. The labeler calls this once per process snapshot to
// attach container and pod labels; the agent never talks to a runtime for it.
//
// Everything here is a pure function of text: no I/O, never throws, and any
// input (empty, truncated, garbage) yields a CgroupInfo whose unknown fields
// are empty strings.
//
// Path shapes recognized (cgroup v1 and v2, cgroupfs and systemd drivers):
//   docker      /docker/<id>                      /system.slice/docker-<id>.scope
//   kubelet     /kubepods[/<qos>]/pod<uid>/<id>   /kubepods.slice/kubepods[-<qos>].slice/
//                                                   kubepods[-<qos>]-pod<uid_>.slice/<rt>-<id>.scope
//               (any cgroup root prefix, e.g. kind's kubelet.slice/kubelet-kubepods...)
//   containerd  cri-containerd-<id>.scope, nerdctl-<id>.scope
//   cri-o       crio-<id>[.scope], crio-conmon-<id>[.scope]
//   podman      libpod-<id>[.scope][/container], libpod-conmon-<id>.scope
//   misconfigured runc (systemd cgroupsPath taken as a path):
//               /kubepods-besteffort-pod<uid_>.slice:cri-containerd:<id>
// Nested containers (docker-in-docker, kind/k3d nodes) report the innermost.
#pragma once

#include <string>
#include <string_view>

namespace ember {

struct CgroupInfo {
  // The path the identity below was read from: the cgroup v2 ("0::") path,
  // else the best v1 path. On hybrid hosts where the v2 line says less than a
  // v1 line (old runc never joined the unified hierarchy), the v1 path wins.
  std::string path;
  // Innermost container id: 64 lowercase hex digits, or 12..64 when a runtime
  // prefix or a /docker/ parent vouches for it. "" outside containers and for
  // conmon processes (see runtime).
  std::string container_id;
  // "docker", "containerd", "cri-o" or "podman"; "" when the path does not say
  // (a bare id under /kubepods/ is written identically by containerd, k3s and
  // cri-dockerd). For a conmon process (crio-conmon-*, libpod-conmon-*) this is
  // the runtime while container_id stays "": conmon is the runtime's monitor
  // for a container, not part of it. The monitored id is still in `path`
  // (and in systemd_unit under the systemd driver).
  std::string runtime;
  // Kubernetes pod UID with dashes (36 chars), or the 32-hex UID of a static
  // pod. "" outside pods.
  std::string pod_uid;
  // "guaranteed", "burstable" or "besteffort". Guaranteed pods have no QoS
  // level in their path; a pod directly under kubepods is reported as
  // guaranteed.
  std::string qos_class;
  // The last *.service or *.scope component, e.g. "nginx.service",
  // "docker-<id>.scope", "session-3.scope", "init.scope".
  std::string systemd_unit;
};

// Parses the text of /proc/PID/cgroup (v1, v2 or hybrid). The lines are
// "<hierarchy-id>:<controllers>:<path>"; malformed lines are skipped.
// Note: paths are relative to the *reader's* cgroup namespace, so the agent
// must read from the host cgroup namespace to see container paths.
CgroupInfo parse_proc_cgroup(std::string_view text);

// Identity from one cgroup path (e.g. "/kubepods/burstable/pod<uid>/<id>").
CgroupInfo parse_cgroup_path(std::string_view path);

}  // namespace ember
