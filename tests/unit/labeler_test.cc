// The label stage: discovered labels from a fixture /proc tree, default
// labels, relabel_configs in the config, late pods resolved at aggregation,
// keep/drop verdicts and the key (cgroup or tgid) they reach the kernel by,
// and `ember targets` output. No BPF, no cluster: a fake PodIndex and a fake
// VerdictSink stand in.
#include "agent/label/labeler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "agent/aggregate/aggregator.h"
#include "agent/config/config.h"
#include "agent/label/discovery.h"
#include "agent/label/targets.h"

namespace ember {
namespace {

const std::string kId1 = std::string(64, 'a');
const std::string kId2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kUid = "5f0c3a9e-1b2c-4d5e-8f90-123456789abc";
const std::string kUidU = "5f0c3a9e_1b2c_4d5e_8f90_123456789abc";

// A /proc lookalike in a temp dir.
class FakeProc {
 public:
  FakeProc() {
    char tmpl[] = "/tmp/ember-label-XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  ~FakeProc() { std::filesystem::remove_all(root_); }
  const std::string& root() const { return root_; }

  void add(uint32_t pid, const std::string& comm, const std::vector<std::string>& argv,
           const std::string& exe, const std::string& cgroup_path, bool kthread = false) {
    std::string dir = root_ + "/" + std::to_string(pid);
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/comm") << comm << "\n";
    std::string cmd;
    for (const auto& a : argv) cmd += a + '\0';
    std::ofstream(dir + "/cmdline", std::ios::binary) << cmd;
    if (!exe.empty()) std::filesystem::create_symlink(exe, dir + "/exe");
    std::ofstream(dir + "/cgroup") << "0::" << cgroup_path << "\n";
    std::ofstream(dir + "/stat") << pid << " (" << comm << ") S 1 1 1 0 -1 "
                                 << (kthread ? 0x00208040 : 0x00400100) << " 0 0\n";
  }

 private:
  std::string root_;
};

class FakePods : public PodIndex {
 public:
  std::optional<ContainerInfo> find_container(const std::string& id) const override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return std::nullopt;
    return it->second;
  }
  std::shared_ptr<const PodInfo> find_pod(const std::string& uid) const override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pods_.find(uid);
    return it == pods_.end() ? nullptr : it->second;
  }
  uint64_t generation() const override { return gen_; }

  void add(PodInfo pod, const std::string& container_id, const std::string& container,
           const std::string& image) {
    std::lock_guard<std::mutex> l(mu_);
    auto p = std::make_shared<const PodInfo>(std::move(pod));
    pods_[p->uid] = p;
    containers_[container_id] = ContainerInfo{p, container, image};
    ++gen_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const PodInfo>> pods_;
  std::map<std::string, ContainerInfo> containers_;
  uint64_t gen_ = 1;
};

PodInfo shop_pod() {
  PodInfo p;
  p.namespace_name = "shop";
  p.name = "cart-7d9f-x2";
  p.uid = kUid;
  p.node_name = "node-a";
  p.labels = {{"app.kubernetes.io/name", "cart"}, {"tier", "backend"}};
  p.annotations = {{"pyroscope.io/service_name", "cart-svc"}};
  p.controller_kind = "Deployment";
  p.controller_name = "cart";
  return p;
}

// Label-stage options for a Kubernetes node "node-a" whose processes are in
// `proc` and whose pods are in `pods`.
ProcessLabeler::Options k8s_options(const FakeProc& proc, FakePods& pods, Metrics* metrics = nullptr) {
  ProcessLabeler::Options o;
  o.proc_root = proc.root();
  o.kubernetes = true;
  o.node_name = "node-a";
  o.pods = &pods;
  o.metrics = metrics;
  return o;
}

class FakeSink : public VerdictSink {
 public:
  Put drop_tgid(uint32_t t) override {
    if (tgids.size() >= tgid_cap) return Put::kFull;
    tgids.insert(t);
    return Put::kOk;
  }
  void forget_tgid(uint32_t t) override { tgids.erase(t); }
  Put drop_cgroup(uint64_t c) override {
    cgroups.insert(c);
    return Put::kOk;
  }
  void forget_cgroup(uint64_t c) override { cgroups.erase(c); }
  void drop_kernel_threads(bool d) override { kernel = d; }
  std::set<uint32_t> tgids;
  std::set<uint64_t> cgroups;
  size_t tgid_cap = 1000;
  bool kernel = false;
};

std::vector<RelabelRule> rules(const std::string& yaml) {
  auto c = parse_config(yaml, "t.yaml");
  EXPECT_TRUE(c.ok()) << c.error().message;
  return c.ok() ? c->relabel_configs : std::vector<RelabelRule>{};
}

SymbolizedSample sample_of(uint32_t pid, uint64_t time_ns = 1, uint64_t cgroup_id = 77,
                           uint64_t generation = 0) {
  SymbolizedSample s;
  s.meta.pid = s.meta.tid = pid;
  s.meta.time_ns = time_ns;
  s.meta.cgroup_id = cgroup_id;
  auto snap = std::make_shared<ProcessSnapshot>();
  snap->pid = pid_t(pid);
  snap->generation = generation;
  s.meta.process = snap;
  return s;
}

// --- discovery ------------------------------------------------------------

TEST(Discovery, LabelsFromAFixtureProcTree) {
  FakeProc proc;
  proc.add(10, "dockerd-app", {"/app/server", "--port", "80"}, "/app/server",
           "/system.slice/docker-" + kId1 + ".scope");
  proc.add(11, "nginx", {"nginx:", "worker", "process"}, "/usr/sbin/nginx",
           "/system.slice/nginx.service");
  proc.add(12, "cart", {"/cart"}, "/cart",
           "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidU +
               ".slice/cri-containerd-" + kId2 + ".scope");
  proc.add(13, "java", {"java", "-jar", "x.jar"}, "/usr/bin/java",
           "/kubepods/burstable/pod" + kUid + "/crio-" + kId1 + ".scope");
  proc.add(14, "redis", {"redis-server"}, "/usr/bin/redis-server",
           "/machine.slice/libpod-" + kId2 + ".scope/container");
  proc.add(15, "bash", {"-bash"}, "/usr/bin/bash", "/user.slice/user-0.slice/session-3.scope");

  FakePods pods;
  pods.add(shop_pod(), kId2, "cart", "registry/cart:1.2");

  auto labels = [&](uint32_t pid, const PodIndex* idx) {
    ProcessFacts f = read_process_facts(proc.root(), pid);
    EXPECT_TRUE(f.found);
    return discovered_labels(f, match_pod(idx, f.cgroup), "node-a", idx != nullptr);
  };

  Labels d = labels(10, nullptr);
  EXPECT_EQ(d["__meta_process_pid"], "10");
  EXPECT_EQ(d["__meta_process_exe"], "/app/server");
  EXPECT_EQ(d["__meta_process_comm"], "dockerd-app");
  EXPECT_EQ(d["__meta_process_cmdline"], "/app/server --port 80");
  EXPECT_EQ(d["__meta_process_cgroup"], "/system.slice/docker-" + kId1 + ".scope");
  EXPECT_EQ(d["__meta_container_id"], kId1);
  EXPECT_EQ(d["__meta_container_runtime"], "docker");
  EXPECT_EQ(d["__meta_systemd_unit"], "docker-" + kId1 + ".scope");
  EXPECT_EQ(d.count("__meta_kubernetes_node_name"), 0u);  // Kubernetes off

  Labels n = labels(11, nullptr);
  EXPECT_EQ(n["__meta_systemd_unit"], "nginx.service");
  EXPECT_EQ(n.count("__meta_container_id"), 0u);

  Labels k = labels(12, &pods);
  EXPECT_EQ(k["__meta_container_runtime"], "containerd");
  EXPECT_EQ(k["__meta_kubernetes_namespace"], "shop");
  EXPECT_EQ(k["__meta_kubernetes_pod_name"], "cart-7d9f-x2");
  EXPECT_EQ(k["__meta_kubernetes_pod_uid"], kUid);
  EXPECT_EQ(k["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "cart");
  EXPECT_EQ(k["__meta_kubernetes_pod_labelpresent_tier"], "true");
  EXPECT_EQ(k["__meta_kubernetes_pod_annotation_pyroscope_io_service_name"], "cart-svc");
  EXPECT_EQ(k["__meta_kubernetes_pod_container_name"], "cart");
  EXPECT_EQ(k["__meta_kubernetes_pod_container_image"], "registry/cart:1.2");
  EXPECT_EQ(k["__meta_kubernetes_pod_controller_kind"], "Deployment");
  EXPECT_EQ(k["__meta_kubernetes_pod_controller_name"], "cart");
  EXPECT_EQ(k["__meta_kubernetes_node_name"], "node-a");

  Labels c = labels(13, &pods);  // cri-o; this container is not in the index
  EXPECT_EQ(c["__meta_container_runtime"], "cri-o");
  EXPECT_EQ(c["__meta_container_id"], kId1);
  EXPECT_EQ(c["__meta_kubernetes_pod_uid"], kUid);  // from the cgroup path
  // ...but the pod UID is known, so the pod is found by UID.
  EXPECT_EQ(c["__meta_kubernetes_namespace"], "shop");
  EXPECT_EQ(c.count("__meta_kubernetes_pod_container_name"), 0u);

  Labels p = labels(14, nullptr);
  EXPECT_EQ(p["__meta_container_runtime"], "podman");
  EXPECT_EQ(p["__meta_container_id"], kId2);

  Labels b = labels(15, nullptr);
  EXPECT_EQ(b["__meta_systemd_unit"], "session-3.scope");
  EXPECT_EQ(b["__meta_process_cmdline"], "-bash");
}

TEST(Discovery, KernelThreadsAndMissingProcesses) {
  FakeProc proc;
  proc.add(2, "kthreadd", {}, "", "/", true);
  EXPECT_TRUE(read_process_facts(proc.root(), 2).kernel_thread);
  ProcessFacts gone = read_process_facts(proc.root(), 999);
  EXPECT_FALSE(gone.found);
  EXPECT_EQ(gone.comm, "");
}

TEST(Discovery, SanitizesNamesAsPrometheusDoes) {
  EXPECT_EQ(sanitize_label_name("app.kubernetes.io/name"), "app_kubernetes_io_name");
  EXPECT_EQ(sanitize_label_name("a-b c"), "a_b_c");
}

TEST(Discovery, SystemdServiceNames) {
  EXPECT_EQ(systemd_service_name("nginx.service"), "nginx");
  EXPECT_EQ(systemd_service_name("getty@tty1.service"), "getty@tty1");
  EXPECT_EQ(systemd_service_name("session-3.scope"), "");
  EXPECT_EQ(systemd_service_name("init.scope"), "");
  EXPECT_EQ(systemd_service_name("docker-" + kId1 + ".scope"), "");
  EXPECT_EQ(systemd_service_name("user@1000.service"), "");
  EXPECT_EQ(systemd_service_name("system.slice"), "");
  EXPECT_EQ(systemd_service_name(".service"), "");
}

TEST(Discovery, DefaultServiceNamePrecedence) {
  struct Case {
    const char* name;
    Labels in;
    std::string service;
    ServiceSource source;
  };
  const std::vector<Case> cases = {
      {"annotation wins",
       {{"__meta_kubernetes_pod_annotation_pyroscope_io_service_name", "ann"},
        {"__meta_kubernetes_pod_label_app_kubernetes_io_name", "lab"},
        {"__meta_kubernetes_namespace", "ns"}, {"__meta_kubernetes_pod_container_name", "c"},
        {"__meta_systemd_unit", "x.service"}, {"__meta_process_exe", "/bin/e"}},
       "ann", ServiceSource::kPodAnnotation},
      {"then app.kubernetes.io/name",
       {{"__meta_kubernetes_pod_label_app_kubernetes_io_name", "lab"},
        {"__meta_kubernetes_namespace", "ns"}, {"__meta_kubernetes_pod_container_name", "c"}},
       "lab", ServiceSource::kPodLabel},
      {"then namespace/container",
       {{"__meta_kubernetes_namespace", "ns"}, {"__meta_kubernetes_pod_container_name", "c"},
        {"__meta_systemd_unit", "x.service"}},
       "ns/c", ServiceSource::kPodContainer},
      {"then a systemd service",
       {{"__meta_systemd_unit", "nginx.service"}, {"__meta_process_exe", "/usr/sbin/nginx"}},
       "nginx", ServiceSource::kSystemdUnit},
      {"a scope is no service",
       {{"__meta_systemd_unit", "session-4.scope"}, {"__meta_process_exe", "/usr/bin/vim"}},
       "vim", ServiceSource::kExecutable},
      {"user manager is no service",
       {{"__meta_systemd_unit", "user@0.service"}, {"__meta_process_exe", "/x/y (deleted)"}},
       "y", ServiceSource::kExecutable},
      {"then comm", {{"__meta_process_comm", "worker"}}, "worker", ServiceSource::kExecutable},
      {"nothing at all", {}, "unknown", ServiceSource::kExecutable},
  };
  for (const auto& c : cases) {
    Labels l = c.in;
    EXPECT_EQ(add_default_labels(l), c.source) << c.name;
    EXPECT_EQ(l["service_name"], c.service) << c.name;
  }
  Labels k = {{"__meta_kubernetes_namespace", "ns"}, {"__meta_kubernetes_pod_name", "p"},
              {"__meta_kubernetes_pod_container_name", "c"}, {"__meta_kubernetes_node_name", "n1"}};
  add_default_labels(k);
  EXPECT_EQ(k["namespace"], "ns");
  EXPECT_EQ(k["pod"], "p");
  EXPECT_EQ(k["container"], "c");
  EXPECT_EQ(k["node"], "n1");
}

// --- the labeler: defaults, static labels, relabeling ------------------------

TEST(ProcessLabeler, RelabelRunsOverDefaultsAndUserLabelsWin) {
  FakeProc proc;
  proc.add(20, "cart", {"/cart", "-v"}, "/cart",
           "/kubepods/burstable/pod" + kUid + "/" + kId2);
  FakePods pods;
  pods.add(shop_pod(), kId2, "cart", "registry/cart:1.2");
  ProcessLabeler::Options o = k8s_options(proc, pods);
  o.static_labels = {{"env", "prod"}, {"namespace", "from-static"}};
  o.relabel_configs = rules(
      "relabel_configs:\n"
      "  - source_labels: [__meta_kubernetes_pod_label_tier]\n"
      "    target_label: tier\n"
      "  - source_labels: [service_name]\n"
      "    regex: (.*)-svc\n"
      "    target_label: service_name\n"
      "    replacement: team-$1\n");
  ProcessLabeler l(o);
  LabelDecision d = l.labels_for(sample_of(20));
  ASSERT_TRUE(d.labels);
  EXPECT_FALSE(d.pending);
  EXPECT_EQ(d.labels->get("service_name"), "team-cart");  // rule read and overwrote the default
  EXPECT_EQ(d.labels->get("tier"), "backend");
  EXPECT_EQ(d.labels->get("namespace"), "from-static");  // static beats default
  EXPECT_EQ(d.labels->get("pod"), "cart-7d9f-x2");
  EXPECT_EQ(d.labels->get("container"), "cart");
  EXPECT_EQ(d.labels->get("node"), "node-a");
  EXPECT_EQ(d.labels->get("env"), "prod");
  for (const auto& [k, v] : d.labels->labels()) EXPECT_NE(k.rfind("__", 0), 0u) << k;
  // Cached: the same process gets the same set.
  EXPECT_EQ(l.labels_for(sample_of(20)).labels, d.labels);
}

TEST(ProcessLabeler, RemovedServiceNameComesBack) {
  ProcessLabeler::Options o;
  o.proc_root = "/nonexistent";
  o.relabel_configs = rules("relabel_configs:\n  - action: labeldrop\n    regex: service_name\n");
  ProcessLabeler l(o);
  auto s = sample_of(30);
  std::const_pointer_cast<ProcessSnapshot>(s.meta.process)->exe_path = "/usr/bin/thing";
  EXPECT_EQ(l.labels_for(s).labels->get("service_name"), "thing");
}

TEST(ProcessLabeler, WithoutProcRootLabelsLikeBefore) {
  ProcessLabeler l(ProcessLabeler::Options{false, {{"env", "test"}}});
  auto s = sample_of(uint32_t(getpid()));
  std::const_pointer_cast<ProcessSnapshot>(s.meta.process)->exe_path = "/opt/app/bin/server";
  LabelDecision d = l.labels_for(s);
  ASSERT_TRUE(d.labels);
  EXPECT_EQ(d.labels->to_string(), "{env=\"test\", service_name=\"server\"}");
  SymbolizedSample k;
  k.meta.pid = 2;
  EXPECT_EQ(l.labels_for(k).labels->get("service_name"), "kernel");
}

// --- late pods ------------------------------------------------------------------

TEST(ProcessLabeler, LatePodIsLabeledAtAggregation) {
  FakeProc proc;
  proc.add(40, "cart", {"/cart"}, "/cart", "/kubepods/burstable/pod" + kUid + "/" + kId2);
  FakePods pods;
  Metrics metrics;
  ProcessLabeler::Options o = k8s_options(proc, pods, &metrics);
  ProcessLabeler labeler(o);
  StackAggregator::Options ao;
  ao.resolve_pending = [&](const PendingLabels& p) { return labeler.resolve_pending(p); };
  StackAggregator agg(ao, metrics);

  auto loc = std::make_shared<Location>();
  loc->lines.push_back(Line{"work", "", "", 0, 0});
  auto add = [&](uint64_t t) {
    SymbolizedSample s = sample_of(40, t);
    s.stack = {loc};
    LabelDecision d = labeler.labels_for(s);
    agg.add(LabeledSample{std::move(s), d.labels, d.pending});
    return d;
  };
  // Interval 1: the pod shows up after two samples; all three end up labeled.
  LabelDecision first = add(1000);
  ASSERT_TRUE(first.pending);
  ASSERT_TRUE(first.labels);  // provisional: the executable's name
  EXPECT_EQ(first.labels->get("service_name"), "cart");
  EXPECT_EQ(first.labels->get("namespace"), "");
  add(2000);
  pods.add(shop_pod(), kId2, "cart", "img");
  LabelDecision after = add(3000);
  EXPECT_FALSE(after.pending);  // the index changed: labeled at once
  ProfileBatch b = agg.take(0, 1);
  ASSERT_EQ(b.profiles.size(), 1u);
  EXPECT_EQ(b.profiles[0].labels->get("service_name"), "cart-svc");
  EXPECT_EQ(b.profiles[0].labels->get("namespace"), "shop");
  EXPECT_EQ(b.profiles[0].total_count(), 3u);
  EXPECT_EQ(metrics.counter("ember_label_late_pod_samples_total", "result=\"labeled\"").value(), 2u);
}

TEST(ProcessLabeler, ExitedProcessIsLabeledFromItsSnapshot) {
  // Pid 41 is not in the proc tree any more (it exited before the label stage
  // got to its first sample), but the sample stage read its cgroup and
  // command line along with its maps.
  FakeProc proc;
  FakePods pods;
  pods.add(shop_pod(), kId2, "cart", "img");
  Metrics metrics;
  ProcessLabeler::Options o = k8s_options(proc, pods, &metrics);
  o.relabel_configs = rules(
      "relabel_configs:\n"
      "  - source_labels: [__meta_process_cmdline]\n"
      "    target_label: cmd\n");
  ProcessLabeler labeler(o);
  SymbolizedSample s = sample_of(41);
  auto snap = std::const_pointer_cast<ProcessSnapshot>(s.meta.process);
  snap->exe_path = "/cart";
  snap->cgroup_text = "0::/kubepods/burstable/pod" + kUid + "/" + kId2 + "\n";
  snap->cmdline_raw = std::string("/cart\0--port\0" "8080\0", 18);
  LabelDecision d = labeler.labels_for(s);
  ASSERT_TRUE(d.labels);
  EXPECT_FALSE(d.pending);
  EXPECT_EQ(d.labels->get("service_name"), "cart-svc");
  EXPECT_EQ(d.labels->get("namespace"), "shop");
  EXPECT_EQ(d.labels->get("container"), "cart");
  EXPECT_EQ(d.labels->get("cmd"), "/cart --port 8080");
}

TEST(ProcessLabeler, SnapshotReadFromProcIsNotReadAgain) {
  // The sample stage read pid 42 from /proc (maps_ok) in its pod's cgroup;
  // the proc tree now says otherwise (say, the pid was reused). The labels
  // follow the snapshot, which is the image the samples came from.
  FakeProc proc;
  proc.add(42, "other", {"/other"}, "/other", "/system.slice/other.service");
  FakePods pods;
  pods.add(shop_pod(), kId2, "cart", "img");
  ProcessLabeler::Options o = k8s_options(proc, pods);
  ProcessLabeler labeler(o);
  SymbolizedSample s = sample_of(42);
  auto snap = std::const_pointer_cast<ProcessSnapshot>(s.meta.process);
  snap->maps_ok = true;
  snap->exe_path = "/cart";
  snap->comm = "cart";
  snap->cgroup_text = "0::/kubepods/burstable/pod" + kUid + "/" + kId2 + "\n";
  LabelDecision d = labeler.labels_for(s);
  ASSERT_TRUE(d.labels);
  EXPECT_EQ(d.labels->get("service_name"), "cart-svc");
  EXPECT_EQ(d.labels->get("pod"), "cart-7d9f-x2");
}

TEST(ProcessLabeler, PodThatNeverShowsUpKeepsProvisionalLabels) {
  FakeProc proc;
  proc.add(41, "job", {"/job"}, "/job", "/kubepods/besteffort/pod" + kUid + "/" + kId1);
  FakePods pods;
  Metrics metrics;
  ProcessLabeler::Options o;
  o.proc_root = proc.root();
  o.kubernetes = true;
  o.pods = &pods;
  o.metrics = &metrics;
  o.late_pod_grace_ns = 1'000'000'000;
  ProcessLabeler labeler(o);
  StackAggregator::Options ao;
  ao.resolve_pending = [&](const PendingLabels& p) { return labeler.resolve_pending(p); };
  StackAggregator agg(ao, metrics);
  SymbolizedSample s = sample_of(41, 10);
  LabelDecision d = labeler.labels_for(s);
  ASSERT_TRUE(d.pending);
  agg.add(LabeledSample{std::move(s), d.labels, d.pending});
  labeler.process_exit(41);  // exits before the interval ends: still resolved
  ProfileBatch b = agg.take(0, 1);
  ASSERT_EQ(b.profiles.size(), 1u);
  EXPECT_EQ(b.profiles[0].labels->get("service_name"), "job");
  EXPECT_EQ(metrics.counter("ember_label_late_pod_samples_total", "result=\"unmatched\"").value(), 1u);
  // Past the grace period the provisional labels are final.
  proc.add(42, "job", {"/job"}, "/job", "/kubepods/besteffort/pod" + kUid + "/" + kId1);
  EXPECT_TRUE(labeler.labels_for(sample_of(42, 10)).pending);
  LabelDecision late = labeler.labels_for(sample_of(42, 2'000'000'000));
  EXPECT_FALSE(late.pending);
  EXPECT_TRUE(late.labels);
}

// --- keep/drop verdicts -----------------------------------------------------------

struct VerdictRig {
  explicit VerdictRig(const std::string& rules_yaml, bool cgroup_ok = true) {
    proc.add(50, "cart", {"/cart"}, "/cart", "/kubepods/burstable/pod" + kUid + "/" + kId2);
    proc.add(51, "sidecar", {"/envoy"}, "/envoy", "/kubepods/burstable/pod" + kUid + "/" + kId1);
    proc.add(52, "sshd", {"sshd: root"}, "/usr/sbin/sshd", "/system.slice/ssh.service");
    proc.add(53, "bash", {"bash"}, "/usr/bin/bash", "/");
    pods.add(shop_pod(), kId2, "cart", "img");
    PodInfo other = shop_pod();
    other.namespace_name = "kube-system";
    other.uid = "other";
    other.annotations.clear();
    other.labels.clear();
    pods.add(other, kId1, "envoy", "img");
    ProcessLabeler::Options o;
    o.proc_root = proc.root();
    o.kubernetes = true;
    o.pods = &pods;
    o.metrics = &metrics;
    o.relabel_configs = rules(rules_yaml);
    o.cgroup_id_matches = [cgroup_ok](uint64_t, const std::string&) { return cgroup_ok; };
    labeler = std::make_unique<ProcessLabeler>(o);
    labeler->set_verdict_sink(&sink);
  }
  LabelDecision label(uint32_t pid, uint64_t cgroup_id) {
    return labeler->labels_for(sample_of(pid, 1, cgroup_id));
  }
  FakeProc proc;
  FakePods pods;
  Metrics metrics;
  FakeSink sink;
  std::unique_ptr<ProcessLabeler> labeler;
};

TEST(Verdicts, CgroupLevelRuleDropsByCgroup) {
  VerdictRig r("relabel_configs:\n"
               "  - source_labels: [__meta_kubernetes_namespace]\n"
               "    regex: kube-system\n"
               "    action: drop\n");
  EXPECT_TRUE(r.label(50, 500).labels);
  EXPECT_FALSE(r.label(51, 510).labels);  // kube-system
  EXPECT_EQ(r.sink.cgroups, std::set<uint64_t>{510});
  EXPECT_TRUE(r.sink.tgids.empty());
  EXPECT_FALSE(r.sink.kernel);  // kernel threads are not in kube-system
  EXPECT_EQ(r.metrics.counter("ember_label_processes_total", "result=\"dropped\"").value(), 1u);
}

TEST(Verdicts, ProcessLevelRuleDropsByTgid) {
  VerdictRig r("relabel_configs:\n"
               "  - source_labels: [__meta_process_comm]\n"
               "    regex: sidecar|sshd\n"
               "    action: drop\n");
  EXPECT_FALSE(r.label(51, 510).labels);
  EXPECT_FALSE(r.label(52, 520).labels);
  EXPECT_TRUE(r.label(53, 530).labels);
  EXPECT_EQ(r.sink.tgids, (std::set<uint32_t>{51, 52}));
  EXPECT_TRUE(r.sink.cgroups.empty());
  // Exec: a new image gets a new verdict; exit: the tgid may be reused.
  r.labeler->process_exec(51);
  r.labeler->process_exit(52);
  EXPECT_TRUE(r.sink.tgids.empty());
}

TEST(Verdicts, DerivedLabelsAreTracedThroughRules) {
  // service_name from the executable is per process; copied into `svc`
  // and then tested: must go by tgid even though only `svc` is read.
  VerdictRig r("relabel_configs:\n"
               "  - source_labels: [service_name]\n"
               "    target_label: svc\n"
               "  - source_labels: [svc]\n"
               "    regex: vim|ssh\n"
               "    action: drop\n");
  r.proc.add(54, "vim", {"vim"}, "/usr/bin/vim", "/user.slice/user-0.slice/session-2.scope");
  EXPECT_FALSE(r.label(54, 540).labels);
  EXPECT_EQ(r.sink.tgids, std::set<uint32_t>{54});
  EXPECT_TRUE(r.sink.cgroups.empty());
  // A systemd service names the whole cgroup: service_name="ssh" for sshd.
  EXPECT_FALSE(r.label(52, 520).labels);
  EXPECT_EQ(r.sink.cgroups, std::set<uint64_t>{520});
  // But when service_name comes from a pod, it is the same for the cgroup.
  VerdictRig k("relabel_configs:\n"
               "  - source_labels: [service_name]\n"
               "    regex: cart-svc\n"
               "    action: drop\n");
  EXPECT_FALSE(k.label(50, 500).labels);
  EXPECT_EQ(k.sink.cgroups, std::set<uint64_t>{500});
}

TEST(Verdicts, UnverifiedOrRootCgroupFallsBackToTgid) {
  VerdictRig r("relabel_configs:\n"
               "  - source_labels: [__meta_kubernetes_namespace]\n"
               "    regex: kube-system\n"
               "    action: drop\n"
               "  - source_labels: [__meta_process_cgroup]\n"
               "    regex: /\n"
               "    action: drop\n",
               /*cgroup_ok=*/false);
  EXPECT_FALSE(r.label(51, 510).labels);
  EXPECT_FALSE(r.label(53, 1).labels);  // the root cgroup: never dropped whole
  EXPECT_EQ(r.sink.tgids, (std::set<uint32_t>{51, 53}));
  EXPECT_TRUE(r.sink.cgroups.empty());
}

TEST(Verdicts, KeepRuleAndKernelThreads) {
  VerdictRig r("relabel_configs:\n"
               "  - source_labels: [namespace]\n"
               "    regex: shop\n"
               "    action: keep\n");
  EXPECT_TRUE(r.label(50, 500).labels);
  EXPECT_FALSE(r.label(52, 520).labels);
  EXPECT_TRUE(r.sink.kernel);  // kernel threads have no namespace: dropped
  EXPECT_EQ(r.sink.cgroups, std::set<uint64_t>{520});
  SymbolizedSample k;
  k.meta.pid = 7;
  EXPECT_FALSE(r.labeler->labels_for(k).labels);
}

TEST(Verdicts, PendingProcessesGetNoKernelVerdict) {
  VerdictRig r("relabel_configs:\n"
               "  - source_labels: [namespace]\n"
               "    regex: shop\n"
               "    action: keep\n");
  r.proc.add(60, "new", {"/new"}, "/new",
             "/kubepods/burstable/pod" + std::string("11111111-2222-3333-4444-555555555555") + "/" +
                 std::string(64, 'c'));
  LabelDecision d = r.label(60, 600);
  EXPECT_TRUE(d.pending);
  EXPECT_FALSE(d.labels);  // provisionally dropped (no namespace yet)...
  EXPECT_TRUE(r.sink.cgroups.empty());  // ...but nothing in the kernel
  EXPECT_TRUE(r.sink.tgids.empty());
}

TEST(Verdicts, FullTgidMapIsCounted) {
  VerdictRig r("relabel_configs:\n"
               "  - source_labels: [__meta_process_comm]\n"
               "    regex: .*\n"
               "    action: drop\n");
  r.sink.tgid_cap = 1;
  EXPECT_FALSE(r.label(52, 520).labels);
  EXPECT_FALSE(r.label(53, 530).labels);
  EXPECT_EQ(r.sink.tgids.size(), 1u);
  EXPECT_EQ(r.metrics.counter("ember_label_verdict_map_full_total", "map=\"tgid\"").value(), 1u);
}

TEST(Verdicts, RuleAnalysis) {
  auto a = RuleAnalysis::of(rules("relabel_configs:\n"
                                  "  - source_labels: [__meta_process_cmdline]\n"
                                  "    target_label: cmd\n"));
  EXPECT_FALSE(a.can_drop);
  auto b = RuleAnalysis::of(rules("relabel_configs:\n"
                                  "  - action: labelmap\n"
                                  "    regex: __meta_kubernetes_pod_label_(.+)\n"
                                  "  - source_labels: [app]\n"
                                  "    action: drop\n"));
  EXPECT_TRUE(b.can_drop);
  EXPECT_TRUE(b.any);
  EXPECT_FALSE(b.cgroup_level({}));
}

// --- config ---------------------------------------------------------------------

TEST(LabelConfig, ParsesRelabelConfigsAndKubernetes) {
  auto c = parse_config(
      "labels:\n  env: prod\n"
      "kubernetes:\n"
      "  enabled: true\n"
      "  api_server: https://10.0.0.1:6443\n"
      "  token_file: /var/run/token\n"
      "  ca_file: /var/run/ca.crt\n"
      "  node_name: node-7\n"
      "relabel_configs:\n"
      "  - source_labels: [__meta_kubernetes_namespace]\n"
      "    regex: kube-system\n"
      "    action: drop\n"
      "  - action: labelmap\n"
      "    regex: __meta_kubernetes_pod_label_(.+)\n",
      "k.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->kubernetes.enabled, Config::Kubernetes::Mode::kOn);
  EXPECT_EQ(c->kubernetes.api_server, "https://10.0.0.1:6443");
  EXPECT_EQ(c->kubernetes.node_name, "node-7");
  ASSERT_EQ(c->relabel_configs.size(), 2u);
  EXPECT_EQ(c->relabel_configs[0].action, RelabelAction::kDrop);
  EXPECT_TRUE(kubernetes_enabled(*c));
  EXPECT_EQ(kubernetes_node_name(*c), "node-7");

  // Rendered and parsed back: the same rules and settings; the token file's
  // path is shown, never a token.
  std::string text = render_config(*c);
  EXPECT_NE(text.find("token_file: \"/var/run/token\""), std::string::npos);
  auto back = parse_config(text, "rendered");
  ASSERT_TRUE(back.ok()) << back.error().message << "\n" << text;
  ASSERT_EQ(back->relabel_configs.size(), 2u);
  EXPECT_EQ(back->relabel_configs[1].action, RelabelAction::kLabelMap);
  EXPECT_EQ(back->relabel_configs[1].regex_text, "__meta_kubernetes_pod_label_(.+)");
  EXPECT_EQ(back->kubernetes.ca_file, "/var/run/ca.crt");
  EXPECT_EQ(back->kubernetes.enabled, Config::Kubernetes::Mode::kOn);
}

TEST(LabelConfig, ErrorsNameFileLineAndKey) {
  auto c = parse_config(
      "frequency: 99\n"
      "relabel_configs:\n"
      "  - source_labels: [a]\n"
      "    action: repalce\n"
      "kubernetes:\n"
      "  enabled: maybe\n"
      "  api_server: ftp://x\n"
      "  nodename: x\n",
      "e.yaml");
  ASSERT_FALSE(c.ok());
  const std::string& m = c.error().message;
  EXPECT_NE(m.find("e.yaml:4: relabel_configs[0].action: unknown action 'repalce'"), std::string::npos) << m;
  EXPECT_NE(m.find("e.yaml:6: kubernetes.enabled: expected true, false or auto, got 'maybe'"),
            std::string::npos) << m;
  EXPECT_NE(m.find("e.yaml:7: kubernetes.api_server:"), std::string::npos) << m;
  EXPECT_NE(m.find("e.yaml:8: kubernetes.nodename: unknown key (did you mean 'kubernetes.node_name'?)"),
            std::string::npos) << m;
}

TEST(LabelConfig, KubernetesAutoFollowsTheEnvironment) {
  Config c;
  auto none = [](const char*) -> const char* { return nullptr; };
  auto pod = [](const char* n) -> const char* {
    std::string s(n);
    return s == "KUBERNETES_SERVICE_HOST" ? "10.0.0.1" : s == "NODE_NAME" ? "node-env" : nullptr;
  };
  EXPECT_FALSE(kubernetes_enabled(c, none));
  EXPECT_TRUE(kubernetes_enabled(c, pod));
  EXPECT_EQ(kubernetes_node_name(c, pod), "node-env");
  c.kubernetes.api_server = "https://k:6443";
  EXPECT_TRUE(kubernetes_enabled(c, none));
  c.kubernetes.enabled = Config::Kubernetes::Mode::kOff;
  EXPECT_FALSE(kubernetes_enabled(c, pod));
}

// --- ember targets ---------------------------------------------------------------

TEST(Targets, JsonOnAFixtureProcRoot) {
  FakeProc proc;
  proc.add(2, "kthreadd", {}, "", "/", true);
  proc.add(3, "kworker/0:1", {}, "", "/", true);
  proc.add(100, "nginx", {"nginx:", "master"}, "/usr/sbin/nginx", "/system.slice/nginx.service");
  proc.add(101, "noisy", {"/opt/noisy"}, "/opt/noisy", "/user.slice/user-0.slice/session-1.scope");
  ProcessLabeler::Options o;
  o.proc_root = proc.root();
  o.static_labels = {{"env", "dev"}};
  o.relabel_configs = rules("relabel_configs:\n  - source_labels: [__meta_process_comm]\n"
                            "    regex: noisy\n    action: drop\n");
  ProcessLabeler labeler(o);
  TargetList list = list_targets(labeler, proc.root());
  EXPECT_EQ(list.kernel_threads, 2u);
  ASSERT_EQ(list.processes.size(), 2u);

  auto j = nlohmann::json::parse(render_targets_json(list, TargetsKubernetes{}, false));
  ASSERT_EQ(j["targets"].size(), 1u);
  EXPECT_EQ(j["targets"][0]["pid"], 100);
  EXPECT_EQ(j["targets"][0]["labels"]["service_name"], "nginx");
  EXPECT_EQ(j["targets"][0]["labels"]["env"], "dev");
  EXPECT_EQ(j["targets"][0]["cmdline"], "nginx: master");
  EXPECT_EQ(j["kernel_threads"]["count"], 2);
  EXPECT_EQ(j["kernel_threads"]["labels"]["service_name"], "kernel");

  auto all = nlohmann::json::parse(render_targets_json(list, TargetsKubernetes{}, true));
  ASSERT_EQ(all["targets"].size(), 2u);
  EXPECT_EQ(all["targets"][1]["status"], "dropped");
  EXPECT_EQ(all["targets"][1]["kernel_filter"], "tgid");

  TargetsKubernetes unreachable;
  unreachable.enabled = true;
  unreachable.error = "kubernetes: connection refused";
  std::string text = render_targets_text(list, unreachable, false);
  EXPECT_NE(text.find("kubernetes: connection refused"), std::string::npos) << text;
  EXPECT_NE(text.find("nginx"), std::string::npos);
  EXPECT_EQ(text.find("noisy"), std::string::npos) << text;
  EXPECT_NE(text.find("2 kernel threads"), std::string::npos) << text;
}

}  // namespace
}  // namespace ember
