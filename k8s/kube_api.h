// The Kubernetes API as the pod watcher sees it: how to reach the API server
// (KubeClientOptions, resolved from the in-cluster environment), which URLs
// to ask, and what the answers mean (a PodList page, one watch event, a
// Status). Everything past resolve_in_cluster() is a pure function of text:
// no I/O, no server needed to test it, and malformed input yields an Error,
// never an exception.
//
// Only the fields the agent labels profiles with are decoded; everything
// else in a Pod is ignored, so newer API servers cannot break the parser.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/duration.h"
#include "common/env.h"
#include "common/result.h"
#include "k8s/pod_index.h"

namespace ember {

// How the agent reaches the API server. The config file maps
// kubernetes.{api_server,token_file,ca_file,node_name} onto the first four
// fields; blanks are filled by resolve_in_cluster().
struct KubeClientOptions {
  std::string api_server;  // "https://host:port"; default from KUBERNETES_SERVICE_HOST/PORT
  std::string token_file;  // default: the service account token
  std::string ca_file;     // default: the service account CA bundle
  std::string node_name;   // default: env NODE_NAME (downward API spec.nodeName)

  // One list page or any non-watch request, end to end.
  Duration request_timeout = std::chrono::seconds(30);
  // Asked of the server as timeoutSeconds: it ends each watch after this
  // long and the watcher resumes from the last resourceVersion. The client
  // gives up on a silent watch a little after (watch_timeout + request_timeout).
  Duration watch_timeout = std::chrono::seconds(290);
  // Retry delays after an error: doubling from min to max, with jitter.
  Duration min_backoff = std::chrono::milliseconds(500);
  Duration max_backoff = std::chrono::seconds(30);
  // Pods per list page (the `limit` parameter; `continue` fetches the rest).
  int page_size = 500;
};

inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

// Fills the blanks of `opts` from the in-cluster environment:
//   api_server  https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
//   token_file  <root>/var/run/secrets/kubernetes.io/serviceaccount/token
//   ca_file     <root>/var/run/secrets/kubernetes.io/serviceaccount/ca.crt
//   node_name   $NODE_NAME
// and checks the result: an https:// server, a readable, non-empty token and
// CA file, a node name. `root` prefixes the default paths (tests use a
// scratch directory). The error says which setting is missing and how to set it.
Result<KubeClientOptions> resolve_in_cluster(const KubeClientOptions& opts, const EnvGetter& env,
                                             const std::string& root = "");

// --- requests -----------------------------------------------------------------

// URLs are built with common/url.h (libcurl's URL API); api_server must
// parse as a URL (PodWatcher::create checks), else these return "".
// GET <server>/api/v1/pods?fieldSelector=spec.nodeName%3D<node>&limit=<n>[&continue=<token>]
std::string pod_list_url(const std::string& api_server, const std::string& node_name, int limit,
                         const std::string& continue_token);
// GET <server>/api/v1/pods?fieldSelector=...&watch=1&resourceVersion=<rv>
//     &allowWatchBookmarks=true&timeoutSeconds=<s>
std::string pod_watch_url(const std::string& api_server, const std::string& node_name,
                          const std::string& resource_version, int timeout_seconds);

// --- answers ------------------------------------------------------------------

// One container of a pod, by the id the runtime gave it.
struct PodContainer {
  std::string id;       // runtime prefix stripped, e.g. 64 hex digits
  std::string runtime;  // "containerd", "cri-o", "docker", ... (the prefix)
  std::string name;
  std::string image;
  bool operator==(const PodContainer&) const = default;
};

// A decoded Pod: what the index stores, plus its containers.
struct PodRecord {
  PodInfo info;
  std::string resource_version;
  std::vector<PodContainer> containers;
};

struct PodListPage {
  std::vector<PodRecord> pods;
  std::string resource_version;  // metadata.resourceVersion: where a watch resumes
  std::string continue_token;    // metadata.continue: "" on the last page
};

// A metav1.Status, as sent with errors (HTTP bodies and ERROR watch events).
struct ApiStatus {
  int code = 0;         // HTTP-like code, e.g. 410
  std::string reason;   // e.g. "Expired", "Gone", "Unauthorized"
  std::string message;  // human-readable
};

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type = Type::kAdded;
  // ADDED, MODIFIED, DELETED: the pod (DELETED carries its last state).
  std::optional<PodRecord> pod;
  // ADDED, MODIFIED, DELETED, BOOKMARK: the object's metadata.resourceVersion.
  std::string resource_version;
  // ERROR: the Status.
  ApiStatus status;
};
const char* watch_event_type_name(WatchEvent::Type t);  // "added", "bookmark", ...

// A PodList body (one page of a list).
Result<PodListPage> parse_pod_list(std::string_view json);
// One line of a watch stream: {"type": ..., "object": {...}}.
Result<WatchEvent> parse_watch_event(std::string_view line);
// A Status body; nullopt if `json` is not one (e.g. an HTML error page).
std::optional<ApiStatus> parse_status(std::string_view json);
// True for an expired resourceVersion: code 410 (reason Expired or Gone).
inline bool is_gone(const ApiStatus& s) { return s.code == 410; }

// "containerd://<id>" -> {"containerd", "<id>"}; {"", ""} when the string has
// no "<runtime>://" prefix or an empty id (a container not started yet).
std::pair<std::string, std::string> split_container_id(std::string_view container_id);

// The workload a pod's controller belongs to, from the controller owner
// reference (kind, name) and the pod's labels:
//   ReplicaSet <d>-<hash> with label pod-template-hash=<hash> -> Deployment <d>
//   Job <c>-<8+ digits> (the CronJob controller's naming)     -> CronJob <c>
//   anything else                                             -> (kind, name)
std::pair<std::string, std::string> workload_of(const std::string& owner_kind,
                                                const std::string& owner_name,
                                                const std::map<std::string, std::string>& labels);

}  // namespace ember
