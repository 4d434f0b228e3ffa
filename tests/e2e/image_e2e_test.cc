// The container image end to end, as root.
//
// scripts/build-image.sh builds the image from this build's .deb (no
// registry: a Debian base from mmdebstrap, then packaging/container/
// Dockerfile). Helm renders the chart (charts/ember), and the test runs the
// DaemonSet's one container the way the kubelet would: its command and
// args, its securityContext (capabilities dropped to the chart's list,
// read-only root, seccomp as rendered), host pid namespace, each volume as
// the node would give it (hostPath bound, emptyDir a fresh host directory,
// the ConfigMap's files, the service account's token and CA), NODE_NAME, and
// the in-cluster API server variables. kubeapi stands in for the API server
// and lists the pod of a busybox container runc runs in a kubepods cgroup.
// The profiles the containerized agent writes must hold that container's
// CPU under its pod's labels.
//
// One difference from a pod: the container shares the host's network
// namespace, so it reaches kubeapi and the test reaches its metrics port on
// 127.0.0.1 (the chart's pod has its own network; nothing Ember does depends
// on that).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <yaml-cpp/yaml.h>

#include <regex>

#include "k8s_util.h"
#include "support/kubeapi.h"
#include "support/scrape.h"

namespace ember::e2e {
namespace {

using nlohmann::json;

// docker when its daemon answers, else podman: what build-image.sh picks.
std::string container_engine() {
  if (have_program("docker") && run({"docker", "info"}, std::chrono::seconds(30)).exit_code == 0)
    return "docker";
  if (have_program("podman")) return "podman";
  return "";
}

bool apparmor_enabled() {
  std::string s = read_file("/sys/module/apparmor/parameters/enabled");
  return !s.empty() && s[0] == 'Y';
}

// The chart's objects, by kind.
struct Rendered {
  YAML::Node config_map, daemon_set;
};

Rendered parse_chart(const std::string& text) {
  Rendered r;
  for (const YAML::Node& doc : YAML::LoadAll(text)) {
    if (!doc.IsMap() || !doc["kind"]) continue;
    std::string kind = doc["kind"].as<std::string>();
    // reset(), not =: assigning to a Node that refers to one writes into it.
    if (kind == "ConfigMap") r.config_map.reset(doc);
    if (kind == "DaemonSet") r.daemon_set.reset(doc);
  }
  return r;
}

class ImageE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the image test needs root (BPF, runc, the container engine)";
    engine_ = container_engine();
    ASSERT_FALSE(engine_.empty()) << "no container engine (docker daemon or podman): run scripts/install-deps.sh";
    ASSERT_TRUE(have_program("mmdebstrap")) << "mmdebstrap missing: run scripts/install-deps.sh";
    ASSERT_TRUE(have_program("runc")) << "runc missing: run scripts/install-deps.sh";
    ASSERT_TRUE(certs_.ok());
    server_ = std::make_unique<testing::KubeApiServer>(certs_ / "server.pem", certs_ / "server.key",
                                                       certs_ / "ca.pem", "image-e2e-token");
    ASSERT_TRUE(server_->running()) << server_->log();
  }
  void TearDown() override {
    if (!name_.empty()) run({engine_, "rm", "-f", name_}, std::chrono::seconds(60));
  }

  std::string engine_, name_;
  testing::KubeCerts certs_;
  TempDir tmp_;
  std::unique_ptr<testing::KubeApiServer> server_;
};

TEST_F(ImageE2E, TheChartsPodProfilesAHostContainerWithItsPodLabels) {
  // --- the image, as the README builds it -------------------------------------
  const std::string image = std::string("ember:") + EMBER_VERSION;
  RunResult built = run({"bash", std::string(SOURCE_DIR) + "/scripts/build-image.sh", "--build", BUILD_DIR,
                         "--engine", engine_, "--tag", image},
                        std::chrono::seconds(900));
  ASSERT_EQ(built.exit_code, 0) << built.out << built.err;
  std::fprintf(stderr, "[ info     ] %s", built.out.c_str());

  // --- the chart, rendered by Helm ----------------------------------------------
  const int metrics_port = testing::reserve_port();
  ASSERT_GT(metrics_port, 0);
  RunResult rendered = run({"bash", std::string(SOURCE_DIR) + "/tests/chart/chart_test.sh", "render", HELM_DIR,
                            std::string(SOURCE_DIR) + "/charts/ember", EMBER_BINARY, PYTHON3,
                            tmp_ / "chart.yaml", "--set", "config.interval=3s", "--set",
                            "metrics.port=" + std::to_string(metrics_port)},
                           std::chrono::seconds(300));
  if (rendered.exit_code == 77) GTEST_SKIP() << "no Helm (npm missing): " << rendered.err;
  ASSERT_EQ(rendered.exit_code, 0) << rendered.err;
  Rendered chart = parse_chart(read_file(tmp_ / "chart.yaml"));
  ASSERT_TRUE(chart.config_map.IsMap() && chart.daemon_set.IsMap()) << read_file(tmp_ / "chart.yaml");
  const YAML::Node pod = chart.daemon_set["spec"]["template"]["spec"];
  const YAML::Node c = pod["containers"][0];
  EXPECT_EQ(c["image"].as<std::string>(), image) << "the chart's default image is the one the script builds";

  // --- the pod, as the kubelet would run it -----------------------------------
  name_ = "ember-image-e2e-" + random_hex(8);
  std::vector<std::string> argv = {engine_, "run", "-d", "--name", name_, "--network", "host"};
  // A pod gets its runtime's own limits (containerd passes its own). podman's
  // defaults are higher than this process's, and raising a limit takes
  // CAP_SYS_RESOURCE, which some sandboxes (this CI's included) do not have:
  // "error setting rlimit type 7: operation not permitted".
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  const std::string files = std::to_string(std::min<rlim_t>(nofile.rlim_max, 1 << 20));
  argv.insert(argv.end(), {"--ulimit", "nofile=" + files + ":" + files, "--ulimit", "nproc=4096:4096"});
  if (pod["hostPID"] && pod["hostPID"].as<bool>()) argv.insert(argv.end(), {"--pid", "host"});
  const YAML::Node sc = c["securityContext"];
  ASSERT_FALSE(sc["privileged"].as<bool>()) << "the default is least privilege";
  argv.insert(argv.end(), {"--user", std::to_string(sc["runAsUser"].as<int>())});
  if (sc["readOnlyRootFilesystem"].as<bool>()) {
    argv.push_back("--read-only");
    // podman adds writable tmpfs mounts to a read-only container by default;
    // a pod gets none beyond its volumes.
    if (engine_ == "podman") argv.push_back("--read-only-tmpfs=false");
  }
  if (sc["allowPrivilegeEscalation"] && !sc["allowPrivilegeEscalation"].as<bool>())
    argv.insert(argv.end(), {"--security-opt", "no-new-privileges"});
  std::vector<std::string> caps;
  for (const auto& d : sc["capabilities"]["drop"]) argv.insert(argv.end(), {"--cap-drop", d.as<std::string>()});
  for (const auto& a : sc["capabilities"]["add"]) {
    caps.push_back(a.as<std::string>());
    argv.insert(argv.end(), {"--cap-add", "CAP_" + a.as<std::string>()});
  }
  EXPECT_GE(caps.size(), 2u);
  if (sc["seccompProfile"] && sc["seccompProfile"]["type"].as<std::string>() == "Unconfined")
    argv.insert(argv.end(), {"--security-opt", "seccomp=unconfined"});
  if (apparmor_enabled()) argv.insert(argv.end(), {"--security-opt", "apparmor=unconfined"});

  // Volumes: hostPath bound, emptyDir a directory of the node's, the
  // ConfigMap's keys as files.
  std::map<std::string, YAML::Node> volumes;
  for (const auto& v : pod["volumes"]) volumes[v["name"].as<std::string>()].reset(YAML::Node(v));
  std::string data_dir;  // the emptyDir at /var/lib/ember: the profiles
  for (const auto& m : c["volumeMounts"]) {
    const std::string vname = m["name"].as<std::string>(), path = m["mountPath"].as<std::string>();
    const bool ro = m["readOnly"] && m["readOnly"].as<bool>();
    ASSERT_TRUE(volumes.count(vname)) << vname;
    const YAML::Node v = volumes[vname];
    std::string source;
    if (v["hostPath"]) {
      source = v["hostPath"]["path"].as<std::string>();
    } else if (v["emptyDir"]) {
      source = tmp_ / ("emptydir-" + vname);
      std::filesystem::create_directories(source);
      if (path == "/var/lib/ember") data_dir = source;
    } else if (v["configMap"]) {
      source = tmp_ / ("configmap-" + vname);
      std::filesystem::create_directories(source);
      for (const auto& kv : chart.config_map["data"])
        std::ofstream(source + "/" + kv.first.as<std::string>()) << kv.second.as<std::string>();
    } else {
      FAIL() << "volume " << vname << " of a kind this test does not provide";
    }
    argv.insert(argv.end(), {"-v", source + ":" + path + (ro ? ":ro" : "")});
  }
  ASSERT_FALSE(data_dir.empty()) << "no emptyDir at /var/lib/ember";

  // The service account's projected files and the in-cluster variables.
  if (!pod["automountServiceAccountToken"] || pod["automountServiceAccountToken"].as<bool>()) {
    std::string sa = tmp_ / "serviceaccount";
    std::filesystem::create_directories(sa);
    std::ofstream(sa + "/token") << "image-e2e-token";
    std::filesystem::copy_file(certs_ / "ca.pem", sa + "/ca.crt");
    std::ofstream(sa + "/namespace") << "profiling";
    argv.insert(argv.end(), {"-v", sa + ":/var/run/secrets/kubernetes.io/serviceaccount:ro", "-e",
                             "KUBERNETES_SERVICE_HOST=127.0.0.1", "-e",
                             "KUBERNETES_SERVICE_PORT=" + std::to_string(server_->port())});
  }
  for (const auto& e : c["env"]) {
    std::string value;
    if (e["value"]) value = e["value"].as<std::string>();
    else if (e["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>() == "spec.nodeName") value = kNode;
    argv.insert(argv.end(), {"-e", e["name"].as<std::string>() + "=" + value});
  }
  std::vector<std::string> command;
  for (const auto& x : c["command"]) command.push_back(x.as<std::string>());
  ASSERT_EQ(command.size(), 1u);
  argv.insert(argv.end(), {"--entrypoint", command[0], image});
  for (const auto& x : c["args"]) argv.push_back(x.as<std::string>());

  // --- a pod's container on the host, and its pod in the API ------------------
  const std::string uid = random_uid();
  RuncContainer shop(tmp_.path(), uid, "burstable");
  ASSERT_TRUE(shop.ok()) << shop.log();
  ASSERT_TRUE(server_->put_pod(make_pod("shop", "checkout-5c7d9-q8x2z", uid, "server",
                                        "registry.example/checkout:1.4", shop.id(),
                                        {{"app.kubernetes.io/name", "checkout"}}, json::object(),
                                        json::array())));

  std::string shown;
  for (const auto& a : argv) shown += (shown.empty() ? "" : " ") + a;
  std::fprintf(stderr, "[ info     ] %s\n", shown.c_str());
  RunResult started = run(argv, std::chrono::seconds(120));
  ASSERT_EQ(started.exit_code, 0) << started.out << started.err;
  auto logs = [&] {
    RunResult l = run({engine_, "logs", name_}, std::chrono::seconds(60));
    return l.out + l.err;
  };
  // Ready as the liveness probe sees it: /healthz on the metrics port.
  ASSERT_TRUE(wait_until([&] {
    return testing::http_get(metrics_port, "/healthz").find(" 200 ") != std::string::npos;
  }, std::chrono::seconds(90))) << logs();
  const double cpu_from = process_cpu_seconds(shop.pid());
  std::this_thread::sleep_for(std::chrono::seconds(7));
  const double shop_cpu = process_cpu_seconds(shop.pid()) - cpu_from;
  std::string metrics = testing::http_get(metrics_port, "/metrics");
  // SIGTERM, then the grace period the chart gives the pod.
  const std::string grace = std::to_string(pod["terminationGracePeriodSeconds"].as<int>());
  RunResult stopped = run({engine_, "stop", "-t", grace, name_}, std::chrono::seconds(120));
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  RunResult code = run({engine_, "inspect", "--format", "{{.State.ExitCode}}", name_});
  const std::string log = logs();
  EXPECT_EQ(code.out.substr(0, code.out.find('\n')), "0") << log;
  EXPECT_EQ(log.find("level=error"), std::string::npos) << log;
  EXPECT_EQ(log.find("ember: error:"), std::string::npos) << log;
  EXPECT_NE(log.find("kubernetes: watching pods on node e2e-node"), std::string::npos) << log;

  // --- what it wrote -----------------------------------------------------------
  const std::string want_series =
      "{container=\"server\", namespace=\"shop\", node=\"e2e-node\", pod=\"checkout-5c7d9-q8x2z\", "
      "service_name=\"checkout\"}";
  uint64_t labeled = 0, other = 0;
  for (const auto& f : read_profiles(data_dir + "/profiles")) {
    auto it = f.samples_by_pid.find(shop.pid());
    if (it == f.samples_by_pid.end()) continue;
    if (f.labels == want_series) {
      labeled += it->second;
    } else {
      other += it->second;
      ADD_FAILURE() << "the container's samples in series " << f.labels;
    }
  }
  std::fprintf(stderr, "[ info     ] %s: %llu samples under the pod's labels, %llu otherwise\n",
               engine_.c_str(), (unsigned long long)labeled, (unsigned long long)other);
  ASSERT_GT(shop_cpu, 1.0) << "the container's workload hardly ran";
  // The CPU time the container got while the agent was ready (100 Hz).
  expect_share_at_least("labeled_of_cpu_time", double(labeled), shop_cpu * 100, 0.75);
  EXPECT_GT(testing::metric_value(metrics, "ember_k8s_pods_tracked"), 0) << metrics;
}

}  // namespace
}  // namespace ember::e2e
