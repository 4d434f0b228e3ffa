#include "agent/label/discovery.h"

#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include "common/files.h"

namespace ember {
namespace {

constexpr unsigned long kPfKthread = 0x00200000;  // include/linux/sched.h

void trim_newline(std::string& s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.pop_back();
}

// The "0::" line of /proc/PID/cgroup.
std::string v2_path(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? text.npos : end - pos);
    if (line.substr(0, 3) == "0::") return std::string(line.substr(3));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return "";
}

void put(Labels& l, const std::string& name, const std::string& value) {
  if (!value.empty()) l[name] = value;  // as in relabeling, "" means absent
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

ProcessFacts process_facts_from(uint32_t pid, std::string exe, std::string comm,
                                const std::string& cmdline_raw, const std::string& cgroup_text) {
  ProcessFacts f;
  f.pid = pid;
  f.exe = std::move(exe);
  f.comm = std::move(comm);
  trim_newline(f.comm);
  f.cmdline = cmdline_raw;
  trim_newline(f.cmdline);
  for (char& ch : f.cmdline)
    if (ch == '\0') ch = ' ';
  if (!cgroup_text.empty()) {
    f.cgroup = parse_proc_cgroup(cgroup_text);
    f.cgroup_v2_path = v2_path(cgroup_text);
  }
  f.found = true;
  return f;
}

ProcessFacts read_process_facts(const std::string& proc_root, uint32_t pid) {
  const std::string dir = proc_root + "/" + std::to_string(pid);
  auto comm = read_file(dir + "/comm");
  auto cmd = read_file(dir + "/cmdline");
  auto cg = read_file(dir + "/cgroup");
  auto stat = read_file(dir + "/stat");
  std::string exe;
  char buf[4096];
  ssize_t n = readlink((dir + "/exe").c_str(), buf, sizeof(buf) - 1);
  if (n > 0) exe.assign(buf, size_t(n));
  ProcessFacts f = process_facts_from(pid, std::move(exe), comm ? *comm : "", cmd ? *cmd : "",
                                      cg ? *cg : "");
  f.found = comm.ok() || cmd.ok() || cg.ok() || stat.ok();
  if (stat) {
    // "pid (comm) S ppid pgrp session tty_nr tpgid flags ...": comm may hold
    // spaces and parentheses, so count fields after the last ')'.
    size_t close = stat->rfind(')');
    if (close != std::string::npos) {
      const char* p = stat->c_str() + close + 1;
      char* end = nullptr;
      unsigned long flags = 0;
      for (int field = 0; field < 7 && *p; ++field) {
        while (*p == ' ') ++p;
        if (field == 6) flags = std::strtoul(p, &end, 10);
        while (*p && *p != ' ') ++p;
      }
      f.kernel_thread = (flags & kPfKthread) != 0;
    }
  } else if (f.found && f.exe.empty() && f.cmdline.empty()) {
    f.kernel_thread = true;  // fixture trees without stat
  }
  return f;
}

PodMatch match_pod(const PodIndex* pods, const CgroupInfo& cgroup) {
  PodMatch m;
  m.wanted = pods && (!cgroup.container_id.empty() || !cgroup.pod_uid.empty());
  if (!m.wanted) return m;
  if (!cgroup.container_id.empty()) {
    if (auto c = pods->find_container(cgroup.container_id); c && c->pod) {
      m.matched = true;
      m.pod = c->pod;
      m.container_name = c->container_name;
      m.image = c->image;
      return m;
    }
  }
  if (!cgroup.pod_uid.empty()) {
    if (auto p = pods->find_pod(cgroup.pod_uid)) {
      m.matched = true;
      m.pod = std::move(p);
    }
  }
  return m;
}

std::string sanitize_label_name(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) c = '_';
  }
  return out;
}

std::string systemd_service_name(const std::string& unit) {
  constexpr std::string_view kService = ".service";
  if (!ends_with(unit, kService) || unit.size() == kService.size()) return "";
  std::string name = unit.substr(0, unit.size() - kService.size());
  // The per-user service manager holds a whole login's processes.
  if (name.rfind("user@", 0) == 0 || name.rfind("user-runtime-dir@", 0) == 0) return "";
  return name;
}

std::string exe_base_name(const std::string& exe) {
  std::string_view base(exe);
  if (size_t slash = base.rfind('/'); slash != std::string_view::npos) base.remove_prefix(slash + 1);
  constexpr std::string_view kDeleted = " (deleted)";
  if (base.size() > kDeleted.size() && ends_with(base, kDeleted)) base.remove_suffix(kDeleted.size());
  return std::string(base);
}

Labels discovered_labels(const ProcessFacts& f, const PodMatch& pod, const std::string& node_name,
                         bool kubernetes) {
  Labels l;
  put(l, "__meta_process_pid", std::to_string(f.pid));
  put(l, "__meta_process_exe", f.exe);
  put(l, "__meta_process_comm", f.comm);
  put(l, "__meta_process_cmdline", f.cmdline);
  put(l, "__meta_process_cgroup", f.cgroup.path);
  put(l, "__meta_systemd_unit", f.cgroup.systemd_unit);
  put(l, "__meta_container_id", f.cgroup.container_id);
  put(l, "__meta_container_runtime", f.cgroup.runtime);
  if (kubernetes) put(l, "__meta_kubernetes_node_name", node_name);
  put(l, "__meta_kubernetes_pod_uid", f.cgroup.pod_uid);
  if (pod.matched && pod.pod) {
    const PodInfo& p = *pod.pod;
    put(l, "__meta_kubernetes_namespace", p.namespace_name);
    put(l, "__meta_kubernetes_pod_name", p.name);
    put(l, "__meta_kubernetes_pod_uid", p.uid);
    put(l, "__meta_kubernetes_node_name", p.node_name);
    for (const auto& [k, v] : p.labels) {
      const std::string name = sanitize_label_name(k);
      put(l, "__meta_kubernetes_pod_label_" + name, v);
      l["__meta_kubernetes_pod_labelpresent_" + name] = "true";
    }
    for (const auto& [k, v] : p.annotations) {
      const std::string name = sanitize_label_name(k);
      put(l, "__meta_kubernetes_pod_annotation_" + name, v);
      l["__meta_kubernetes_pod_annotationpresent_" + name] = "true";
    }
    put(l, "__meta_kubernetes_pod_container_name", pod.container_name);
    put(l, "__meta_kubernetes_pod_container_image", pod.image);
    put(l, "__meta_kubernetes_pod_controller_kind", p.controller_kind);
    put(l, "__meta_kubernetes_pod_controller_name", p.controller_name);
  }
  return l;
}

ServiceSource add_default_labels(Labels& l) {
  auto get = [&](const char* name) -> std::string {
    auto it = l.find(name);
    return it == l.end() ? "" : it->second;
  };
  const std::string ns = get("__meta_kubernetes_namespace");
  const std::string container = get("__meta_kubernetes_pod_container_name");
  put(l, "namespace", ns);
  put(l, "pod", get("__meta_kubernetes_pod_name"));
  put(l, "container", container);
  put(l, "node", get("__meta_kubernetes_node_name"));

  std::string service;
  ServiceSource source = ServiceSource::kExecutable;
  if (!(service = get("__meta_kubernetes_pod_annotation_pyroscope_io_service_name")).empty()) {
    source = ServiceSource::kPodAnnotation;
  } else if (!(service = get("__meta_kubernetes_pod_label_app_kubernetes_io_name")).empty()) {
    source = ServiceSource::kPodLabel;
  } else if (!ns.empty() && !container.empty()) {
    service = ns + "/" + container;
    source = ServiceSource::kPodContainer;
  } else if (!(service = systemd_service_name(get("__meta_systemd_unit"))).empty()) {
    source = ServiceSource::kSystemdUnit;
  } else {
    service = exe_base_name(get("__meta_process_exe"));
    if (service.empty()) service = get("__meta_process_comm");
    if (service.empty()) service = "unknown";
  }
  l["service_name"] = service;
  return source;
}

RuleAnalysis RuleAnalysis::of(const std::vector<RelabelRule>& rules) {
  RuleAnalysis a;
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    const RelabelRule& r = *it;
    switch (r.action) {
      case RelabelAction::kKeep:
      case RelabelAction::kDrop:
      case RelabelAction::kKeepEqual:
      case RelabelAction::kDropEqual:
        a.can_drop = true;
        a.inputs.insert(r.source_labels.begin(), r.source_labels.end());
        if (r.action == RelabelAction::kKeepEqual || r.action == RelabelAction::kDropEqual)
          a.inputs.insert(r.target_label);
        break;
      case RelabelAction::kReplace:
      case RelabelAction::kHashMod:
      case RelabelAction::kLowercase:
      case RelabelAction::kUppercase:
        if (!a.can_drop) break;  // nothing after this rule decides anything
        if (r.target_label.find('$') != std::string::npos) {
          a.any = true;  // writes a label named by data: could be any input
        } else if (a.inputs.count(r.target_label)) {
          // The target keeps its old value when the regex does not match,
          // so it stays an input, and the sources join it.
          a.inputs.insert(r.source_labels.begin(), r.source_labels.end());
        }
        break;
      case RelabelAction::kLabelMap:
        if (a.can_drop) a.any = true;
        break;
      case RelabelAction::kLabelDrop:
      case RelabelAction::kLabelKeep:
        break;  // decided by label names alone, which are the same for a cgroup
    }
  }
  return a;
}

bool RuleAnalysis::cgroup_level(const std::set<std::string>& process_level) const {
  if (any) return false;
  for (const auto& name : inputs)
    if (process_level.count(name)) return false;
  return true;
}

std::set<std::string> process_level_labels(ServiceSource service) {
  std::set<std::string> s = {"__meta_process_pid", "__meta_process_exe", "__meta_process_comm",
                             "__meta_process_cmdline"};
  if (service == ServiceSource::kExecutable) s.insert("service_name");
  return s;
}

}  // namespace ember
