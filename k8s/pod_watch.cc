#include "k8s/pod_watch.h"
#include "common/thread_name.h"


#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

#include "common/curl_failure.h"
#include "common/http_client.h"
#include "common/url.h"
#include "common/log.h"

namespace ember {

namespace {

// A list page of a node's pods (at most ~110 pods) is a few MB; anything far
// larger is a misbehaving server, not something to buffer.
constexpr size_t kMaxListBody = 64u << 20;
// One watch event is one pod; the same reasoning.
constexpr size_t kMaxWatchLine = 8u << 20;
constexpr size_t kMaxErrorBody = 64u << 10;
constexpr const char* kIgnoredHelp =
    "Pods the API server sent that were not indexed, by reason: other_node, too_many (the "
    "index holds 10000)";
// A Retry-After beyond this is not honoured verbatim: the index must not go
// stale for hours because of one header.
constexpr Duration kMaxRetryAfter = std::chrono::minutes(5);

double random01() {
  // Only the watcher thread draws; thread_local keeps it lock-free anyway.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

// --- PodStore ------------------------------------------------------------------

namespace {
bool same_info(const PodInfo& a, const PodInfo& b) {
  return a.namespace_name == b.namespace_name && a.name == b.name && a.uid == b.uid &&
         a.node_name == b.node_name && a.labels == b.labels && a.annotations == b.annotations &&
         a.controller_kind == b.controller_kind && a.controller_name == b.controller_name;
}
}  // namespace

std::optional<ContainerInfo> PodStore::find_container(const std::string& container_id) const {
  std::shared_lock lock(mu_);
  auto it = containers_.find(container_id);
  if (it == containers_.end()) return std::nullopt;
  return it->second;
}

std::shared_ptr<const PodInfo> PodStore::find_pod(const std::string& pod_uid) const {
  std::shared_lock lock(mu_);
  auto it = pods_.find(pod_uid);
  return it == pods_.end() ? nullptr : it->second.info;
}

size_t PodStore::pod_count() const {
  std::shared_lock lock(mu_);
  return pods_.size();
}

size_t PodStore::container_count() const {
  std::shared_lock lock(mu_);
  return containers_.size();
}

void PodStore::insert_locked(Entry e) {
  for (const auto& c : e.containers)
    containers_[c.id] = ContainerInfo{e.info, c.name, c.image};
  std::string uid = e.info->uid;
  pods_[uid] = std::move(e);
}

void PodStore::erase_locked(const std::string& uid) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  for (const auto& c : it->second.containers) {
    // Only this pod's entry: an id reused by a newer pod stays.
    auto ci = containers_.find(c.id);
    if (ci != containers_.end() && ci->second.pod == it->second.info) containers_.erase(ci);
  }
  pods_.erase(it);
}

void PodStore::replace_all(std::vector<PodRecord> pods) {
  // Build outside the lock; swap inside it.
  std::unordered_map<std::string, Entry> new_pods;
  std::unordered_map<std::string, ContainerInfo> new_containers;
  for (auto& p : pods) {
    auto info = std::make_shared<const PodInfo>(std::move(p.info));
    for (const auto& c : p.containers) new_containers[c.id] = ContainerInfo{info, c.name, c.image};
    new_pods[info->uid] = Entry{info, std::move(p.containers)};
  }
  std::unique_lock lock(mu_);
  pods_.swap(new_pods);
  containers_.swap(new_containers);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  lock.unlock();
  // The old maps are freed here, outside the lock.
}

bool PodStore::upsert(PodRecord pod) {
  std::unique_lock lock(mu_);
  auto it = pods_.find(pod.info.uid);
  if (it == pods_.end() && pods_.size() >= kMaxPods) return false;
  if (it != pods_.end() && same_info(*it->second.info, pod.info) &&
      it->second.containers == pod.containers)
    return false;
  if (it != pods_.end()) erase_locked(pod.info.uid);
  insert_locked(Entry{std::make_shared<const PodInfo>(std::move(pod.info)), std::move(pod.containers)});
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return true;
}

bool PodStore::remove(const std::string& pod_uid) {
  std::unique_lock lock(mu_);
  if (pods_.find(pod_uid) == pods_.end()) return false;
  erase_locked(pod_uid);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return true;
}

// --- Api: the watcher's requests to the API server ------------------------------

// Owned and used by the watcher thread alone, except wakeup(), which any
// thread may call to interrupt a transfer. One HttpClient (common/) keeps
// the connection open between requests, so a re-watch after a normal end
// pays no new TLS handshake.
class PodWatcher::Api {
 public:
  // Gets each chunk of the body with the HTTP status; returns false to end
  // the transfer.
  using Sink = HttpClient::BodySink;

  static Result<std::unique_ptr<Api>> create(std::string ca_file) {
    // TLS is always verified, against the cluster CA alone: no system CA
    // directory, so a publicly trusted certificate is not enough. The CA
    // file is re-read for every new connection (it may be rotated).
    TlsOptions tls;
    tls.ca_file = std::move(ca_file);
    tls.ca_file_only = true;
    auto client = HttpClient::create(std::move(tls));
    if (!client.ok()) return client.error();
    return std::unique_ptr<Api>(new Api(std::move(*client)));
  }

  void wakeup() { client_->wakeup(); }

  HttpResponse get(const std::string& url, const std::string& token, Duration timeout, const Sink& sink,
                   const std::atomic<bool>& stop) {
    HttpRequest req;
    req.url = url;
    // Built here and wiped right after use; never logged.
    req.headers = {"Authorization: Bearer " + token, "Accept: application/json"};
    req.timeout = timeout;
    req.connect_timeout = std::min<Duration>(timeout, std::chrono::seconds(10));
    req.https_only = true;
    req.accept_encoding = true;  // gzip if the server offers it
    req.http1_only = true;       // a watch is one long chunked HTTP/1.1 answer
    req.user_agent = "ember-pod-watcher";
    HttpResponse r = client_->get(req, sink, [&stop] { return stop.load(std::memory_order_acquire); });
    std::fill(req.headers[0].begin(), req.headers[0].end(), '\0');
    return r;
  }

 private:
  explicit Api(std::unique_ptr<HttpClient> client) : client_(std::move(client)) {}
  std::unique_ptr<HttpClient> client_;
};

// --- PodWatcher ------------------------------------------------------------------

Result<std::unique_ptr<PodWatcher>> PodWatcher::create(KubeClientOptions opts, Metrics& metrics,
                                                       const Clock& clock) {
  if (opts.api_server.empty() || opts.node_name.empty() || opts.token_file.empty() ||
      opts.ca_file.empty())
    return Errorf("kubernetes: pod watcher needs api_server, node_name, token_file and ca_file "
                  "(see resolve_in_cluster)");
  if (auto url = Url::parse(opts.api_server); !url.ok())
    return Errorf("kubernetes: api_server: %s", url.error().message.c_str());
  auto api = Api::create(opts.ca_file);
  if (!api.ok()) return api.error();
  std::unique_ptr<PodWatcher> w(new PodWatcher(std::move(opts), metrics, clock));
  w->api_ = std::move(*api);
  return w;
}

PodWatcher::PodWatcher(KubeClientOptions opts, Metrics& metrics, const Clock& clock)
    : opts_(std::move(opts)),
      metrics_(metrics),
      clock_(clock),
      lists_(metrics.counter("ember_k8s_pod_lists_total", "",
                             "Complete lists of this node's pods from the API server")),
      watches_(metrics.counter("ember_k8s_pod_watches_total", "", "Pod watches started")),
      relists_expired_(metrics.counter("ember_k8s_pod_relists_total", "reason=\"expired\"",
                                       "Full re-lists because the resourceVersion expired (410 Gone)")),
      ignored_other_node_(metrics.counter("ember_k8s_pods_ignored_total", "reason=\"other_node\"",
                                          kIgnoredHelp)),
      ignored_too_many_(metrics.counter("ember_k8s_pods_ignored_total", "reason=\"too_many\"",
                                        kIgnoredHelp)),
      pods_gauge_(metrics.gauge("ember_k8s_pods_tracked", "", "Pods in the pod index")),
      containers_gauge_(metrics.gauge("ember_k8s_containers_tracked", "", "Containers in the pod index")),
      synced_gauge_(metrics.gauge("ember_k8s_pods_synced", "", "1 once the first pod list was indexed")),
      last_sync_gauge_(metrics.gauge("ember_k8s_last_sync_timestamp_seconds", "",
                                     "Wall-clock time the pod index was last confirmed current")) {
  for (auto t : {WatchEvent::Type::kAdded, WatchEvent::Type::kModified, WatchEvent::Type::kDeleted,
                 WatchEvent::Type::kBookmark, WatchEvent::Type::kError})
    events_[int(t)] = &metrics.counter("ember_k8s_watch_events_total",
                                       std::string("type=\"") + watch_event_type_name(t) + "\"",
                                       "Pod watch events received, by type");
}

PodWatcher::~PodWatcher() { stop(); }

void PodWatcher::start() {
  std::lock_guard lock(start_mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { run(); });
}

void PodWatcher::stop() {
  std::lock_guard lock(start_mu_);
  if (!thread_.joinable()) return;
  {
    std::lock_guard l(sleep_mu_);
    stopping_.store(true, std::memory_order_release);
  }
  sleep_cv_.notify_all();
  api_->wakeup();
  thread_.join();
}

bool PodWatcher::sleep_for(Duration d) {
  std::unique_lock lock(sleep_mu_);
  return !sleep_cv_.wait_for(lock, d, [this] { return stopping_.load(std::memory_order_acquire); });
}

void PodWatcher::count_error(const std::string& reason) {
  metrics_.counter("ember_k8s_api_errors_total", "reason=\"" + reason + "\"",
                   "Failed API server requests and broken watches, by reason")
      .add();
}

void PodWatcher::update_gauges() {
  pods_gauge_.set(store_.pod_count());
  containers_gauge_.set(store_.container_count());
}

void PodWatcher::mark_synced_now() { last_sync_gauge_.set(clock_.realtime_ns() / 1'000'000'000ull); }

bool PodWatcher::read_token() {
  // Re-read before every request: a bound token is rotated in place (an
  // atomic symlink swap in the projected volume) well before it expires.
  std::ifstream f(opts_.token_file, std::ios::binary);
  std::stringstream ss;
  if (f) ss << f.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ' || t.back() == '\t'))
    t.pop_back();
  if (!f || t.empty()) {
    count_error("token");
    EMBER_WARN_LIMITED("kubernetes: cannot read the token file %s%s", opts_.token_file.c_str(),
                       token_.empty() ? "" : "; using the previous token");
    return !token_.empty();
  }
  token_ = std::move(t);
  return true;
}

PodWatcher::Outcome PodWatcher::http_error(int status, const std::string& body, const char* what) {
  const char* reason = status == 401   ? "unauthorized"
                       : status == 403 ? "forbidden"
                       : status == 429 ? "throttled"
                       : status >= 500 ? "server"
                                       : "http";
  count_error(reason);
  auto st = parse_status(body);
  EMBER_WARN_LIMITED("kubernetes: %s: HTTP %d%s%s", what, status, st ? ": " : "",
                     st ? st->message.c_str() : "");
  return Outcome::kError;
}

bool PodWatcher::keep(const PodRecord& pod) {
  // The field selector already restricts the answer to this node; this
  // check keeps the index bounded even if something in between ignores it.
  if (!pod.info.node_name.empty() && pod.info.node_name != opts_.node_name) {
    ignored_other_node_.add();
    return false;
  }
  return true;
}

PodWatcher::Attempt PodWatcher::list() {
  std::vector<PodRecord> pods;
  std::string cont, rv;
  do {
    if (!read_token()) return {Outcome::kError, {}};
    std::string body;
    bool too_large = false;
    auto r = api_->get(
        pod_list_url(opts_.api_server, opts_.node_name, opts_.page_size, cont), token_,
        opts_.request_timeout,
        [&](std::string_view chunk, int status) {
          size_t cap = status == 200 ? kMaxListBody : kMaxErrorBody;
          if (body.size() + chunk.size() > cap) {
            if (status == 200) {
              too_large = true;
              return false;
            }
            body.append(chunk.substr(0, cap - std::min(cap, body.size())));
            return true;
          }
          body.append(chunk);
          return true;
        },
        stopping_);
    if (r.aborted) return {Outcome::kStopped, {}};
    if (r.failure != TransportFailure::kNone) {
      count_error(transport_failure_name(r.failure));
      EMBER_WARN_LIMITED("kubernetes: listing pods from %s failed (%s): %s", opts_.api_server.c_str(),
                         transport_failure_name(r.failure), r.error.c_str());
      return {Outcome::kError, {}};
    }
    if (too_large) {
      count_error("too_large");
      EMBER_WARN_LIMITED("kubernetes: a pod list page exceeds %zu bytes", kMaxListBody);
      return {Outcome::kError, {}};
    }
    // 410 here: the continue token expired mid-list; start over.
    if (r.status == 410) return {Outcome::kGone, {}};
    if (r.status != 200) return {http_error(r.status, body, "listing pods"), r.retry_after};
    auto page = parse_pod_list(body);
    if (!page.ok()) {
      count_error("decode");
      EMBER_WARN_LIMITED("kubernetes: %s", page.error().message.c_str());
      return {Outcome::kError, {}};
    }
    for (auto& p : page->pods) {
      if (!keep(p)) continue;
      if (pods.size() >= PodStore::kMaxPods) {
        ignored_too_many_.add();
        continue;
      }
      pods.push_back(std::move(p));
    }
    rv = page->resource_version;
    cont = page->continue_token;
    if (pods.size() >= PodStore::kMaxPods && !cont.empty()) {
      // The rest is not read at all: the index is full. The watch starts
      // from this list's resourceVersion, so later changes still arrive
      // (and new pods are refused while the index is full).
      EMBER_WARN_LIMITED("kubernetes: node %s has more than %zu pods; indexing the first %zu",
                         opts_.node_name.c_str(), PodStore::kMaxPods, PodStore::kMaxPods);
      break;
    }
  } while (!cont.empty());

  size_t n = pods.size();
  store_.replace_all(std::move(pods));
  resource_version_ = rv;
  lists_.add();
  update_gauges();
  mark_synced_now();
  if (!synced_.exchange(true, std::memory_order_acq_rel))
    EMBER_INFO("kubernetes: indexed %zu pods on node %s", n, opts_.node_name.c_str());
  synced_gauge_.set(1);
  return {Outcome::kOk, {}};
}

bool PodWatcher::handle_event(std::string_view line, Outcome* why) {
  auto ev = parse_watch_event(line);
  if (!ev.ok()) {
    count_error("decode");
    EMBER_WARN_LIMITED("kubernetes: bad pod watch event: %s", ev.error().message.c_str());
    *why = Outcome::kError;
    return false;
  }
  events_[int(ev->type)]->add();
  switch (ev->type) {
    case WatchEvent::Type::kError:
      if (is_gone(ev->status)) {
        *why = Outcome::kGone;
      } else {
        count_error("watch_error");
        EMBER_WARN_LIMITED("kubernetes: pod watch error %d %s: %s", ev->status.code,
                           ev->status.reason.c_str(), ev->status.message.c_str());
        *why = Outcome::kError;
      }
      return false;
    case WatchEvent::Type::kBookmark:
      break;
    case WatchEvent::Type::kAdded:
    case WatchEvent::Type::kModified:
      if (keep(*ev->pod)) {
        const bool known = store_.find_pod(ev->pod->info.uid) != nullptr;
        if (!store_.upsert(std::move(*ev->pod)) && !known) {
          ignored_too_many_.add();
          EMBER_WARN_LIMITED("kubernetes: the pod index holds %zu pods; a new one is not indexed",
                             PodStore::kMaxPods);
        }
      } else
        store_.remove(ev->pod->info.uid);
      break;
    case WatchEvent::Type::kDeleted:
      store_.remove(ev->pod->info.uid);
      break;
  }
  if (!ev->resource_version.empty()) resource_version_ = ev->resource_version;
  update_gauges();
  mark_synced_now();
  return true;
}

PodWatcher::Attempt PodWatcher::watch() {
  if (!read_token()) return {Outcome::kError, {}};
  int timeout_s = int(std::max<int64_t>(
      1, std::chrono::duration_cast<std::chrono::seconds>(opts_.watch_timeout).count()));
  watches_.add();
  std::string pending, error_body;
  Outcome ended = Outcome::kOk;
  size_t events = 0;
  // Inside an event longer than kMaxWatchLine: its bytes are dropped up to
  // its newline. The API server stores objects of at most ~1.5 MiB (etcd's
  // limit), so such an event comes from a broken or hostile server; the
  // watch goes on with the events after it (that one pod stays as it was).
  bool skipping = false;
  auto feed_lines = [&](bool final) {
    size_t start = 0, nl;
    while ((nl = pending.find('\n', start)) != std::string::npos) {
      std::string_view line(pending.data() + start, nl - start);
      start = nl + 1;
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      ++events;
      if (!handle_event(line, &ended)) return false;
    }
    pending.erase(0, start);
    if (final && pending.find_first_not_of(" \t\r") != std::string::npos) {
      std::string last = std::move(pending);
      pending.clear();
      ++events;
      return handle_event(last, &ended);
    }
    return true;
  };
  auto r = api_->get(
      pod_watch_url(opts_.api_server, opts_.node_name, resource_version_, timeout_s), token_,
      opts_.watch_timeout + opts_.request_timeout,
      [&](std::string_view chunk, int status) {
        if (status != 200) {
          error_body.append(chunk.substr(0, kMaxErrorBody - std::min(kMaxErrorBody, error_body.size())));
          return true;
        }
        if (skipping) {
          size_t nl = chunk.find('\n');
          if (nl == std::string_view::npos) return true;
          chunk.remove_prefix(nl + 1);
          skipping = false;
        }
        pending.append(chunk);
        if (!feed_lines(false)) return false;
        if (pending.size() > kMaxWatchLine) {
          pending.clear();
          pending.shrink_to_fit();
          skipping = true;
          count_error("too_large");
          EMBER_WARN_LIMITED("kubernetes: a pod watch event exceeds %zu bytes; skipped", kMaxWatchLine);
        }
        return true;
      },
      stopping_);
  if (r.aborted) return {Outcome::kStopped, {}};
  if (r.sink_stopped) return {ended, {}};  // kGone, or kError already counted
  if (r.failure != TransportFailure::kNone) {
    // A watch cut mid-stream (API server restart, load balancer idle
    // timeout): resume from the last resourceVersion after a backoff.
    count_error(transport_failure_name(r.failure));
    EMBER_WARN_LIMITED("kubernetes: pod watch on %s failed (%s): %s", opts_.api_server.c_str(),
                       transport_failure_name(r.failure), r.error.c_str());
    return {Outcome::kError, {}};
  }
  if (r.status == 410) return {Outcome::kGone, {}};
  if (r.status != 200) return {http_error(r.status, error_body, "watching pods"), r.retry_after};
  // A normal end (timeoutSeconds passed): apply a last unterminated line
  // (not the tail of a skipped one).
  if (!skipping && !feed_lines(true)) return {ended, {}};
  return {Outcome::kOk, {}, events == 0};
}

void PodWatcher::run() {
  name_this_thread("ember-podwatch");
  // Owns api_, token_ and resource_version_ for its whole life.
  bool need_list = true;
  int failures = 0;   // consecutive errors: the backoff exponent
  int gone_in_a_row = 0;
  while (!stopping_.load(std::memory_order_acquire)) {
    auto began = std::chrono::steady_clock::now();
    Attempt a = need_list ? list() : watch();
    if (a.outcome == Outcome::kStopped) break;
    bool back_off = false;
    switch (a.outcome) {
      case Outcome::kOk:
        if (need_list) {
          need_list = false;
          gone_in_a_row = 0;
          failures = 0;
        } else if (a.idle && std::chrono::steady_clock::now() - began < std::chrono::seconds(1)) {
          // A watch the server ends at once, without events or an error,
          // would otherwise spin; treat it like a failure for pacing only.
          failures = std::min(failures + 1, 30);
          back_off = true;
        } else {
          failures = 0;
        }
        break;
      case Outcome::kGone:
        // The resourceVersion is too old: the events in between are lost,
        // so only a full list is correct. Once at once; repeatedly, paced.
        relists_expired_.add();
        EMBER_INFO("kubernetes: pod watch resourceVersion %s expired; re-listing",
                   resource_version_.c_str());
        need_list = true;
        back_off = ++gone_in_a_row > 1;
        if (back_off) failures = std::min(failures + 1, 30);
        break;
      case Outcome::kError:
        failures = std::min(failures + 1, 30);
        back_off = true;
        break;
      case Outcome::kStopped: break;
    }
    if (!back_off) continue;
    // Exponential backoff with "equal jitter": half fixed, half random, so
    // agents on every node do not retry in lockstep after an outage.
    Duration base = opts_.min_backoff;
    for (int i = 1; i < failures && base < opts_.max_backoff; ++i) base *= 2;
    base = std::min(base, opts_.max_backoff);
    Duration wait = base / 2 + Duration(int64_t(double((base / 2).count()) * random01()));
    if (a.retry_after) wait = std::max(wait, std::min(*a.retry_after, kMaxRetryAfter));
    if (!sleep_for(wait)) break;
  }
}

}  // namespace ember
