#include "agent/cli/pod_source.h"

#include <chrono>
#include <thread>

namespace ember {

Result<std::unique_ptr<PodWatcher>> make_pod_index(const Config& c, Metrics& metrics) {
  if (!kubernetes_enabled(c)) return std::unique_ptr<PodWatcher>();
  KubeClientOptions ko;
  ko.api_server = c.kubernetes.api_server;
  ko.token_file = c.kubernetes.token_file;
  ko.ca_file = c.kubernetes.ca_file;
  ko.node_name = kubernetes_node_name(c);
  auto resolved = resolve_in_cluster(ko, process_env());
  if (!resolved) return resolved.error();  // names the kubernetes.* setting
  auto watcher = PodWatcher::create(std::move(*resolved), metrics);
  if (!watcher) return watcher.error();
  (*watcher)->start();
  return std::move(*watcher);
}

bool wait_for_pod_sync(const PodWatcher& watcher, Duration timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (!watcher.synced()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

}  // namespace ember
