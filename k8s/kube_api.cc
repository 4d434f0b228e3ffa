#include "k8s/kube_api.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/url.h"

namespace ember {
namespace {

using nlohmann::json;

// Field accessors that never throw: a field of the wrong type reads as absent.
const json* child(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string str(const json& j, const char* key) {
  const json* c = child(j, key);
  return c && c->is_string() ? c->get<std::string>() : std::string();
}

const json& obj(const json& j, const char* key) {
  static const json kEmpty = json::object();
  const json* c = child(j, key);
  return c && c->is_object() ? *c : kEmpty;
}

const json& arr(const json& j, const char* key) {
  static const json kEmpty = json::array();
  const json* c = child(j, key);
  return c && c->is_array() ? *c : kEmpty;
}

std::map<std::string, std::string> string_map(const json& j) {
  std::map<std::string, std::string> out;
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.value().is_string()) out.emplace(it.key(), it.value().get<std::string>());
  return out;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

Result<json> parse_json(std::string_view text, const char* what) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Errorf("%s is not valid JSON (%zu bytes)", what, text.size());
  if (!j.is_object()) return Errorf("%s is not a JSON object", what);
  return j;
}

PodRecord decode_pod(const json& pod) {
  PodRecord r;
  const json& meta = obj(pod, "metadata");
  const json& spec = obj(pod, "spec");
  const json& status = obj(pod, "status");
  PodInfo& info = r.info;
  info.namespace_name = str(meta, "namespace");
  info.name = str(meta, "name");
  info.uid = str(meta, "uid");
  info.node_name = str(spec, "nodeName");
  info.labels = string_map(obj(meta, "labels"));
  info.annotations = string_map(obj(meta, "annotations"));
  r.resource_version = str(meta, "resourceVersion");

  for (const json& ref : arr(meta, "ownerReferences")) {
    const json* controller = child(ref, "controller");
    if (!controller || !controller->is_boolean() || !controller->get<bool>()) continue;
    auto [kind, name] = workload_of(str(ref, "kind"), str(ref, "name"), info.labels);
    info.controller_kind = std::move(kind);
    info.controller_name = std::move(name);
    break;  // the API server allows at most one controller
  }

  // Images as written in the spec, for containers whose status lacks one.
  std::map<std::string, std::string> spec_images;
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"})
    for (const json& c : arr(spec, list)) spec_images.emplace(str(c, "name"), str(c, "image"));

  auto add = [&](const json& cs, const std::string& container_id) {
    auto [runtime, id] = split_container_id(container_id);
    if (id.empty()) return;
    for (const auto& have : r.containers)
      if (have.id == id) return;
    PodContainer c;
    c.id = std::move(id);
    c.runtime = std::move(runtime);
    c.name = str(cs, "name");
    c.image = str(cs, "image");
    if (c.image.empty()) {
      auto it = spec_images.find(c.name);
      if (it != spec_images.end()) c.image = it->second;
    }
    r.containers.push_back(std::move(c));
  };
  for (const char* list : {"containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"}) {
    for (const json& cs : arr(status, list)) {
      add(cs, str(cs, "containerID"));
      // The previous instance of a restarted container: its last samples may
      // still be aggregated after the restart.
      add(cs, str(obj(obj(cs, "lastState"), "terminated"), "containerID"));
    }
  }
  return r;
}

ApiStatus decode_status(const json& j) {
  ApiStatus s;
  const json* code = child(j, "code");
  if (code && code->is_number_integer()) s.code = code->get<int>();
  s.reason = str(j, "reason");
  s.message = str(j, "message");
  return s;
}

bool file_readable_nonempty(const std::string& path, std::string* why) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    *why = "does not exist";
    return false;
  }
  if (::access(path.c_str(), R_OK) != 0) {
    *why = "is not readable";
    return false;
  }
  if (!S_ISREG(st.st_mode) || st.st_size == 0) {
    *why = "is empty";
    return false;
  }
  return true;
}

}  // namespace

Result<KubeClientOptions> resolve_in_cluster(const KubeClientOptions& opts, const EnvGetter& env,
                                             const std::string& root) {
  KubeClientOptions o = opts;
  auto get = [&](const char* name) { return env ? env(name).value_or("") : std::string(); };
  if (o.api_server.empty()) {
    std::string host = get("KUBERNETES_SERVICE_HOST"), port = get("KUBERNETES_SERVICE_PORT");
    if (host.empty() || port.empty())
      return Errorf(
          "kubernetes: no API server: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set "
          "(not running in a pod?); set kubernetes.api_server");
    if (host.find(':') != std::string::npos) host = "[" + host + "]";  // IPv6
    o.api_server = "https://" + host + ":" + port;
  }
  while (!o.api_server.empty() && o.api_server.back() == '/') o.api_server.pop_back();
  if (o.api_server.rfind("https://", 0) != 0 || o.api_server.size() <= 8)
    return Errorf("kubernetes: api_server %s must be an https:// URL (TLS is always verified)",
                  o.api_server.c_str());
  std::string sa = root + kServiceAccountDir;
  if (o.token_file.empty()) o.token_file = sa + "/token";
  if (o.ca_file.empty()) o.ca_file = sa + "/ca.crt";
  std::string why;
  if (!file_readable_nonempty(o.token_file, &why))
    return Errorf("kubernetes: token file %s %s; mount a service account token or set "
                  "kubernetes.token_file", o.token_file.c_str(), why.c_str());
  if (!file_readable_nonempty(o.ca_file, &why))
    return Errorf("kubernetes: CA file %s %s; set kubernetes.ca_file", o.ca_file.c_str(), why.c_str());
  if (o.node_name.empty()) o.node_name = get("NODE_NAME");
  if (o.node_name.empty())
    return Errorf("kubernetes: node name unknown: set env NODE_NAME from the downward API "
                  "(fieldRef spec.nodeName) or kubernetes.node_name");
  if (o.page_size <= 0) o.page_size = 500;
  if (o.min_backoff <= Duration::zero()) o.min_backoff = std::chrono::milliseconds(100);
  if (o.max_backoff < o.min_backoff) o.max_backoff = o.min_backoff;
  if (o.watch_timeout < std::chrono::seconds(1)) o.watch_timeout = std::chrono::seconds(1);
  return o;
}

namespace {

std::string pods_url(const std::string& api_server,
                     std::initializer_list<std::pair<std::string_view, std::string>> query) {
  auto url = Url::parse(api_server + "/api/v1/pods");
  if (!url.ok()) return "";
  for (const auto& [name, value] : query)
    if (!url->append_query(name, value).ok()) return "";
  return url->str();
}

}  // namespace

std::string pod_list_url(const std::string& api_server, const std::string& node_name, int limit,
                         const std::string& continue_token) {
  if (continue_token.empty())
    return pods_url(api_server, {{"fieldSelector", "spec.nodeName=" + node_name},
                                 {"limit", std::to_string(limit)}});
  return pods_url(api_server, {{"fieldSelector", "spec.nodeName=" + node_name},
                               {"limit", std::to_string(limit)},
                               {"continue", continue_token}});
}

std::string pod_watch_url(const std::string& api_server, const std::string& node_name,
                          const std::string& resource_version, int timeout_seconds) {
  return pods_url(api_server, {{"fieldSelector", "spec.nodeName=" + node_name},
                               {"watch", "1"},
                               {"resourceVersion", resource_version},
                               {"allowWatchBookmarks", "true"},
                               {"timeoutSeconds", std::to_string(timeout_seconds)}});
}

const char* watch_event_type_name(WatchEvent::Type t) {
  switch (t) {
    case WatchEvent::Type::kAdded: return "added";
    case WatchEvent::Type::kModified: return "modified";
    case WatchEvent::Type::kDeleted: return "deleted";
    case WatchEvent::Type::kBookmark: return "bookmark";
    case WatchEvent::Type::kError: return "error";
  }
  return "error";
}

Result<PodListPage> parse_pod_list(std::string_view text) {
  auto j = parse_json(text, "pod list");
  if (!j.ok()) return j.error();
  std::string kind = str(*j, "kind");
  if (kind == "Status") {
    ApiStatus s = decode_status(*j);
    return Errorf("pod list: API error %d %s: %s", s.code, s.reason.c_str(), s.message.c_str());
  }
  if (kind != "PodList") return Errorf("pod list: unexpected kind \"%s\"", kind.c_str());
  PodListPage page;
  const json& meta = obj(*j, "metadata");
  page.resource_version = str(meta, "resourceVersion");
  page.continue_token = str(meta, "continue");
  if (page.resource_version.empty()) return Errorf("pod list: no metadata.resourceVersion");
  const json* items = child(*j, "items");
  // An empty list may be sent as "items": null.
  if (items && !items->is_null() && !items->is_array()) return Errorf("pod list: items is not an array");
  for (const json& item : arr(*j, "items")) {
    PodRecord r = decode_pod(item);
    if (r.info.uid.empty()) continue;  // cannot be indexed or deleted later
    page.pods.push_back(std::move(r));
  }
  return page;
}

Result<WatchEvent> parse_watch_event(std::string_view line) {
  auto j = parse_json(line, "watch event");
  if (!j.ok()) return j.error();
  std::string type = str(*j, "type");
  const json* object = child(*j, "object");
  if (!object || !object->is_object()) return Errorf("watch event %s has no object", type.c_str());
  WatchEvent ev;
  if (type == "ADDED") {
    ev.type = WatchEvent::Type::kAdded;
  } else if (type == "MODIFIED") {
    ev.type = WatchEvent::Type::kModified;
  } else if (type == "DELETED") {
    ev.type = WatchEvent::Type::kDeleted;
  } else if (type == "BOOKMARK") {
    ev.type = WatchEvent::Type::kBookmark;
  } else if (type == "ERROR") {
    ev.type = WatchEvent::Type::kError;
    ev.status = decode_status(*object);
    return ev;
  } else {
    return Errorf("watch event has unknown type \"%s\"", type.c_str());
  }
  ev.resource_version = str(obj(*object, "metadata"), "resourceVersion");
  if (ev.type == WatchEvent::Type::kBookmark) {
    // A bookmark's object is a Pod with only metadata.resourceVersion.
    if (ev.resource_version.empty()) return Errorf("watch bookmark without resourceVersion");
    return ev;
  }
  std::string kind = str(*object, "kind");
  if (!kind.empty() && kind != "Pod") return Errorf("watch event object is a %s, not a Pod", kind.c_str());
  ev.pod = decode_pod(*object);
  if (ev.pod->info.uid.empty()) return Errorf("watch event %s: pod without metadata.uid", type.c_str());
  return ev;
}

std::optional<ApiStatus> parse_status(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || str(j, "kind") != "Status") return std::nullopt;
  return decode_status(j);
}

std::pair<std::string, std::string> split_container_id(std::string_view container_id) {
  size_t sep = container_id.find("://");
  if (sep == std::string_view::npos || sep == 0 || sep + 3 >= container_id.size()) return {};
  return {std::string(container_id.substr(0, sep)), std::string(container_id.substr(sep + 3))};
}

std::pair<std::string, std::string> workload_of(const std::string& owner_kind,
                                                const std::string& owner_name,
                                                const std::map<std::string, std::string>& labels) {
  if (owner_kind == "ReplicaSet") {
    // The Deployment controller names its ReplicaSets <deployment>-<hash>
    // and stamps the same hash on the pods; without that label the
    // ReplicaSet was made by hand (or by another controller).
    auto it = labels.find("pod-template-hash");
    if (it != labels.end() && !it->second.empty()) {
      std::string suffix = "-" + it->second;
      if (owner_name.size() > suffix.size() &&
          owner_name.compare(owner_name.size() - suffix.size(), suffix.size(), suffix) == 0)
        return {"Deployment", owner_name.substr(0, owner_name.size() - suffix.size())};
    }
  } else if (owner_kind == "Job") {
    // The CronJob controller names its Jobs <cronjob>-<scheduled time in
    // minutes since the epoch> (8 digits since 1989). A shorter number is
    // more likely a hand-made "migrate-2".
    size_t dash = owner_name.rfind('-');
    if (dash != std::string::npos && dash > 0) {
      std::string_view digits = std::string_view(owner_name).substr(dash + 1);
      if (digits.size() >= 8 && all_digits(digits)) return {"CronJob", owner_name.substr(0, dash)};
    }
  }
  return {owner_kind, owner_name};
}

}  // namespace ember
