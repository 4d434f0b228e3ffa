// Kubernetes API decoding (k8s/kube_api.h): PodList pages and watch events
// shaped exactly as the API server sends them, container ids of every
// runtime, the workload behind each kind of controller, request URLs, and
// resolving the in-cluster configuration. Also the PodStore index semantics.
#include "k8s/kube_api.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "k8s/pod_watch.h"

namespace ember {
namespace {

const std::string kIdA = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
const std::string kIdB = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";
const std::string kIdC = "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6";
const std::string kIdD = "18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4";
const std::string kIdE = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea";
const std::string kIdF = "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111";
const std::string kIdG = "cd0aa9856147b6c5b4ff2b7dfee5da20aa38253099ef1b4a64aced233c9afe29";

std::string replace_ids(std::string s) {
  const std::map<std::string, std::string> ids = {{"@A", kIdA}, {"@B", kIdB}, {"@C", kIdC},
                                                  {"@D", kIdD}, {"@E", kIdE}, {"@F", kIdF},
                                                  {"@G", kIdG}};
  for (const auto& [k, v] : ids)
    for (size_t p; (p = s.find(k)) != std::string::npos;) s.replace(p, k.size(), v);
  return s;
}

// A PodList as `kubectl get --raw '/api/v1/pods?fieldSelector=spec.nodeName=node-a'`
// prints it (trimmed of fields the parser ignores only where noted).
const std::string kPodList = replace_ids(R"({
  "kind": "PodList",
  "apiVersion": "v1",
  "metadata": {"resourceVersion": "48213"},
  "items": [
    {
      "metadata": {
        "name": "web-7d9f8b6c5d-x2k4p",
        "generateName": "web-7d9f8b6c5d-",
        "namespace": "shop",
        "uid": "6f1c3c3e-2f4b-4a55-9b1e-0d5f6c7a8b90",
        "resourceVersion": "48100",
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5d"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-05-01T09:59:00Z"},
        "ownerReferences": [
          {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8b6c5d",
           "uid": "0a7f1b2c-0000-4000-8000-000000000001", "controller": true,
           "blockOwnerDeletion": true}
        ],
        "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}]
      },
      "spec": {
        "nodeName": "node-a",
        "initContainers": [{"name": "init-config", "image": "busybox:1.36"}],
        "containers": [
          {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}]},
          {"name": "log-shipper", "image": "fluent/fluent-bit:2.2"}
        ]
      },
      "status": {
        "phase": "Running",
        "podIP": "10.244.1.7",
        "initContainerStatuses": [
          {"name": "init-config", "state": {"terminated": {"exitCode": 0, "reason": "Completed",
           "containerID": "containerd://@C"}}, "ready": true, "restartCount": 0,
           "image": "docker.io/library/busybox:1.36", "imageID": "docker.io/library/busybox@sha256:1",
           "containerID": "containerd://@C"}
        ],
        "containerStatuses": [
          {"name": "nginx", "state": {"running": {"startedAt": "2024-05-01T10:00:05Z"}},
           "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                        "containerID": "containerd://@D"}},
           "ready": true, "restartCount": 1, "image": "docker.io/library/nginx:1.25",
           "imageID": "docker.io/library/nginx@sha256:2", "containerID": "containerd://@A",
           "started": true},
          {"name": "log-shipper", "state": {"running": {}}, "lastState": {}, "ready": true,
           "restartCount": 0, "image": "", "imageID": "", "containerID": "containerd://@B"}
        ]
      }
    },
    {
      "metadata": {
        "name": "node-exporter-9xk2l", "namespace": "monitoring",
        "uid": "11111111-2222-4333-8444-555555555555", "resourceVersion": "47000",
        "labels": {"app.kubernetes.io/name": "node-exporter", "controller-revision-hash": "6c8b9d"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "node-exporter",
                             "uid": "u-ds", "controller": true, "blockOwnerDeletion": true}]
      },
      "spec": {"nodeName": "node-a", "containers": [{"name": "node-exporter", "image": "prom/node-exporter:v1.7.0"}]},
      "status": {"phase": "Running", "containerStatuses": [
        {"name": "node-exporter", "ready": true, "restartCount": 0,
         "image": "quay.io/prometheus/node-exporter:v1.7.0", "containerID": "cri-o://@E"}]}
    },
    {
      "metadata": {
        "name": "db-0", "namespace": "shop", "uid": "22222222-2222-4333-8444-555555555555",
        "resourceVersion": "47500",
        "labels": {"app": "db", "statefulset.kubernetes.io/pod-name": "db-0"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db",
                             "uid": "u-sts", "controller": true}]
      },
      "spec": {"nodeName": "node-a", "containers": [{"name": "postgres", "image": "postgres:16"}],
               "ephemeralContainers": [{"name": "debugger", "image": "busybox"}]},
      "status": {"phase": "Running",
        "containerStatuses": [{"name": "postgres", "image": "postgres:16", "containerID": "docker://@F"}],
        "ephemeralContainerStatuses": [{"name": "debugger", "image": "docker.io/library/busybox:latest",
                                        "containerID": "docker://@G"}]}
    },
    {
      "metadata": {
        "name": "backup-28512345-7xq9z", "namespace": "ops", "uid": "33333333-2222-4333-8444-555555555555",
        "resourceVersion": "48000",
        "labels": {"batch.kubernetes.io/job-name": "backup-28512345", "job-name": "backup-28512345"},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "backup-28512345",
                             "uid": "u-job", "controller": true, "blockOwnerDeletion": true}]
      },
      "spec": {"nodeName": "node-a", "containers": [{"name": "backup", "image": "restic/restic"}]},
      "status": {"phase": "Succeeded", "containerStatuses": []}
    },
    {
      "metadata": {
        "name": "migrate-2-abcde", "namespace": "ops", "uid": "44444444-2222-4333-8444-555555555555",
        "resourceVersion": "48001",
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "migrate-2",
                             "uid": "u-job2", "controller": true}]
      },
      "spec": {"nodeName": "node-a", "containers": [{"name": "migrate", "image": "app:1"}]},
      "status": {"phase": "Running"}
    },
    {
      "metadata": {
        "name": "debug-shell", "namespace": "default", "uid": "55555555-2222-4333-8444-555555555555",
        "resourceVersion": "48002",
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "not-a-controller",
                             "uid": "u-cm"}]
      },
      "spec": {"nodeName": "node-a", "containers": [{"name": "sh", "image": "busybox"}]},
      "status": {"phase": "Pending", "containerStatuses": [
        {"name": "sh", "state": {"waiting": {"reason": "ContainerCreating"}}, "ready": false,
         "restartCount": 0, "image": "busybox", "imageID": "", "started": false}]}
    },
    {
      "metadata": {
        "name": "manual-rs-q8w7e", "namespace": "default", "uid": "66666666-2222-4333-8444-555555555555",
        "resourceVersion": "48003",
        "labels": {"app": "manual"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "manual-rs",
                             "uid": "u-rs", "controller": true}]
      },
      "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "app:2"}]},
      "status": {}
    }
  ]
})");

const PodRecord* by_name(const PodListPage& page, const std::string& name) {
  for (const auto& p : page.pods)
    if (p.info.name == name) return &p;
  return nullptr;
}

TEST(KubeApi, ParsesPodListLikeTheApiServerSendsIt) {
  auto page = parse_pod_list(kPodList);
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->resource_version, "48213");
  EXPECT_EQ(page->continue_token, "");
  ASSERT_EQ(page->pods.size(), 7u);

  const PodRecord* web = by_name(*page, "web-7d9f8b6c5d-x2k4p");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->info.namespace_name, "shop");
  EXPECT_EQ(web->info.uid, "6f1c3c3e-2f4b-4a55-9b1e-0d5f6c7a8b90");
  EXPECT_EQ(web->info.node_name, "node-a");
  EXPECT_EQ(web->resource_version, "48100");
  EXPECT_EQ(web->info.labels, (std::map<std::string, std::string>{{"app", "web"},
                                                                 {"pod-template-hash", "7d9f8b6c5d"}}));
  EXPECT_EQ(web->info.annotations.at("kubectl.kubernetes.io/restartedAt"), "2024-05-01T09:59:00Z");
  EXPECT_EQ(web->info.controller_kind, "Deployment");
  EXPECT_EQ(web->info.controller_name, "web");
  // Running containers, the init container, and the previous instance of the
  // restarted nginx; the status image wins, the spec image fills a blank.
  std::vector<PodContainer> want = {
      {kIdA, "containerd", "nginx", "docker.io/library/nginx:1.25"},
      {kIdD, "containerd", "nginx", "docker.io/library/nginx:1.25"},
      {kIdB, "containerd", "log-shipper", "fluent/fluent-bit:2.2"},
      {kIdC, "containerd", "init-config", "docker.io/library/busybox:1.36"},
  };
  EXPECT_EQ(web->containers, want);

  const PodRecord* ds = by_name(*page, "node-exporter-9xk2l");
  ASSERT_NE(ds, nullptr);
  EXPECT_EQ(ds->info.controller_kind, "DaemonSet");
  EXPECT_EQ(ds->info.controller_name, "node-exporter");
  ASSERT_EQ(ds->containers.size(), 1u);
  EXPECT_EQ(ds->containers[0].id, kIdE);
  EXPECT_EQ(ds->containers[0].runtime, "cri-o");

  const PodRecord* sts = by_name(*page, "db-0");
  ASSERT_NE(sts, nullptr);
  EXPECT_EQ(sts->info.controller_kind, "StatefulSet");
  EXPECT_EQ(sts->info.controller_name, "db");
  ASSERT_EQ(sts->containers.size(), 2u);
  EXPECT_EQ(sts->containers[0].id, kIdF);
  EXPECT_EQ(sts->containers[0].runtime, "docker");
  EXPECT_EQ(sts->containers[1].id, kIdG);
  EXPECT_EQ(sts->containers[1].name, "debugger");

  const PodRecord* cron = by_name(*page, "backup-28512345-7xq9z");
  ASSERT_NE(cron, nullptr);
  EXPECT_EQ(cron->info.controller_kind, "CronJob");
  EXPECT_EQ(cron->info.controller_name, "backup");
  EXPECT_TRUE(cron->containers.empty());

  const PodRecord* job = by_name(*page, "migrate-2-abcde");
  ASSERT_NE(job, nullptr);
  EXPECT_EQ(job->info.controller_kind, "Job");
  EXPECT_EQ(job->info.controller_name, "migrate-2");

  // A bare pod (its only owner is not a controller), still creating its
  // container: no controller, no container id yet.
  const PodRecord* bare = by_name(*page, "debug-shell");
  ASSERT_NE(bare, nullptr);
  EXPECT_EQ(bare->info.controller_kind, "");
  EXPECT_EQ(bare->info.controller_name, "");
  EXPECT_TRUE(bare->containers.empty());
  EXPECT_TRUE(bare->info.labels.empty());

  // A ReplicaSet without pod-template-hash was not made by a Deployment.
  const PodRecord* rs = by_name(*page, "manual-rs-q8w7e");
  ASSERT_NE(rs, nullptr);
  EXPECT_EQ(rs->info.controller_kind, "ReplicaSet");
  EXPECT_EQ(rs->info.controller_name, "manual-rs");
}

TEST(KubeApi, ParsesContinueTokenAndEmptyLists) {
  auto page = parse_pod_list(
      R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7","continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ","remainingItemCount":3},"items":[]})");
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->continue_token, "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ");
  EXPECT_TRUE(page->pods.empty());
  auto null_items = parse_pod_list(R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"8"},"items":null})");
  ASSERT_TRUE(null_items.ok()) << null_items.error().message;
  EXPECT_EQ(null_items->resource_version, "8");
}

TEST(KubeApi, RejectsWhatIsNotAPodList) {
  EXPECT_FALSE(parse_pod_list("").ok());
  EXPECT_FALSE(parse_pod_list("<html>502 Bad Gateway</html>").ok());
  EXPECT_FALSE(parse_pod_list("[1,2]").ok());
  EXPECT_FALSE(parse_pod_list(R"({"kind":"PodList","metadata":{"resourceVersion":"1"},"items":{}})").ok());
  EXPECT_FALSE(parse_pod_list(R"({"kind":"PodList","metadata":{},"items":[]})").ok());
  EXPECT_FALSE(parse_pod_list(R"({"kind":"NodeList","metadata":{"resourceVersion":"1"},"items":[]})").ok());
  auto status = parse_pod_list(
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods is forbidden: User \"system:serviceaccount:ember:ember\" cannot list resource \"pods\"","reason":"Forbidden","code":403})");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("403"), std::string::npos) << status.error().message;
  EXPECT_NE(status.error().message.find("forbidden"), std::string::npos) << status.error().message;
  // Fields of the wrong type read as absent instead of throwing.
  auto odd = parse_pod_list(
      R"({"kind":"PodList","metadata":{"resourceVersion":"1"},"items":[{"metadata":{"uid":"u1","name":5,"labels":{"a":1,"b":"x"},"ownerReferences":"no"},"status":{"containerStatuses":[{"containerID":7},{"containerID":"containerd://"},{"name":"ok","containerID":"containerd://abc"}]}}]})");
  ASSERT_TRUE(odd.ok()) << odd.error().message;
  ASSERT_EQ(odd->pods.size(), 1u);
  EXPECT_EQ(odd->pods[0].info.name, "");
  EXPECT_EQ(odd->pods[0].info.labels, (std::map<std::string, std::string>{{"b", "x"}}));
  ASSERT_EQ(odd->pods[0].containers.size(), 1u);
  EXPECT_EQ(odd->pods[0].containers[0].id, "abc");
}

TEST(KubeApi, ParsesWatchEvents) {
  auto added = parse_watch_event(replace_ids(
      R"({"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","namespace":"shop","uid":"uid-1","resourceVersion":"501","labels":{"pod-template-hash":"abc12"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-abc12","uid":"rs","controller":true}]},"spec":{"nodeName":"node-a","containers":[{"name":"app","image":"app:1"}]},"status":{"containerStatuses":[{"name":"app","image":"app:1","containerID":"containerd://@A"}]}}})"));
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_EQ(added->type, WatchEvent::Type::kAdded);
  EXPECT_EQ(added->resource_version, "501");
  ASSERT_TRUE(added->pod.has_value());
  EXPECT_EQ(added->pod->info.uid, "uid-1");
  EXPECT_EQ(added->pod->info.controller_kind, "Deployment");
  EXPECT_EQ(added->pod->info.controller_name, "web");
  ASSERT_EQ(added->pod->containers.size(), 1u);
  EXPECT_EQ(added->pod->containers[0].id, kIdA);

  auto modified = parse_watch_event(
      R"({"type":"MODIFIED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","namespace":"shop","uid":"uid-1","resourceVersion":"502"},"spec":{"nodeName":"node-a"},"status":{}}})");
  ASSERT_TRUE(modified.ok()) << modified.error().message;
  EXPECT_EQ(modified->type, WatchEvent::Type::kModified);
  EXPECT_EQ(modified->resource_version, "502");

  auto deleted = parse_watch_event(
      R"({"type":"DELETED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","namespace":"shop","uid":"uid-1","resourceVersion":"503","deletionTimestamp":"2024-05-01T10:00:00Z"},"spec":{"nodeName":"node-a"},"status":{"phase":"Succeeded"}}})");
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  EXPECT_EQ(deleted->type, WatchEvent::Type::kDeleted);
  EXPECT_EQ(deleted->pod->info.uid, "uid-1");

  // A bookmark, exactly as the API server sends one.
  auto bookmark = parse_watch_event(
      R"({"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12746","creationTimestamp":null,"annotations":{"k8s.io/initial-events-end":"true"}},"spec":{"containers":null},"status":{}}})");
  ASSERT_TRUE(bookmark.ok()) << bookmark.error().message;
  EXPECT_EQ(bookmark->type, WatchEvent::Type::kBookmark);
  EXPECT_EQ(bookmark->resource_version, "12746");
  EXPECT_FALSE(bookmark->pod.has_value());

  auto gone = parse_watch_event(
      R"json({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (2)","reason":"Expired","code":410}})json");
  ASSERT_TRUE(gone.ok()) << gone.error().message;
  EXPECT_EQ(gone->type, WatchEvent::Type::kError);
  EXPECT_EQ(gone->status.code, 410);
  EXPECT_EQ(gone->status.reason, "Expired");
  EXPECT_EQ(gone->status.message, "too old resource version: 1 (2)");
  EXPECT_TRUE(is_gone(gone->status));

  auto other_error = parse_watch_event(
      R"({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"internal error","reason":"InternalError","code":500}})");
  ASSERT_TRUE(other_error.ok());
  EXPECT_FALSE(is_gone(other_error->status));
  EXPECT_STREQ(watch_event_type_name(WatchEvent::Type::kBookmark), "bookmark");
}

TEST(KubeApi, RejectsBrokenWatchEvents) {
  EXPECT_FALSE(parse_watch_event("").ok());
  EXPECT_FALSE(parse_watch_event(R"({"type":"ADDED","object":{"kind":"Pod","metadata":{"uid":)").ok());
  EXPECT_FALSE(parse_watch_event(R"({"type":"ADDED"})").ok());
  EXPECT_FALSE(parse_watch_event(R"({"type":"RESIZED","object":{"metadata":{"uid":"u"}}})").ok());
  EXPECT_FALSE(parse_watch_event(R"({"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"no-uid"}}})").ok());
  EXPECT_FALSE(parse_watch_event(R"({"type":"ADDED","object":{"kind":"Node","metadata":{"uid":"u"}}})").ok());
  EXPECT_FALSE(parse_watch_event(R"({"type":"BOOKMARK","object":{"kind":"Pod","metadata":{}}})").ok());
}

TEST(KubeApi, ParsesStatusBodies) {
  auto s = parse_status(
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->code, 401);
  EXPECT_EQ(s->reason, "Unauthorized");
  EXPECT_FALSE(parse_status("<html>").has_value());
  EXPECT_FALSE(parse_status(R"({"kind":"PodList"})").has_value());
}

TEST(KubeApi, SplitsContainerIdsOfEveryRuntime) {
  EXPECT_EQ(split_container_id("containerd://" + kIdA), std::make_pair(std::string("containerd"), kIdA));
  EXPECT_EQ(split_container_id("cri-o://" + kIdB), std::make_pair(std::string("cri-o"), kIdB));
  EXPECT_EQ(split_container_id("docker://" + kIdC), std::make_pair(std::string("docker"), kIdC));
  EXPECT_EQ(split_container_id(""), std::make_pair(std::string(), std::string()));
  EXPECT_EQ(split_container_id("containerd://"), std::make_pair(std::string(), std::string()));
  EXPECT_EQ(split_container_id(kIdA), std::make_pair(std::string(), std::string()));
  EXPECT_EQ(split_container_id("://" + kIdA), std::make_pair(std::string(), std::string()));
}

TEST(KubeApi, WorkloadOfEachController) {
  std::map<std::string, std::string> hashed = {{"pod-template-hash", "5d8f7c9b4"}};
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(workload_of("ReplicaSet", "api-server-5d8f7c9b4", hashed), P("Deployment", "api-server"));
  // The hash must be the suffix, and something must precede it.
  EXPECT_EQ(workload_of("ReplicaSet", "api-server-1234", hashed), P("ReplicaSet", "api-server-1234"));
  EXPECT_EQ(workload_of("ReplicaSet", "-5d8f7c9b4", hashed), P("ReplicaSet", "-5d8f7c9b4"));
  EXPECT_EQ(workload_of("ReplicaSet", "api-server-5d8f7c9b4", {}), P("ReplicaSet", "api-server-5d8f7c9b4"));
  EXPECT_EQ(workload_of("Job", "nightly-report-28512345", {}), P("CronJob", "nightly-report"));
  EXPECT_EQ(workload_of("Job", "nightly-report-285123456", {}), P("CronJob", "nightly-report"));
  EXPECT_EQ(workload_of("Job", "import-1234567", {}), P("Job", "import-1234567"));
  EXPECT_EQ(workload_of("Job", "import-2024x0101", {}), P("Job", "import-2024x0101"));
  EXPECT_EQ(workload_of("Job", "-28512345", {}), P("Job", "-28512345"));
  EXPECT_EQ(workload_of("StatefulSet", "db", hashed), P("StatefulSet", "db"));
  EXPECT_EQ(workload_of("Node", "node-a", {}), P("Node", "node-a"));  // static (mirror) pods
}

TEST(KubeApi, BuildsListAndWatchUrls) {
  EXPECT_EQ(pod_list_url("https://10.96.0.1:443", "node-a", 500, ""),
            "https://10.96.0.1:443/api/v1/pods?fieldSelector=spec.nodeName%3dnode-a&limit=500");
  EXPECT_EQ(pod_list_url("https://k:6443", "ip-10-0-1-2.ec2.internal", 2, "eyJ2Ijo+/=x"),
            "https://k:6443/api/v1/pods?fieldSelector=spec.nodeName%3dip-10-0-1-2.ec2.internal"
            "&limit=2&continue=eyJ2Ijo%2b%2f%3dx");
  EXPECT_EQ(pod_watch_url("https://k:6443", "node-a", "48213", 290),
            "https://k:6443/api/v1/pods?fieldSelector=spec.nodeName%3dnode-a&watch=1"
            "&resourceVersion=48213&allowWatchBookmarks=true&timeoutSeconds=290");
}

class ResolveInCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ember-kubecfg-XXXXXX";
    root_ = mkdtemp(tmpl);
    sa_ = root_ + kServiceAccountDir;
    std::filesystem::create_directories(sa_);
    write(sa_ + "/token", "eyJhbGciOiJSUzI1NiJ9.secret\n");
    write(sa_ + "/ca.crt", "-----BEGIN CERTIFICATE-----\n");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  static void write(const std::string& path, const std::string& s) { std::ofstream(path) << s; }
  EnvGetter env() {
    return [this](const std::string& k) -> std::optional<std::string> {
      auto it = env_.find(k);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
  }
  std::string root_, sa_;
  std::map<std::string, std::string> env_ = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                                             {"KUBERNETES_SERVICE_PORT", "443"},
                                             {"NODE_NAME", "node-a"}};
};

TEST_F(ResolveInCluster, FillsBlanksFromTheEnvironment) {
  auto o = resolve_in_cluster(KubeClientOptions{}, env(), root_);
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->api_server, "https://10.96.0.1:443");
  EXPECT_EQ(o->token_file, sa_ + "/token");
  EXPECT_EQ(o->ca_file, sa_ + "/ca.crt");
  EXPECT_EQ(o->node_name, "node-a");

  env_["KUBERNETES_SERVICE_HOST"] = "fd00:10:96::1";
  auto v6 = resolve_in_cluster(KubeClientOptions{}, env(), root_);
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_EQ(v6->api_server, "https://[fd00:10:96::1]:443");
}

TEST_F(ResolveInCluster, ExplicitSettingsWin) {
  write(root_ + "/my-token", "t");
  write(root_ + "/my-ca.pem", "c");
  KubeClientOptions in;
  in.api_server = "https://api.example.com:6443/";
  in.token_file = root_ + "/my-token";
  in.ca_file = root_ + "/my-ca.pem";
  in.node_name = "node-z";
  env_.clear();
  auto o = resolve_in_cluster(in, env(), root_);
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->api_server, "https://api.example.com:6443");
  EXPECT_EQ(o->token_file, root_ + "/my-token");
  EXPECT_EQ(o->ca_file, root_ + "/my-ca.pem");
  EXPECT_EQ(o->node_name, "node-z");
}

TEST_F(ResolveInCluster, SaysWhatIsMissing) {
  auto msg = [&](const KubeClientOptions& in) {
    auto o = resolve_in_cluster(in, env(), root_);
    return o.ok() ? std::string("ok") : o.error().message;
  };
  env_.erase("KUBERNETES_SERVICE_HOST");
  EXPECT_NE(msg({}).find("KUBERNETES_SERVICE_HOST"), std::string::npos) << msg({});
  env_["KUBERNETES_SERVICE_HOST"] = "10.96.0.1";

  KubeClientOptions plain;
  plain.api_server = "http://10.96.0.1:8080";
  EXPECT_NE(msg(plain).find("https://"), std::string::npos) << msg(plain);

  env_.erase("NODE_NAME");
  EXPECT_NE(msg({}).find("NODE_NAME"), std::string::npos) << msg({});
  env_["NODE_NAME"] = "node-a";

  std::filesystem::remove(sa_ + "/token");
  std::string m = msg({});
  EXPECT_NE(m.find(sa_ + "/token"), std::string::npos) << m;
  EXPECT_NE(m.find("does not exist"), std::string::npos) << m;
  write(sa_ + "/token", "t");

  write(sa_ + "/ca.crt", "");
  m = msg({});
  EXPECT_NE(m.find("ca.crt is empty"), std::string::npos) << m;
}

// --- PodStore: the index semantics, without a server ------------------------------

PodRecord pod(const std::string& uid, const std::string& name, std::vector<std::string> ids) {
  PodRecord r;
  r.info.uid = uid;
  r.info.name = name;
  r.info.namespace_name = "ns";
  r.info.node_name = "node-a";
  for (const auto& id : ids) r.containers.push_back({id, "containerd", "c-" + id.substr(0, 4), "img"});
  return r;
}

TEST(PodStore, AddsUpdatesAndRemovesPods) {
  PodStore s;
  EXPECT_EQ(s.generation(), 0u);
  EXPECT_FALSE(s.find_container(kIdA).has_value());
  EXPECT_TRUE(s.upsert(pod("u1", "one", {kIdA, kIdB})));
  uint64_t g1 = s.generation();
  EXPECT_GT(g1, 0u);
  auto a = s.find_container(kIdA);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->pod->name, "one");
  EXPECT_EQ(a->container_name, "c-" + kIdA.substr(0, 4));
  EXPECT_EQ(s.find_pod("u1").get(), a->pod.get());

  // The same content again (a status-only MODIFIED): no change, no bump.
  EXPECT_FALSE(s.upsert(pod("u1", "one", {kIdA, kIdB})));
  EXPECT_EQ(s.generation(), g1);

  // A container restarted: the old id goes, the new one comes; a reader's
  // earlier snapshot is untouched.
  auto old_info = s.find_pod("u1");
  auto changed = pod("u1", "one", {kIdA, kIdC});
  changed.info.labels["version"] = "2";
  EXPECT_TRUE(s.upsert(changed));
  EXPECT_GT(s.generation(), g1);
  EXPECT_FALSE(s.find_container(kIdB).has_value());
  ASSERT_TRUE(s.find_container(kIdC).has_value());
  EXPECT_EQ(s.find_container(kIdC)->pod->labels.at("version"), "2");
  EXPECT_TRUE(old_info->labels.empty());
  EXPECT_EQ(s.container_count(), 2u);

  EXPECT_TRUE(s.upsert(pod("u2", "two", {kIdD})));
  EXPECT_EQ(s.pod_count(), 2u);
  uint64_t g2 = s.generation();
  EXPECT_TRUE(s.remove("u1"));
  EXPECT_GT(s.generation(), g2);
  EXPECT_FALSE(s.remove("u1"));
  EXPECT_EQ(s.find_pod("u1"), nullptr);
  EXPECT_FALSE(s.find_container(kIdA).has_value());
  EXPECT_TRUE(s.find_container(kIdD).has_value());
  EXPECT_EQ(s.pod_count(), 1u);
  EXPECT_EQ(s.container_count(), 1u);
}

TEST(PodStore, ReplaceAllSwapsTheWholeContent) {
  PodStore s;
  s.upsert(pod("u1", "one", {kIdA}));
  s.upsert(pod("u2", "two", {kIdB}));
  uint64_t g = s.generation();
  std::vector<PodRecord> fresh;
  fresh.push_back(pod("u2", "two", {kIdB}));
  fresh.push_back(pod("u3", "three", {kIdC, kIdD}));
  s.replace_all(std::move(fresh));
  EXPECT_GT(s.generation(), g);
  EXPECT_EQ(s.find_pod("u1"), nullptr);
  EXPECT_FALSE(s.find_container(kIdA).has_value());
  EXPECT_EQ(s.find_container(kIdB)->pod->name, "two");
  EXPECT_EQ(s.find_container(kIdD)->pod->name, "three");
  EXPECT_EQ(s.pod_count(), 2u);
  EXPECT_EQ(s.container_count(), 3u);
}

}  // namespace
}  // namespace ember
