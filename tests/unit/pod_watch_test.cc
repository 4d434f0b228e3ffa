// The pod watcher (k8s/pod_watch.h) against kubeapi, a local HTTPS stand-in
// for the API server's pod endpoints (tests/support/kubeapi): list with
// pagination and the node's field selector, watch, re-watch from the last
// resourceVersion (events and bookmarks), re-list on 410 Gone (ERROR event
// and HTTP 410), token rotation, a certificate from the wrong CA, server
// errors with Retry-After, and a prompt stop().
#include "k8s/pod_watch.h"

#include <gtest/gtest.h>

#include "support/kubeapi.h"

namespace ember {
namespace {

using nlohmann::json;
using testing::KubeApiServer;
using testing::KubeCerts;
using testing::ScratchDir;
using testing::eventually;
using namespace std::chrono_literals;

std::string cid(int n) {
  char buf[65];
  std::snprintf(buf, sizeof(buf), "%064x", n);
  return buf;
}

// A Pod as the API server stores it: one running container per id.
json make_pod(const std::string& name, const std::string& node, std::vector<std::string> ids,
              json labels = json::object()) {
  json statuses = json::array(), containers = json::array();
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string cname = "c" + std::to_string(i);
    containers.push_back({{"name", cname}, {"image", "app:" + std::to_string(i)}});
    statuses.push_back({{"name", cname},
                        {"state", {{"running", {{"startedAt", "2024-05-01T10:00:00Z"}}}}},
                        {"ready", true},
                        {"restartCount", 0},
                        {"image", "registry.local/app:" + std::to_string(i)},
                        {"imageID", "registry.local/app@sha256:0"},
                        {"containerID", "containerd://" + ids[i]}});
  }
  labels["pod-template-hash"] = "5d8f7c9b4";
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name},
            {"namespace", "shop"},
            {"uid", "uid-" + name},
            {"labels", labels},
            {"ownerReferences",
             {{{"apiVersion", "apps/v1"},
               {"kind", "ReplicaSet"},
               {"name", "web-5d8f7c9b4"},
               {"uid", "rs-uid"},
               {"controller", true}}}}}},
          {"spec", {{"nodeName", node}, {"containers", containers}}},
          {"status", {{"phase", "Running"}, {"containerStatuses", statuses}}}};
}

class PodWatchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { certs_ = new KubeCerts(); }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(certs_->ok()) << "openssl could not make the test certificates";
    token_file_ = dir_ / "token";
    testing::write_file_atomically(token_file_, "token-one\n");
  }

  void start_server(bool wrong_cert = false) {
    std::string p = wrong_cert ? "wrong-" : "";
    server_ = std::make_unique<KubeApiServer>(*certs_ / (p + "server.pem"), *certs_ / (p + "server.key"),
                                              *certs_ / (p + "ca.pem"), "token-one");
    ASSERT_TRUE(server_->running()) << server_->log();
  }

  KubeClientOptions options() {
    KubeClientOptions o;
    o.api_server = server_->url();
    o.token_file = token_file_;
    o.ca_file = *certs_ / "ca.pem";  // the right CA, whatever the server presents
    o.node_name = "node-a";
    o.request_timeout = 5s;
    o.watch_timeout = 30s;
    o.min_backoff = 20ms;
    o.max_backoff = 200ms;
    return o;
  }

  std::unique_ptr<PodWatcher> start_watcher(KubeClientOptions o) {
    auto w = PodWatcher::create(std::move(o), metrics_);
    EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().message);
    if (!w.ok()) return nullptr;
    (*w)->start();
    return std::move(*w);
  }

  uint64_t counter(const std::string& name, const std::string& labels = "") {
    return metrics_.counter(name, labels).value();
  }
  uint64_t errors(const std::string& reason) {
    return counter("ember_k8s_api_errors_total", "reason=\"" + reason + "\"");
  }
  uint64_t events(const std::string& type) {
    return counter("ember_k8s_watch_events_total", "type=\"" + type + "\"");
  }
  std::vector<json> watch_requests() {
    std::vector<json> out;
    for (const auto& r : server_->requests())
      if (r["watch"].get<bool>()) out.push_back(r);
    return out;
  }

  static KubeCerts* certs_;
  ScratchDir dir_;
  std::string token_file_;
  std::unique_ptr<KubeApiServer> server_;
  Metrics metrics_;
};
KubeCerts* PodWatchTest::certs_ = nullptr;

TEST_F(PodWatchTest, ListsPagesThenFollowsAddsUpdatesAndDeletes) {
  start_server();
  ASSERT_TRUE(server_->put_pod(make_pod("web-1", "node-a", {cid(1), cid(2)}, {{"app", "web"}})));
  ASSERT_TRUE(server_->put_pod(make_pod("web-2", "node-a", {cid(3)})));
  ASSERT_TRUE(server_->put_pod(make_pod("web-3", "node-a", {cid(4)})));
  ASSERT_TRUE(server_->put_pod(make_pod("elsewhere", "node-b", {cid(9)})));
  auto o = options();
  o.page_size = 2;  // three pods: two pages
  auto w = start_watcher(o);
  ASSERT_TRUE(w);

  ASSERT_TRUE(eventually([&] { return w->synced(); })) << server_->log();
  EXPECT_EQ(w->pod_count(), 3u);
  EXPECT_EQ(w->container_count(), 4u);
  auto c1 = w->find_container(cid(1));
  ASSERT_TRUE(c1.has_value());
  EXPECT_EQ(c1->pod->name, "web-1");
  EXPECT_EQ(c1->pod->namespace_name, "shop");
  EXPECT_EQ(c1->pod->labels.at("app"), "web");
  EXPECT_EQ(c1->pod->controller_kind, "Deployment");
  EXPECT_EQ(c1->pod->controller_name, "web");
  EXPECT_EQ(c1->container_name, "c0");
  EXPECT_EQ(c1->image, "registry.local/app:0");
  EXPECT_EQ(w->find_container(cid(2))->container_name, "c1");
  EXPECT_EQ(w->find_pod("uid-web-2")->name, "web-2");
  // The other node's pod is not asked for, so not indexed.
  EXPECT_FALSE(w->find_container(cid(9)).has_value());
  EXPECT_EQ(w->find_pod("uid-elsewhere"), nullptr);

  // The list asked for this node only, in pages, following `continue`.
  auto reqs = server_->requests();
  ASSERT_GE(reqs.size(), 2u);
  EXPECT_EQ(reqs[0]["selector"], "spec.nodeName=node-a");
  EXPECT_EQ(reqs[0]["limit"], "2");
  EXPECT_EQ(reqs[0]["continue"], "");
  EXPECT_NE(reqs[1]["continue"], "");
  EXPECT_FALSE(reqs[1]["watch"].get<bool>());
  EXPECT_EQ(counter("ember_k8s_pod_lists_total"), 1u);
  EXPECT_EQ(metrics_.total("ember_k8s_pods_tracked"), 3u);
  EXPECT_EQ(metrics_.total("ember_k8s_containers_tracked"), 4u);
  EXPECT_EQ(metrics_.total("ember_k8s_pods_synced"), 1u);
  EXPECT_GT(metrics_.total("ember_k8s_last_sync_timestamp_seconds"), 1'600'000'000u);

  // The watch resumes at the list's resourceVersion with bookmarks on.
  ASSERT_TRUE(eventually([&] { return !watch_requests().empty(); }));
  auto wr = watch_requests()[0];
  EXPECT_EQ(wr["selector"], "spec.nodeName=node-a");
  EXPECT_EQ(wr["allow_watch_bookmarks"], "true");
  EXPECT_EQ(wr["timeout_seconds"], "30");
  EXPECT_EQ(wr["resource_version"], "104");  // 100 + four pods

  // ADDED
  uint64_t gen = w->generation();
  ASSERT_TRUE(server_->put_pod(make_pod("web-4", "node-a", {cid(5)})));
  ASSERT_TRUE(eventually([&] { return w->find_container(cid(5)).has_value(); }));
  EXPECT_GT(w->generation(), gen);
  EXPECT_EQ(events("added"), 1u);

  // MODIFIED: web-1's second container restarted with a new id, and it got
  // a new label.
  gen = w->generation();
  ASSERT_TRUE(server_->put_pod(make_pod("web-1", "node-a", {cid(1), cid(6)}, {{"app", "web2"}})));
  ASSERT_TRUE(eventually([&] { return w->find_container(cid(6)).has_value(); }));
  EXPECT_FALSE(w->find_container(cid(2)).has_value());
  EXPECT_EQ(w->find_container(cid(1))->pod->labels.at("app"), "web2");
  EXPECT_GT(w->generation(), gen);
  EXPECT_EQ(events("modified"), 1u);

  // Pods on other nodes never reach the watcher.
  ASSERT_TRUE(server_->put_pod(make_pod("elsewhere-2", "node-b", {cid(10)})));

  // DELETED
  ASSERT_TRUE(server_->delete_pod("shop", "web-2"));
  ASSERT_TRUE(eventually([&] { return !w->find_container(cid(3)).has_value(); }));
  EXPECT_EQ(w->find_pod("uid-web-2"), nullptr);
  EXPECT_EQ(events("deleted"), 1u);
  EXPECT_EQ(w->pod_count(), 3u);
  EXPECT_EQ(metrics_.total("ember_k8s_pods_tracked"), 3u);
  EXPECT_EQ(metrics_.total("ember_k8s_containers_tracked"), 4u);
  EXPECT_FALSE(w->find_container(cid(10)).has_value());
  EXPECT_EQ(events("added"), 1u);
  EXPECT_EQ(counter("ember_k8s_pods_ignored_total", "reason=\"other_node\""), 0u);
  EXPECT_EQ(metrics_.total("ember_k8s_api_errors_total"), 0u);
}

// A server that lists 100,000 pods for one node (a broken or hostile one:
// the kubelet's default max-pods is 110): the index keeps 10,000, the pages
// after it are not fetched, and the watch still applies changes to the pods
// it holds while refusing new ones.
TEST_F(PodWatchTest, AHundredThousandPodsAreBounded) {
  start_server();
  ASSERT_TRUE(server_->put_pods(make_pod("bulk", "node-a", {cid(1)}), 100'000)) << server_->log();
  auto o = options();
  o.page_size = 300;  // the 34th page crosses 10,000
  auto w = start_watcher(o);
  ASSERT_TRUE(w);
  ASSERT_TRUE(eventually([&] { return w->synced(); }, 60s)) << server_->log();
  EXPECT_EQ(w->pod_count(), PodStore::kMaxPods);
  EXPECT_EQ(counter("ember_k8s_pods_ignored_total", "reason=\"too_many\""), 200u);
  size_t list_pages = 0;
  for (const auto& r : server_->requests())
    if (!r["watch"].get<bool>()) ++list_pages;
  EXPECT_EQ(list_pages, 34u);

  ASSERT_TRUE(eventually([&] { return !watch_requests().empty(); }));
  ASSERT_TRUE(server_->put_pod(make_pod("one-more", "node-a", {cid(7)})));
  ASSERT_TRUE(eventually([&] { return events("added") == 1; }));
  EXPECT_FALSE(w->find_container(cid(7)).has_value());
  EXPECT_EQ(counter("ember_k8s_pods_ignored_total", "reason=\"too_many\""), 201u);
  EXPECT_EQ(w->pod_count(), PodStore::kMaxPods);
}

// A 64 MiB watch event (the API server never sends one: etcd stores
// objects of at most ~1.5 MiB) is skipped, counted and logged, and the
// events after it still apply.
TEST_F(PodWatchTest, A64MiBWatchEventIsSkipped) {
  start_server();
  ASSERT_TRUE(server_->put_pod(make_pod("web-1", "node-a", {cid(1)})));
  auto w = start_watcher(options());
  ASSERT_TRUE(w);
  ASSERT_TRUE(eventually([&] { return w->synced(); })) << server_->log();
  ASSERT_TRUE(eventually([&] { return !watch_requests().empty(); }));

  json huge = make_pod("huge", "node-a", {cid(2)});
  huge["metadata"]["annotations"] = {{"junk", std::string(64u << 20, 'x')}};
  ASSERT_TRUE(server_->put_pod_slowly(huge));
  ASSERT_TRUE(server_->put_pod(make_pod("web-3", "node-a", {cid(3)})));
  ASSERT_TRUE(eventually([&] { return w->find_container(cid(3)).has_value(); }, 60s)) << server_->log();
  EXPECT_EQ(errors("too_large"), 1u);
  EXPECT_FALSE(w->find_container(cid(2)).has_value());
  EXPECT_TRUE(w->find_container(cid(1)).has_value());
  EXPECT_EQ(events("added"), 1u);  // web-3 only
}

TEST_F(PodWatchTest, RewatchesFromTheLastResourceVersionAndBookmark) {
  start_server();
  ASSERT_TRUE(server_->control("set?watch_max_events=1"));  // every watch ends after one event
  auto w = start_watcher(options());
  ASSERT_TRUE(w);
  ASSERT_TRUE(eventually([&] { return w->synced(); }));
  ASSERT_TRUE(eventually([&] { return watch_requests().size() == 1; }));
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(server_->put_pod(make_pod("p" + std::to_string(i), "node-a", {cid(i)})));
    ASSERT_TRUE(eventually([&] { return w->find_container(cid(i)).has_value(); }));
    ASSERT_TRUE(eventually([&] { return watch_requests().size() == size_t(i) + 1; }));
  }
  // Each watch resumed exactly after the one event the previous one got.
  auto wr = watch_requests();
  ASSERT_EQ(wr.size(), 4u);
  EXPECT_EQ(wr[0]["resource_version"], "100");
  EXPECT_EQ(wr[1]["resource_version"], "101");
  EXPECT_EQ(wr[2]["resource_version"], "102");
  EXPECT_EQ(wr[3]["resource_version"], "103");

  // A pod on another node moves the resourceVersion without an event for
  // this watcher; a bookmark tells it. After compaction, the next watch
  // must start from the bookmark's version: no 410, no re-list.
  ASSERT_TRUE(server_->control("set?watch_max_events=0"));
  ASSERT_TRUE(server_->control("close-watches"));
  ASSERT_TRUE(eventually([&] { return watch_requests().size() == 5; }));
  ASSERT_TRUE(server_->put_pod(make_pod("far", "node-b", {cid(20)})));  // rv 104
  ASSERT_TRUE(server_->control("bookmark"));
  ASSERT_TRUE(eventually([&] { return events("bookmark") == 1; }));
  ASSERT_TRUE(server_->control("compact"));
  ASSERT_TRUE(server_->control("close-watches"));
  ASSERT_TRUE(eventually([&] { return watch_requests().size() == 6; }));
  EXPECT_EQ(watch_requests()[5]["resource_version"], "104");
  ASSERT_TRUE(server_->put_pod(make_pod("p4", "node-a", {cid(4)})));
  ASSERT_TRUE(eventually([&] { return w->find_container(cid(4)).has_value(); }));
  EXPECT_EQ(counter("ember_k8s_pod_relists_total", "reason=\"expired\""), 0u);
  EXPECT_EQ(counter("ember_k8s_pod_lists_total"), 1u);
  EXPECT_GE(counter("ember_k8s_pod_watches_total"), 6u);
  EXPECT_EQ(metrics_.total("ember_k8s_api_errors_total"), 0u);
}

// The pod "doomed" is deleted and "newcomer" added where no watch sees it,
// and compaction drops those events: only a full re-list can make the
// index right.
void change_behind_the_watchers_back(KubeApiServer& s) {
  ASSERT_TRUE(s.delete_pod("shop", "doomed", /*silent=*/true));
  ASSERT_TRUE(s.put_pod(make_pod("newcomer", "node-a", {cid(3)}), /*silent=*/true));
  ASSERT_TRUE(s.control("compact"));
  ASSERT_TRUE(s.control("close-watches"));
}

TEST_F(PodWatchTest, RelistsWhenTheWatchErrorEventSaysGone) {
  start_server();
  ASSERT_TRUE(server_->put_pod(make_pod("keep", "node-a", {cid(1)})));
  ASSERT_TRUE(server_->put_pod(make_pod("doomed", "node-a", {cid(2)})));
  auto w = start_watcher(options());
  ASSERT_TRUE(w);
  ASSERT_TRUE(eventually([&] { return w->synced(); }));
  ASSERT_TRUE(eventually([&] { return watch_requests().size() == 1; }));
  ASSERT_TRUE(w->find_container(cid(2)).has_value());
  uint64_t gen = w->generation();

  change_behind_the_watchers_back(*server_);
  ASSERT_TRUE(eventually([&] { return counter("ember_k8s_pod_lists_total") == 2; })) << server_->log();
  EXPECT_EQ(counter("ember_k8s_pod_relists_total", "reason=\"expired\""), 1u);
  EXPECT_EQ(events("error"), 1u);
  EXPECT_FALSE(w->find_container(cid(2)).has_value());
  EXPECT_EQ(w->find_pod("uid-doomed"), nullptr);
  ASSERT_TRUE(w->find_container(cid(3)).has_value());
  EXPECT_EQ(w->find_container(cid(3))->pod->name, "newcomer");
  EXPECT_TRUE(w->find_container(cid(1)).has_value());
  EXPECT_GT(w->generation(), gen);
  EXPECT_EQ(w->pod_count(), 2u);
  // The stale watch got HTTP 200 and an ERROR event; then the watcher
  // listed and watched again from the new list's version.
  auto wr = watch_requests();
  ASSERT_TRUE(eventually([&] { return (wr = watch_requests()).size() == 3; }));
  EXPECT_EQ(wr[1]["status"], 200);
  EXPECT_EQ(wr[1]["resource_version"], "102");
  EXPECT_EQ(wr[2]["resource_version"], "104");
  EXPECT_EQ(metrics_.total("ember_k8s_api_errors_total"), 0u);  // expected, not an error

  // And it keeps following changes.
  ASSERT_TRUE(server_->put_pod(make_pod("later", "node-a", {cid(4)})));
  ASSERT_TRUE(eventually([&] { return w->find_container(cid(4)).has_value(); }));
}

TEST_F(PodWatchTest, RelistsOnHttp410) {
  start_server();
  ASSERT_TRUE(server_->control("set?watch_gone_http=1"));
  ASSERT_TRUE(server_->put_pod(make_pod("doomed", "node-a", {cid(2)})));
  auto w = start_watcher(options());
  ASSERT_TRUE(w);
  ASSERT_TRUE(eventually([&] { return watch_requests().size() == 1; }));
  change_behind_the_watchers_back(*server_);
  ASSERT_TRUE(eventually([&] { return counter("ember_k8s_pod_lists_total") == 2; })) << server_->log();
  EXPECT_EQ(counter("ember_k8s_pod_relists_total", "reason=\"expired\""), 1u);
  EXPECT_EQ(watch_requests()[1]["status"], 410);
  EXPECT_FALSE(w->find_container(cid(2)).has_value());
  EXPECT_TRUE(w->find_container(cid(3)).has_value());
}

TEST_F(PodWatchTest, PicksUpARotatedToken) {
  ::testing::internal::CaptureStderr();  // the log must never show a token
  start_server();
  ASSERT_TRUE(server_->put_pod(make_pod("a", "node-a", {cid(1)})));
  auto w = start_watcher(options());
  ASSERT_TRUE(w);
  ASSERT_TRUE(eventually([&] { return w->synced(); }));
  ASSERT_TRUE(eventually([&] { return watch_requests().size() == 1; }));

  // The server now accepts only the new token; the open watch is cut.
  ASSERT_TRUE(server_->control("set?token=token-two"));
  ASSERT_TRUE(server_->control("close-watches"));
  ASSERT_TRUE(eventually([&] { return errors("unauthorized") >= 2; }));  // backing off, retrying
  ASSERT_TRUE(server_->put_pod(make_pod("b", "node-a", {cid(2)})));
  EXPECT_FALSE(w->find_container(cid(2)).has_value());

  // The kubelet rotates the projected token file; the next request uses it.
  testing::write_file_atomically(token_file_, "token-two\n");
  ASSERT_TRUE(eventually([&] { return w->find_container(cid(2)).has_value(); })) << server_->log();
  auto wr = watch_requests();
  EXPECT_TRUE(wr.back()["auth_ok"].get<bool>());
  EXPECT_EQ(wr.back()["status"], 200);
  // 401s are retried by watching again (no relist was needed).
  EXPECT_EQ(counter("ember_k8s_pod_lists_total"), 1u);
  w->stop();
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(log.find("token-one"), std::string::npos) << log;
  EXPECT_EQ(log.find("token-two"), std::string::npos) << log;
}

TEST_F(PodWatchTest, RefusesAServerCertificateFromAnotherCa) {
  start_server(/*wrong_cert=*/true);
  ASSERT_TRUE(server_->put_pod(make_pod("a", "node-a", {cid(1)})));
  auto w = start_watcher(options());
  ASSERT_TRUE(w);
  ASSERT_TRUE(eventually([&] { return errors("tls") >= 2; }));
  EXPECT_FALSE(w->synced());
  EXPECT_EQ(w->pod_count(), 0u);
  EXPECT_FALSE(w->find_container(cid(1)).has_value());
  EXPECT_EQ(counter("ember_k8s_pod_lists_total"), 0u);
  w->stop();
  // No HTTP request got through the handshake (so the token never left).
  EXPECT_TRUE(server_->requests().empty());
}

TEST_F(PodWatchTest, RetriesServerErrorsAndHonoursRetryAfter) {
  start_server();
  ASSERT_TRUE(server_->put_pod(make_pod("a", "node-a", {cid(1)})));
  ASSERT_TRUE(server_->control("set?fail=2&code=503"));
  auto w = start_watcher(options());
  ASSERT_TRUE(w);
  ASSERT_TRUE(eventually([&] { return w->synced(); }));
  EXPECT_EQ(errors("server"), 2u);
  EXPECT_TRUE(w->find_container(cid(1)).has_value());
  ASSERT_TRUE(eventually([&] { return watch_requests().size() == 1; }));

  // 429 with Retry-After: 1 on the next watch: the one after waits >= 1 s,
  // far longer than the 200 ms backoff cap.
  ASSERT_TRUE(server_->control("set?fail=1&code=429&retry_after=1"));
  ASSERT_TRUE(server_->control("close-watches"));
  ASSERT_TRUE(eventually([&] { return errors("throttled") == 1; }));
  auto throttled_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] {
    auto wr = watch_requests();
    return wr.size() == 3 && wr[2]["status"] == 200;
  }));
  EXPECT_GE(std::chrono::steady_clock::now() - throttled_at, 800ms);
  ASSERT_TRUE(server_->put_pod(make_pod("b", "node-a", {cid(2)})));
  ASSERT_TRUE(eventually([&] { return w->find_container(cid(2)).has_value(); }));
}

TEST_F(PodWatchTest, StopInterruptsABlockedWatchAtOnce) {
  start_server();
  auto w = start_watcher(options());  // watch_timeout 30 s: the server stays silent
  ASSERT_TRUE(w);
  ASSERT_TRUE(eventually([&] { return watch_requests().size() == 1; }));
  std::this_thread::sleep_for(50ms);  // let it block in the transfer
  auto t0 = std::chrono::steady_clock::now();
  w->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
  EXPECT_TRUE(w->synced());  // the index stays readable after stop
}

TEST_F(PodWatchTest, StopInterruptsBackoffAndUnreachableServers) {
  auto o = KubeClientOptions{};
  o.api_server = "https://127.0.0.1:" + std::to_string(1);  // nothing listens on port 1
  o.token_file = token_file_;
  o.ca_file = *certs_ / "ca.pem";
  o.node_name = "node-a";
  o.min_backoff = 5s;
  o.max_backoff = 5s;
  auto w = start_watcher(o);
  ASSERT_TRUE(w);
  ASSERT_TRUE(eventually([&] { return errors("connect") == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  w->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
  EXPECT_FALSE(w->synced());
}

}  // namespace
}  // namespace ember
