// `ember targets`: prints every process Ember would profile right now and the
// labels its profiles would carry (discovered, defaulted, relabeled), from
// the same label stage the agent runs. Reads /proc (paths.proc, or
// --proc-root) and, with Kubernetes enabled, the pod list (waiting for the
// first sync up to --k8s-timeout). Needs no BPF and no privileges beyond
// reading /proc.
//
// Single-threaded apart from the pod watcher's own thread.
#include <cxxopts.hpp>
#include <iostream>

#include "agent/cli/command_line.h"
#include "agent/cli/commands.h"
#include "agent/cli/pod_source.h"
#include "agent/label/targets.h"

namespace ember {

int run_targets(int argc, char** argv) {
  cxxopts::Options options("ember targets",
                           "List the processes `ember agent` would profile, with their labels.\n\n"
                           "  ember targets --config /etc/ember/ember.yaml [--json] [--all]\n");
  options.add_options()
      ("c,config", "YAML config file (relabel_configs, labels, kubernetes)", cxxopts::value<std::string>())
      ("json", "Print JSON instead of a table")
      ("all", "Also list processes relabel_configs drop, marked dropped")
      ("proc-root", "Read processes from this /proc (overrides paths.proc)", cxxopts::value<std::string>())
      ("k8s-timeout", "How long to wait for the pod list", cxxopts::value<std::string>()->default_value("10s"))
      ("h,help", "Show this help");
  int exit_code = 0;
  auto parsed = parse_command_line(options, "ember targets", argc, argv, false, &exit_code);
  if (!parsed) return exit_code;
  const cxxopts::ParseResult& args = *parsed;
  auto loaded = load_config_option(args, "ember targets", &exit_code);
  if (!loaded) return exit_code;
  Config config = std::move(*loaded);
  if (args.count("proc-root")) config.paths.proc = args["proc-root"].as<std::string>();
  auto timeout = parse_duration(args["k8s-timeout"].as<std::string>());
  if (!timeout) {
    std::cerr << "ember targets: --k8s-timeout: " << timeout.error().message << std::endl;
    return kExitUsage;
  }

  Metrics metrics;
  TargetsKubernetes k8s;
  k8s.enabled = kubernetes_enabled(config);
  if (k8s.enabled) k8s.node = kubernetes_node_name(config);
  std::unique_ptr<PodWatcher> watcher;
  if (k8s.enabled) {
    auto w = make_pod_index(config, metrics);
    if (!w) {
      k8s.error = w.error().message;
    } else {
      watcher = std::move(*w);
      k8s.synced = wait_for_pod_sync(*watcher, *timeout);
      k8s.pods = watcher->pod_count();
      k8s.containers = watcher->container_count();
      if (!k8s.synced)
        k8s.error = "kubernetes: the API server did not answer the pod list within " +
                    format_duration(*timeout) + " (unreachable, or not allowed to list pods)";
    }
    if (!k8s.error.empty()) std::cerr << "ember targets: " << k8s.error << std::endl;
  }

  ProcessLabeler::Options lo;
  lo.static_labels = config.labels;
  lo.proc_root = config.paths.proc;
  lo.sys_root = config.paths.sys;
  lo.relabel_configs = config.relabel_configs;
  lo.kubernetes = k8s.enabled;
  lo.node_name = kubernetes_node_name(config);
  lo.pods = watcher.get();
  lo.metrics = &metrics;
  ProcessLabeler labeler(lo);
  TargetList list = list_targets(labeler, config.paths.proc);
  bool all = args.count("all") > 0;
  std::cout << (args.count("json") ? render_targets_json(list, k8s, all)
                                   : render_targets_text(list, k8s, all));
  if (watcher) watcher->stop();
  return 0;
}

}  // namespace ember
