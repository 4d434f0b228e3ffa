#include "k8s/cgroup.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace ember {
namespace {

// Ids and UIDs below are random, in the shapes the runtimes produce.
constexpr const char* kId1 = "0c8ab91214f3d0d1b7167e8deb4d724e64490844a95da8036464d6f7dea1693d";
constexpr const char* kId2 = "03143ef42f644586e69c312df599a8cf292168296322dfa2147fbce533b05a84";
constexpr const char* kId3 = "4a5f9a34ce014a973b690f461c5920014668c3f0329da2ed420abb9f0a113dfb";
constexpr const char* kId4 = "8cef06eda60711493fcf5bf15ebb418de8999289f272b3acb25fe7f95338baa7";
constexpr const char* kId5 = "d4cc4d500cd8c6c3145246cd609422456f75f904d5321e2d27a6cd850079a5c2";
constexpr const char* kId6 = "372685a5a86156e3ae4ce9f26aa0adbd77cfc6e8804e70304e82166bbf8cdfb8";
constexpr const char* kUid1 = "b7d44db8-fa6a-4b16-b47f-eb447b69b413";
constexpr const char* kUid1u = "b7d44db8_fa6a_4b16_b47f_eb447b69b413";
constexpr const char* kUid2 = "d6d4cf2e-175b-474a-a61f-2692be4ad299";
constexpr const char* kUid2u = "d6d4cf2e_175b_474a_a61f_2692be4ad299";
constexpr const char* kUid3 = "efd0d365-b1e0-4564-9435-142793cc4ce2";
constexpr const char* kUid3u = "efd0d365_b1e0_4564_9435_142793cc4ce2";
constexpr const char* kStaticUid = "6e9ce1292d809e8e7ee9b2ed6869818f";  // md5 UID of a static pod

// Ubuntu 20.04 (systemd 245, hybrid): 12 v1 hierarchies plus the unified
// "0::" line that only systemd uses. `p` is the container path runc writes to
// every controller; rdma is often left at the root.
std::string ubuntu_hybrid(const std::string& p, const std::string& systemd, const std::string& unified) {
  return "12:rdma:/\n"
         "11:memory:" + p + "\n"
         "10:cpu,cpuacct:" + p + "\n"
         "9:perf_event:" + p + "\n"
         "8:pids:" + p + "\n"
         "7:net_cls,net_prio:" + p + "\n"
         "6:hugetlb:" + p + "\n"
         "5:devices:" + p + "\n"
         "4:blkio:" + p + "\n"
         "3:cpuset:" + p + "\n"
         "2:freezer:" + p + "\n"
         "1:name=systemd:" + systemd + "\n"
         "0::" + unified + "\n";
}

// CentOS 7 / RHEL 7 (systemd 219, legacy v1 only, "cpuacct,cpu" order).
std::string centos7(const std::string& p, std::string systemd = "") {
  if (systemd.empty()) systemd = p;
  return "11:perf_event:" + p + "\n"
         "10:devices:" + p + "\n"
         "9:freezer:" + p + "\n"
         "8:memory:" + p + "\n"
         "7:cpuset:" + p + "\n"
         "6:blkio:" + p + "\n"
         "5:hugetlb:" + p + "\n"
         "4:pids:" + p + "\n"
         "3:cpuacct,cpu:" + p + "\n"
         "2:net_prio,net_cls:" + p + "\n"
         "1:name=systemd:" + systemd + "\n";
}

// Debian 10 / Ubuntu 18.04 (legacy v1, 12 hierarchies incl. rdma).
std::string debian10(const std::string& p) {
  return "12:pids:" + p + "\n"
         "11:rdma:/\n"
         "10:hugetlb:" + p + "\n"
         "9:net_cls,net_prio:" + p + "\n"
         "8:perf_event:" + p + "\n"
         "7:cpuset:" + p + "\n"
         "6:freezer:" + p + "\n"
         "5:memory:" + p + "\n"
         "4:blkio:" + p + "\n"
         "3:devices:" + p + "\n"
         "2:cpu,cpuacct:" + p + "\n"
         "1:name=systemd:" + p + "\n";
}

std::string v2(const std::string& p) { return "0::" + p + "\n"; }

struct Case {
  std::string name;
  std::string text;
  CgroupInfo want;
};

std::vector<Case> cases() {
  const std::string id1 = kId1, id2 = kId2, id3 = kId3, id4 = kId4, id5 = kId5, id6 = kId6;
  const std::string uid1 = kUid1, uid1u = kUid1u, uid2 = kUid2, uid2u = kUid2u, uid3 = kUid3,
                    uid3u = kUid3u;
  std::vector<Case> c;

  // ---- docker ----
  {
    std::string p = "/docker/" + id1;
    c.push_back({"DockerCgroupfsV1", centos7(p), {p, id1, "docker", "", "", ""}});
  }
  {
    std::string p = "/system.slice/docker-" + id1 + ".scope";
    c.push_back({"DockerSystemdV1", centos7(p), {p, id1, "docker", "", "", "docker-" + id1 + ".scope"}});
    c.push_back({"DockerSystemdV2", v2(p), {p, id1, "docker", "", "", "docker-" + id1 + ".scope"}});
    c.push_back({"DockerSystemdHybrid", ubuntu_hybrid(p, p, p),
                 {p, id1, "docker", "", "", "docker-" + id1 + ".scope"}});
  }
  {
    std::string p = "/docker/" + id2;
    c.push_back({"DockerCgroupfsV2", v2(p), {p, id2, "docker", "", "", ""}});
  }
  {
    // Hybrid host with an old runc that never joined the unified hierarchy:
    // the 0:: line still shows containerd's cgroup, the v1 lines the container.
    std::string p = "/docker/" + id2;
    c.push_back({"DockerHybridOldRuncUnifiedSaysShim",
                 ubuntu_hybrid(p, p, "/system.slice/containerd.service"),
                 {p, id2, "docker", "", "", ""}});
  }
  {
    // systemd re-attached some controllers after a daemon-reload: name=systemd
    // points at the login session, the remaining controllers at the container.
    std::string p = "/docker/" + id3;
    std::string text =
        "10:perf_event:" + p + "\n9:cpuset:" + p + "\n8:net_cls:" + p +
        "\n7:devices:/user.slice\n6:hugetlb:" + p + "\n5:blkio:/user.slice\n4:memory:/user.slice\n"
        "3:cpuacct,cpu:/user.slice\n2:freezer:" + p +
        "\n1:name=systemd:/user.slice/user-52321.slice/session-128207.scope\n";
    c.push_back({"DockerV1PartlyMovedOut", text, {p, id3, "docker", "", "", ""}});
  }
  {
    // A 32-hex id from a vendor docker build; trusted because of /docker/.
    std::string p = "/docker/c8cef9e2ff114e429cb845559c4a0dff";
    c.push_back({"DockerShortIdUnderDocker", centos7(p),
                 {p, "c8cef9e2ff114e429cb845559c4a0dff", "docker", "", "", ""}});
  }
  {
    // The shim itself lives in the daemon's service, not in a container.
    std::string p = "/system.slice/containerd.service";
    c.push_back({"ContainerdShimIsNotAContainer", debian10(p), {p, "", "", "", "", "containerd.service"}});
  }

  // ---- Kubernetes + containerd ----
  {
    std::string p = "/kubepods/burstable/pod" + uid1 + "/" + id1;
    c.push_back({"K8sContainerdCgroupfsBurstableV1", debian10(p), {p, id1, "", uid1, "burstable", ""}});
    c.push_back({"K8sContainerdCgroupfsBurstableV2", v2(p), {p, id1, "", uid1, "burstable", ""}});
  }
  {
    std::string p = "/kubepods/pod" + uid2 + "/" + id2;
    c.push_back({"K8sCgroupfsGuaranteedV1", debian10(p), {p, id2, "", uid2, "guaranteed", ""}});
  }
  {
    std::string p = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid1u +
                    ".slice/cri-containerd-" + id3 + ".scope";
    std::string unit = "cri-containerd-" + id3 + ".scope";
    c.push_back({"K8sContainerdSystemdBurstableV1", debian10(p), {p, id3, "containerd", uid1, "burstable", unit}});
    c.push_back({"K8sContainerdSystemdBurstableV2", v2(p), {p, id3, "containerd", uid1, "burstable", unit}});
    c.push_back({"K8sContainerdSystemdBurstableHybrid", ubuntu_hybrid(p, p, p),
                 {p, id3, "containerd", uid1, "burstable", unit}});
  }
  {
    std::string p = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid2u +
                    ".slice/cri-containerd-" + id4 + ".scope";
    c.push_back({"K8sContainerdSystemdBestEffortV2", v2(p),
                 {p, id4, "containerd", uid2, "besteffort", "cri-containerd-" + id4 + ".scope"}});
  }
  {
    std::string p = "/kubepods.slice/kubepods-pod" + uid3u + ".slice/cri-containerd-" + id5 + ".scope";
    c.push_back({"K8sContainerdSystemdGuaranteedV2", v2(p),
                 {p, id5, "containerd", uid3, "guaranteed", "cri-containerd-" + id5 + ".scope"}});
  }
  {
    // dockershim / cri-dockerd with the systemd driver.
    std::string p = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid3u +
                    ".slice/docker-" + id6 + ".scope";
    c.push_back({"K8sDockerSystemdBestEffortV1", centos7(p),
                 {p, id6, "docker", uid3, "besteffort", "docker-" + id6 + ".scope"}});
  }
  {
    // kubelet on the systemd driver, containerd left at SystemdCgroup=false:
    // runc took "slice:prefix:id" literally as a directory name.
    std::string leaf = "kubepods-besteffort-pod" + uid2u + ".slice:cri-containerd:" + id1;
    std::string text = "11:perf_event:/" + leaf + "\n" +
                       "10:blkio:/system.slice/containerd.service/" + leaf + "\n" +
                       "9:cpuacct,cpu:/system.slice/containerd.service/" + leaf + "\n" +
                       "8:cpuset:/" + leaf + "\n" + "7:hugetlb:/" + leaf + "\n" +
                       "6:devices:/system.slice/containerd.service/" + leaf + "\n" +
                       "5:pids:/system.slice/containerd.service/" + leaf + "\n" +
                       "4:memory:/system.slice/containerd.service/" + leaf + "\n" +
                       "3:net_prio,net_cls:/" + leaf + "\n" + "2:freezer:/" + leaf + "\n" +
                       "1:name=systemd:/system.slice/containerd.service/" + leaf + "\n";
    std::string best = "/system.slice/containerd.service/" + leaf;
    c.push_back({"K8sContainerdMisconfiguredSystemdTriple", text,
                 {best, id1, "containerd", uid2, "besteffort", "containerd.service"}});
  }
  {
    // Static pods (kube-apiserver, etcd) carry the kubelet's md5 UID.
    std::string p = std::string("/kubepods/burstable/pod") + kStaticUid + "/" + id2;
    c.push_back({"K8sStaticPodMd5Uid", debian10(p), {p, id2, "", kStaticUid, "burstable", ""}});
  }
  {
    // The pod sandbox's pause container is a container like any other.
    std::string p = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid1u +
                    ".slice/cri-containerd-" + id6 + ".scope";
    c.push_back({"K8sPauseContainer", v2(p),
                 {p, id6, "containerd", uid1, "burstable", "cri-containerd-" + id6 + ".scope"}});
  }

  // ---- cri-o ----
  {
    std::string p = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid1u +
                    ".slice/crio-" + id2 + ".scope";
    c.push_back({"CrioSystemdV1", centos7(p), {p, id2, "cri-o", uid1, "burstable", "crio-" + id2 + ".scope"}});
  }
  {
    // crun moves the workload into a "container" child of the scope.
    std::string p = "/kubepods.slice/kubepods-pod" + uid2u + ".slice/crio-" + id3 + ".scope/container";
    c.push_back({"CrioSystemdCrunV2", v2(p), {p, id3, "cri-o", uid2, "guaranteed", "crio-" + id3 + ".scope"}});
  }
  {
    std::string p = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid1u +
                    ".slice/crio-conmon-" + id2 + ".scope";
    c.push_back({"CrioConmonSystemdV2", v2(p),
                 {p, "", "cri-o", uid1, "burstable", "crio-conmon-" + id2 + ".scope"}});
  }
  {
    std::string p = "/kubepods/besteffort/pod" + uid3 + "/crio-" + id4;
    c.push_back({"CrioCgroupfsV1", debian10(p), {p, id4, "cri-o", uid3, "besteffort", ""}});
  }
  {
    std::string p = "/kubepods/besteffort/pod" + uid3 + "/crio-conmon-" + id4;
    c.push_back({"CrioConmonCgroupfsV2", v2(p), {p, "", "cri-o", uid3, "besteffort", ""}});
  }

  // ---- podman ----
  {
    std::string p = "/machine.slice/libpod-" + id1 + ".scope/container";
    c.push_back({"PodmanRootfulV2", v2(p), {p, id1, "podman", "", "", "libpod-" + id1 + ".scope"}});
  }
  {
    // A systemd-in-container on a hybrid host: the container's systemd runs
    // in init.scope inside the container's scope.
    std::string p = "/machine.slice/libpod-" + id2 + ".scope";
    std::string text = "12:pids:" + p + "\n11:memory:" + p + "\n10:blkio:" + p + "\n9:devices:" + p +
                       "\n8:freezer:" + p + "\n7:rdma:" + p + "\n6:hugetlb:" + p + "\n5:cpu,cpuacct:" + p +
                       "\n4:net_cls,net_prio:" + p + "\n3:cpuset:" + p + "\n2:perf_event:" + p +
                       "\n1:name=systemd:" + p + "/init.scope\n0::" + p + "/init.scope\n";
    c.push_back({"PodmanSystemdContainerHybrid", text, {p + "/init.scope", id2, "podman", "", "", "init.scope"}});
  }
  {
    std::string p = "/machine.slice/libpod-conmon-" + id1 + ".scope";
    c.push_back({"PodmanConmonV2", v2(p), {p, "", "podman", "", "", "libpod-conmon-" + id1 + ".scope"}});
  }
  {
    std::string p = "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id3 + ".scope";
    c.push_back({"PodmanRootlessV2", v2(p), {p, id3, "podman", "", "", "libpod-" + id3 + ".scope"}});
  }
  {
    std::string p = "/user.slice/user-0.slice/user@0.service/machine.slice/libpod-" + id4 + ".scope/container";
    c.push_back({"PodmanRootInUserSessionV2", v2(p), {p, id4, "podman", "", "", "libpod-" + id4 + ".scope"}});
  }
  {
    // A podman pod is not a Kubernetes pod: no pod_uid.
    std::string p = "/machine.slice/machine-libpod_pod_09ecfd8f2d77f1b64c5d501d1dde0ff401fa35441ba9c3ea21b79d3e925e9892.slice/libpod-" + id5 + ".scope/container";
    c.push_back({"PodmanPodV2", v2(p), {p, id5, "podman", "", "", "libpod-" + id5 + ".scope"}});
  }
  {
    std::string p = "/libpod_parent/libpod-" + id6;
    c.push_back({"PodmanCgroupfsV1", debian10(p), {p, id6, "podman", "", "", ""}});
  }

  // ---- containerd outside Kubernetes ----
  {
    std::string p = "/system.slice/nerdctl-" + id2 + ".scope";
    c.push_back({"NerdctlSystemdV2", v2(p), {p, id2, "containerd", "", "", "nerdctl-" + id2 + ".scope"}});
  }
  {
    // containerd's default cgroupfs path is /<namespace>/<id>: runtime unknown.
    std::string p = "/default/" + id3;
    c.push_back({"ContainerdNamespaceCgroupfsV2", v2(p), {p, id3, "", "", "", ""}});
  }
  {
    std::string p = "/ecs/6fdbb2af909b0a1b08a1530d9fd14c8a/" + id4;
    c.push_back({"EcsTaskV1", debian10(p), {p, id4, "", "", "", ""}});
  }

  // ---- k3s ----
  {
    // k3s' embedded containerd on the cgroupfs driver (its default before
    // v1.23.7 and whenever the host is not systemd): bare ids.
    std::string p = "/kubepods/besteffort/pod" + uid1 + "/" + id5;
    c.push_back({"K3sCgroupfsV1", debian10(p), {p, id5, "", uid1, "besteffort", ""}});
    c.push_back({"K3sCgroupfsV2", v2(p), {p, id5, "", uid1, "besteffort", ""}});
  }
  {
    // k3s on a systemd + cgroup v2 host uses the systemd driver.
    std::string p = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid1u +
                    ".slice/cri-containerd-" + id6 + ".scope";
    c.push_back({"K3sSystemdV2", v2(p),
                 {p, id6, "containerd", uid1, "besteffort", "cri-containerd-" + id6 + ".scope"}});
  }
  {
    // The k3s server process itself.
    c.push_back({"K3sServerService", v2("/system.slice/k3s.service"),
                 {"/system.slice/k3s.service", "", "", "", "", "k3s.service"}});
  }

  // ---- nested ----
  {
    std::string p = "/docker/" + id1 + "/docker/" + id2;
    c.push_back({"DockerInDockerV1", debian10(p), {p, id2, "docker", "", "", ""}});
  }
  {
    // dind on a v2 host: the inner daemon uses cgroupfs inside the outer scope.
    std::string p = "/system.slice/docker-" + id1 + ".scope/docker/" + id3;
    c.push_back({"DockerInDockerV2", v2(p), {p, id3, "docker", "", "", "docker-" + id1 + ".scope"}});
  }
  {
    // kind/k3d node container on a v1 host, kubelet on cgroupfs inside it.
    std::string p = "/docker/" + id1 + "/kubepods/burstable/pod" + uid2 + "/" + id4;
    c.push_back({"KindNodeCgroupfsV1", debian10(p), {p, id4, "", uid2, "burstable", ""}});
  }
  {
    // kind on a v2 host: systemd driver with cgroupRoot /kubelet inside the
    // node's docker scope.
    std::string p = "/system.slice/docker-" + id1 +
                    ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/"
                    "kubelet-kubepods-burstable-pod" + uid3u + ".slice/cri-containerd-" + id5 + ".scope";
    c.push_back({"KindNodeSystemdV2", v2(p),
                 {p, id5, "containerd", uid3, "burstable", "cri-containerd-" + id5 + ".scope"}});
  }
  {
    // kind's own systemd services inside the node: the node is the container.
    std::string p = "/system.slice/docker-" + id1 + ".scope/system.slice/containerd.service";
    c.push_back({"KindNodeContainerdServiceV2", v2(p), {p, id1, "docker", "", "", "containerd.service"}});
  }
  {
    // Kubernetes inside a Kubernetes pod (e.g. a CI runner running kind with
    // cgroupfs): the innermost pod wins.
    std::string p = "/kubepods/burstable/pod" + uid1 + "/" + id1 + "/kubepods/besteffort/pod" + uid2 + "/" + id2;
    c.push_back({"PodInPodV2", v2(p), {p, id2, "", uid2, "besteffort", ""}});
  }
  {
    // A systemd-based image under docker: the service inside the container.
    std::string p = "/system.slice/docker-" + id6 + ".scope/system.slice/nginx.service";
    c.push_back({"SystemdInDockerV2", v2(p), {p, id6, "docker", "", "", "nginx.service"}});
  }

  // ---- systemd, no container ----
  c.push_back({"SystemdServiceV2", v2("/system.slice/nginx.service"),
               {"/system.slice/nginx.service", "", "", "", "", "nginx.service"}});
  c.push_back({"SystemdServiceV1", centos7("/system.slice/nginx.service"),
               {"/system.slice/nginx.service", "", "", "", "", "nginx.service"}});
  c.push_back({"SystemdTemplatedServiceV2", v2("/system.slice/system-getty.slice/getty@tty1.service"),
               {"/system.slice/system-getty.slice/getty@tty1.service", "", "", "", "", "getty@tty1.service"}});
  c.push_back({"UserSessionV2", v2("/user.slice/user-1000.slice/session-3.scope"),
               {"/user.slice/user-1000.slice/session-3.scope", "", "", "", "", "session-3.scope"}});
  c.push_back({"UserSessionHybrid",
               ubuntu_hybrid("/user.slice", "/user.slice/user-1000.slice/session-3.scope",
                             "/user.slice/user-1000.slice/session-3.scope"),
               {"/user.slice/user-1000.slice/session-3.scope", "", "", "", "", "session-3.scope"}});
  c.push_back({"UserManagerAppScopeV2",
               v2("/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-2713.scope"),
               {"/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-2713.scope", "", "",
                "", "", "app-gnome-firefox-2713.scope"}});
  c.push_back({"InitV2", v2("/init.scope"), {"/init.scope", "", "", "", "", "init.scope"}});
  c.push_back({"InitV1", centos7("/", "/init.scope"),
               {"/init.scope", "", "", "", "", "init.scope"}});
  c.push_back({"RootV2", v2("/"), {"/", "", "", "", "", ""}});
  c.push_back({"RootV1", debian10("/"), {"/", "", "", "", "", ""}});
  c.push_back({"KernelThreadHybrid", ubuntu_hybrid("/", "/", "/"), {"/", "", "", "", "", ""}});
  {
    // Read from inside a private cgroup namespace: everything looks like root.
    c.push_back({"InsideContainerCgroupnsV2", v2("/"), {"/", "", "", "", "", ""}});
  }
  {
    // The reader's cgroup namespace is below the target's.
    std::string p = "/../../kubepods/besteffort/pod" + uid1 + "/" + id1;
    c.push_back({"OutsideReadersNamespaceV2", v2(p), {p, id1, "", uid1, "besteffort", ""}});
  }
  {
    // The kernel marks removed v2 cgroups.
    std::string p = "/system.slice/docker-" + id2 + ".scope";
    c.push_back({"DeletedCgroupV2", "0::" + p + " (deleted)\n",
                 {p, id2, "docker", "", "", "docker-" + id2 + ".scope"}});
  }
  c.push_back({"CrlfLineEndings", "0::/system.slice/sshd.service\r\n",
               {"/system.slice/sshd.service", "", "", "", "", "sshd.service"}});
  c.push_back({"NoTrailingNewline", "0::/system.slice/cron.service",
               {"/system.slice/cron.service", "", "", "", "", "cron.service"}});

  // ---- garbage ----
  c.push_back({"Empty", "", {}});
  c.push_back({"OnlyNewlines", "\n\n\n", {}});
  c.push_back({"Garbage", "hello world\n::\nx:y:/z\n12:pids\n0::relative/path\n:memory:/docker/abc\n\x01\xff:\n",
               {}});
  c.push_back({"GarbageAroundOneGoodLine",
               "not a cgroup line\n0::/system.slice/docker-" + id4 + ".scope\n99999999999999999999::\n",
               {"/system.slice/docker-" + id4 + ".scope", id4, "docker", "", "", "docker-" + id4 + ".scope"}});
  c.push_back({"ShortHexIsNotAnId", v2("/docker/abc123"), {"/docker/abc123", "", "", "", "", ""}});
  c.push_back({"Bare63HexIsNotAnId", v2("/" + id1.substr(1)), {"/" + id1.substr(1), "", "", "", "", ""}});
  c.push_back({"UppercaseIdIsNotAnId", v2("/system.slice/docker-ABCDEF0123456789.scope"),
               {"/system.slice/docker-ABCDEF0123456789.scope", "", "", "", "", "docker-ABCDEF0123456789.scope"}});
  c.push_back({"PodWithBadUid", v2("/kubepods/burstable/podnot-a-uid/" + id1),
               {"/kubepods/burstable/podnot-a-uid/" + id1, id1, "", "", "burstable", ""}});
  c.push_back({"PodOutsideKubepodsIgnored", v2("/pod" + uid1 + "/" + id1),
               {"/pod" + uid1 + "/" + id1, id1, "", "", "", ""}});
  return c;
}

class ProcCgroupTest : public ::testing::TestWithParam<Case> {};

TEST_P(ProcCgroupTest, Parses) {
  const Case& tc = GetParam();
  CgroupInfo got = parse_proc_cgroup(tc.text);
  EXPECT_EQ(got.path, tc.want.path);
  EXPECT_EQ(got.container_id, tc.want.container_id);
  EXPECT_EQ(got.runtime, tc.want.runtime);
  EXPECT_EQ(got.pod_uid, tc.want.pod_uid);
  EXPECT_EQ(got.qos_class, tc.want.qos_class);
  EXPECT_EQ(got.systemd_unit, tc.want.systemd_unit);
}

INSTANTIATE_TEST_SUITE_P(Table, ProcCgroupTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

TEST(CgroupPath, SystemdPodUidUnderscoresBecomeDashes) {
  auto i = parse_cgroup_path(std::string("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod") +
                             kUid1u + ".slice");
  EXPECT_EQ(i.pod_uid, kUid1);
  EXPECT_EQ(i.qos_class, "burstable");
  EXPECT_EQ(i.container_id, "");
  EXPECT_EQ(i.systemd_unit, "");
}

TEST(CgroupPath, QosSliceWithoutPod) {
  auto i = parse_cgroup_path("/kubepods.slice/kubepods-besteffort.slice");
  EXPECT_EQ(i.qos_class, "besteffort");
  EXPECT_EQ(i.pod_uid, "");
}

TEST(CgroupPath, KeepsPathVerbatim) {
  EXPECT_EQ(parse_cgroup_path("").path, "");
  EXPECT_EQ(parse_cgroup_path("//docker//x/").path, "//docker//x/");
}

TEST(CgroupPath, EmptyComponentsAreSkipped) {
  auto i = parse_cgroup_path(std::string("//docker//") + kId1 + "/");
  EXPECT_EQ(i.container_id, kId1);
  EXPECT_EQ(i.runtime, "docker");
}

TEST(CgroupPath, TripleWithTooManyColonsIsIgnored) {
  auto i = parse_cgroup_path(std::string("/a:b:c:") + kId1);
  EXPECT_EQ(i.container_id, "");
}

TEST(CgroupPath, NeverCrashesOnRandomInput) {
  // Alphabet biased towards the tokens the parser looks for.
  const std::string alphabet = "/:-_.\n\r 0123456789abcdefkubepodsliceservicscoperdockerlibpodcrio(deleted)\xff";
  std::mt19937 rng(42);
  for (int n = 0; n < 20000; ++n) {
    std::string s(rng() % 200, ' ');
    for (char& ch : s) ch = alphabet[rng() % alphabet.size()];
    CgroupInfo a = parse_proc_cgroup(s);
    CgroupInfo b = parse_cgroup_path(s);
    EXPECT_LE(a.container_id.size(), 64u);
    EXPECT_LE(b.container_id.size(), 64u);
  }
  // Embedded NULs and a very long line.
  std::string nul("0::/docker/\0\0\0", 14);
  EXPECT_EQ(parse_proc_cgroup(nul).container_id, "");
  std::string huge = "0::" + std::string(1 << 20, '/') + "docker/" + kId1;
  EXPECT_EQ(parse_proc_cgroup(huge).container_id, kId1);
}

}  // namespace
}  // namespace ember
