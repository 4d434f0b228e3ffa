#include "agent/label/targets.h"

#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ember {
namespace {

const char* status_of(const Target& t) {
  if (t.dropped) return "dropped";
  if (t.pending_pod) return "pending_pod";
  return "profiled";
}

std::string labels_text(const LabelSetRef& l, bool skip_service) {
  std::string out;
  if (!l) return out;
  for (const auto& [k, v] : l->labels()) {
    if (skip_service && k == "service_name") continue;
    if (!out.empty()) out += ',';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

}  // namespace

TargetList list_targets(const ProcessLabeler& labeler, const std::string& proc_root) {
  TargetList out;
  std::vector<uint32_t> pids;
  if (DIR* d = opendir(proc_root.c_str())) {
    while (dirent* e = readdir(d)) {
      const char* n = e->d_name;
      if (!*n || !std::all_of(n, n + std::strlen(n), [](char c) { return c >= '0' && c <= '9'; }))
        continue;
      pids.push_back(uint32_t(std::strtoul(n, nullptr, 10)));
    }
    closedir(d);
  }
  std::sort(pids.begin(), pids.end());
  ProcessLabeler::Evaluation k = labeler.evaluate_kernel_threads();
  out.kernel_labels = k.labels;
  for (uint32_t pid : pids) {
    ProcessFacts f = read_process_facts(proc_root, pid);
    if (!f.found) continue;  // exited while we looked
    if (f.kernel_thread) {
      out.kernel_threads++;
      continue;
    }
    ProcessLabeler::Evaluation ev = labeler.evaluate(f);
    Target t;
    t.pid = pid;
    t.comm = f.comm;
    t.exe = f.exe;
    t.cmdline = f.cmdline;
    t.labels = ev.labels;
    t.dropped = !ev.labels;
    t.pending_pod = ev.pending;
    t.cgroup_level = ev.cgroup_level && !f.cgroup_v2_path.empty() && f.cgroup_v2_path != "/" &&
                     f.cgroup_v2_path == f.cgroup.path;
    out.processes.push_back(std::move(t));
  }
  return out;
}

std::string render_targets_text(const TargetList& t, const TargetsKubernetes& k, bool all) {
  std::ostringstream os;
  if (k.enabled && !k.error.empty())
    os << "# " << k.error << "; pod labels are missing\n";
  else if (k.enabled && !k.synced)
    os << "# kubernetes: the pod list has not arrived yet; pod labels may be missing\n";
  else if (k.enabled)
    os << "# kubernetes: " << k.pods << " pods (" << k.containers << " containers) on node "
       << (k.node.empty() ? "?" : k.node) << "\n";
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"PID"});
  if (all) rows.back().push_back("STATUS");
  for (const char* h : {"SERVICE", "COMM", "LABELS"}) rows.back().push_back(h);
  size_t shown = 0, dropped = 0;
  for (const auto& p : t.processes) {
    if (p.dropped) ++dropped;
    if (p.dropped && !all) continue;
    ++shown;
    std::vector<std::string> r{std::to_string(p.pid)};
    if (all) r.push_back(status_of(p));
    r.push_back(p.labels ? p.labels->get("service_name") : "-");
    r.push_back(p.comm);
    r.push_back(labels_text(p.labels, true));
    rows.push_back(std::move(r));
  }
  if (t.kernel_threads && (t.kernel_labels || all)) {
    std::vector<std::string> r{"-"};
    if (all) r.push_back(t.kernel_labels ? "profiled" : "dropped");
    r.push_back(t.kernel_labels ? t.kernel_labels->get("service_name") : "-");
    std::string what = "(";
    what += std::to_string(t.kernel_threads);
    what += " kernel threads)";
    r.push_back(std::move(what));
    r.push_back(labels_text(t.kernel_labels, true));
    rows.push_back(std::move(r));
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    os << line << "\n";
  }
  os << "# " << shown << " processes profiled" << (all ? " or dropped" : "") << ", " << dropped
     << " dropped by relabel_configs" << (all ? "" : " (--all lists them)") << "\n";
  return os.str();
}

std::string render_targets_json(const TargetList& t, const TargetsKubernetes& k, bool all) {
  using nlohmann::json;
  auto labels_json = [](const LabelSetRef& l) {
    json o = json::object();
    if (l)
      for (const auto& [name, v] : l->labels()) o[name] = v;
    return o;
  };
  json out;
  out["kubernetes"] = {{"enabled", k.enabled}, {"synced", k.synced},  {"error", k.error},
                       {"node", k.node},       {"pods", k.pods},       {"containers", k.containers}};
  json list = json::array();
  for (const auto& p : t.processes) {
    if (p.dropped && !all) continue;
    json j = {{"pid", p.pid},       {"comm", p.comm},           {"exe", p.exe},
              {"cmdline", p.cmdline}, {"status", status_of(p)}, {"labels", labels_json(p.labels)}};
    // Where a drop is enforced: per cgroup or per process, in the kernel.
    if (p.dropped) j["kernel_filter"] = p.cgroup_level ? "cgroup" : "tgid";
    list.push_back(std::move(j));
  }
  out["targets"] = std::move(list);
  out["kernel_threads"] = {{"count", t.kernel_threads},
                           {"status", t.kernel_labels ? "profiled" : "dropped"},
                           {"labels", labels_json(t.kernel_labels)}};
  // Invalid UTF-8 in a cmdline must not abort the dump.
  return out.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace ember
