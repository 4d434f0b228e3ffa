// The pod watcher: keeps a PodIndex of the pods on this node current from
// the Kubernetes API server, with one list+watch of
//   /api/v1/pods?fieldSelector=spec.nodeName=<node>
// (the selector is what bounds the index to this node's pods).
//
//   PodStore    the index itself: pods by UID, containers by runtime id.
//               Thread-safe; readers get immutable PodInfo snapshots.
//   PodWatcher  owns one background thread that lists (following
//               `continue`), then watches from the list's resourceVersion,
//               re-watches from the last resourceVersion seen (events and
//               bookmarks) when a watch ends, re-lists on 410 Gone, and backs
//               off exponentially with jitter on errors (429 honours
//               Retry-After). The token file is re-read before every request,
//               so rotated (bound) service account tokens apply at once.
//
// Drops are data: lists, watches, events by type, relists, errors by reason,
// pods and containers tracked and the last sync time are Metrics rows
// (ember_k8s_*). The token is never logged.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/clock.h"
#include "common/result.h"
#include "k8s/kube_api.h"
#include "k8s/pod_index.h"

namespace ember {

// PodStore: the in-memory index. One writer (the watcher thread) applies
// list results and watch events; any thread reads. Updates that change
// nothing the index exposes (most MODIFIED events are status churn) leave
// generation() alone, so labels computed earlier stay valid.
class PodStore final : public PodIndex {
 public:
  std::optional<ContainerInfo> find_container(const std::string& container_id) const override;
  std::shared_ptr<const PodInfo> find_pod(const std::string& pod_uid) const override;
  uint64_t generation() const override { return generation_.load(std::memory_order_acquire); }

  // Replaces the whole content at once (a full list): readers see either
  // the old set or the new one, never a mix.
  void replace_all(std::vector<PodRecord> pods);
  // Adds or updates one pod (ADDED, MODIFIED). False if nothing changed,
  // or if the pod is new and the store already holds kMaxPods.
  bool upsert(PodRecord pod);
  // A node runs tens of pods, a few hundred at most (the kubelet's default
  // max-pods is 110). A list or watch beyond this many is a broken or
  // hostile server: the store keeps this many and refuses the rest.
  static constexpr size_t kMaxPods = 10'000;
  // Removes a pod and its containers (DELETED). False if it was unknown.
  bool remove(const std::string& pod_uid);

  size_t pod_count() const;
  size_t container_count() const;

 private:
  struct Entry {
    std::shared_ptr<const PodInfo> info;
    std::vector<PodContainer> containers;
  };
  void insert_locked(Entry e);
  void erase_locked(const std::string& uid);

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Entry> pods_;                 // by UID
  std::unordered_map<std::string, ContainerInfo> containers_;   // by container id
  std::atomic<uint64_t> generation_{0};
};

class PodWatcher final : public PodIndex {
 public:
  // `opts` as returned by resolve_in_cluster(). Nothing talks to the server
  // until start().
  static Result<std::unique_ptr<PodWatcher>> create(KubeClientOptions opts, Metrics& metrics,
                                                    const Clock& clock = SystemClock::instance());
  ~PodWatcher() override;  // stop()s
  PodWatcher(const PodWatcher&) = delete;
  PodWatcher& operator=(const PodWatcher&) = delete;

  // Starts the watcher thread (once; later calls do nothing).
  void start();
  // Stops it promptly, even mid-watch or mid-backoff, and joins it. The
  // index keeps its last content.
  void stop();

  // True once the first full list was indexed: until then, "no pod" for a
  // container means "not known yet", not "not a pod".
  bool synced() const { return synced_.load(std::memory_order_acquire); }

  std::optional<ContainerInfo> find_container(const std::string& container_id) const override {
    return store_.find_container(container_id);
  }
  std::shared_ptr<const PodInfo> find_pod(const std::string& pod_uid) const override {
    return store_.find_pod(pod_uid);
  }
  uint64_t generation() const override { return store_.generation(); }
  size_t pod_count() const { return store_.pod_count(); }
  size_t container_count() const { return store_.container_count(); }

 private:
  class Api;  // the libcurl connection (watcher thread only)
  enum class Outcome { kOk, kGone, kError, kStopped };
  struct Attempt {
    Outcome outcome;
    std::optional<Duration> retry_after;
    bool idle = false;  // a watch that ended normally without one event
  };

  PodWatcher(KubeClientOptions opts, Metrics& metrics, const Clock& clock);
  void run();
  Attempt list();
  Attempt watch();
  // Applies one watch line; false ends the watch (`*why` says why).
  bool handle_event(std::string_view line, Outcome* why);
  bool keep(const PodRecord& pod);  // on this node?
  bool read_token();
  void count_error(const std::string& reason);
  Outcome http_error(int status, const std::string& body, const char* what);
  void update_gauges();
  void mark_synced_now();
  bool sleep_for(Duration d);  // false when stopping

  const KubeClientOptions opts_;
  Metrics& metrics_;
  const Clock& clock_;
  PodStore store_;

  // Watcher thread only.
  std::unique_ptr<Api> api_;
  std::string token_;            // the last good token; never logged
  std::string resource_version_;  // where the next watch resumes

  std::atomic<bool> synced_{false};
  std::atomic<bool> stopping_{false};
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
  std::thread thread_;
  std::mutex start_mu_;  // start()/stop() from any thread
  bool started_ = false;

  Counter& lists_;
  Counter& watches_;
  Counter& relists_expired_;
  Counter& ignored_other_node_;
  Counter& ignored_too_many_;
  Counter& pods_gauge_;
  Counter& containers_gauge_;
  Counter& synced_gauge_;
  Counter& last_sync_gauge_;
  Counter* events_[5];  // by WatchEvent::Type
};

}  // namespace ember
