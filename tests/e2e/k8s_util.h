// Kubernetes pieces shared by the end-to-end tests: busybox containers that
// runc runs in the cgroups containerd gives pod containers, Pod objects as
// the API server returns them, and the profiles the agent writes, read back
// per series and pid.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "agent/export/pprof.h"
#include "e2e_util.h"
#include "profile.pb.h"

namespace ember::e2e {

inline constexpr const char* kNode = "e2e-node";

inline std::string random_hex(size_t n) {
  static std::mt19937_64 rng{std::random_device{}()};
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += digits[rng() % 16];
  return s;
}

inline std::string random_uid() {
  std::string h = random_hex(32);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" +
         h.substr(20);
}

// A busybox container run by runc, its cgroup where containerd puts a pod's
// container under the kubelet's systemd driver. Killed and deleted on
// destruction.
class RuncContainer {
  using json = nlohmann::json;

 public:
  RuncContainer(const std::string& dir, const std::string& pod_uid, const std::string& qos) {
    id_ = random_hex(64);
    name_ = "ember-e2e-" + id_.substr(0, 12);
    bundle_ = dir + "/" + name_;
    std::filesystem::create_directories(bundle_ + "/rootfs/bin");
    std::filesystem::copy_file(busybox_path(), bundle_ + "/rootfs/bin/busybox");
    std::filesystem::create_symlink("busybox", bundle_ + "/rootfs/bin/sh");
    if (!sh("runc spec --bundle '" + bundle_ + "'")) return;
    json spec = json::parse(read_file(bundle_ + "/config.json"));
    spec["process"]["terminal"] = false;
    spec["process"]["args"] = {"/bin/sh", "-c", "while :; do :; done"};
    std::string uid_ = pod_uid;
    std::replace(uid_.begin(), uid_.end(), '-', '_');
    std::string slice = "kubepods-" + qos;
    spec["linux"]["cgroupsPath"] = "/kubepods.slice/" + slice + ".slice/" + slice + "-pod" + uid_ +
                                   ".slice/cri-containerd-" + id_ + ".scope";
    std::ofstream(bundle_ + "/config.json") << spec.dump(1);
    if (!sh("runc run -d --bundle '" + bundle_ + "' " + name_ + " </dev/null >'" + bundle_ +
            "/runc.log' 2>&1"))
      return;
    std::string state_file = bundle_ + "/state.json";
    if (!sh("runc state " + name_ + " >'" + state_file + "'")) return;
    pid_ = json::parse(read_file(state_file)).value("pid", 0);
  }
  ~RuncContainer() {
    sh("runc kill " + name_ + " KILL >/dev/null 2>&1");
    for (int i = 0; i < 50 && !sh("runc delete -f " + name_ + " >/dev/null 2>&1"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  bool ok() const { return pid_ > 0; }
  int pid() const { return pid_; }
  const std::string& id() const { return id_; }
  std::string log() const { return read_file(bundle_ + "/runc.log"); }
  std::string proc_cgroup() const { return read_file("/proc/" + std::to_string(pid_) + "/cgroup"); }

  static std::string busybox_path() {
    for (const char* p : {"/usr/bin/busybox", "/bin/busybox"})
      if (std::filesystem::exists(p)) return p;
    return "";
  }

 private:
  static bool sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }
  std::string id_, name_, bundle_;
  int pid_ = 0;
};

// A Pod as the API server returns it, running one container.
inline nlohmann::json make_pod(const std::string& ns, const std::string& name, const std::string& uid,
                               const std::string& container, const std::string& image,
                               const std::string& container_id, nlohmann::json labels,
                               nlohmann::json annotations, nlohmann::json owners) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", name},
        {"namespace", ns},
        {"uid", uid},
        {"creationTimestamp", "2026-11-21T10:00:00Z"},
        {"labels", labels},
        {"annotations", annotations},
        {"ownerReferences", owners}}},
      {"spec",
       {{"nodeName", kNode},
        {"serviceAccountName", "default"},
        {"containers", {{{"name", container}, {"image", image}}}}}},
      {"status",
       {{"phase", "Running"},
        {"qosClass", "Burstable"},
        {"hostIP", "10.0.0.7"},
        {"podIP", "10.244.1.23"},
        {"containerStatuses",
         {{{"name", container},
           {"image", image},
           {"imageID", image + "@sha256:" + random_hex(64)},
           {"containerID", "containerd://" + container_id},
           {"ready", true},
           {"restartCount", 0},
           {"started", true},
           {"state", {{"running", {{"startedAt", "2026-11-21T10:00:01Z"}}}}}}}}}}};
}

// Every profile file in `dir`: its series labels (from the pprof comment the
// directory exporter writes) and its samples per pid.
struct ProfileFile {
  std::string name;
  std::string labels;  // {a="1", b="2"}
  int64_t time_nanos = 0;
  std::map<int64_t, uint64_t> samples_by_pid;
};

inline std::vector<ProfileFile> read_profiles(const std::string& dir) {
  std::vector<ProfileFile> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& ent : std::filesystem::directory_iterator(dir)) {
    auto raw = gzip_decompress(read_file(ent.path().string()));
    if (!raw.ok()) continue;
    perftools::profiles::Profile p;
    if (!p.ParseFromString(*raw)) continue;
    ProfileFile f;
    f.name = ent.path().filename().string();
    f.time_nanos = p.time_nanos();
    for (int64_t c : p.comment()) {
      const std::string& text = p.string_table(int(c));
      if (text.rfind("labels: ", 0) == 0) f.labels = text.substr(8);
    }
    for (const auto& s : p.sample()) {
      int64_t pid = 0;
      for (const auto& l : s.label())
        if (p.string_table(int(l.key())) == "pid") pid = l.num();
      f.samples_by_pid[pid] += uint64_t(s.value(0));
    }
    out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.time_nanos < b.time_nanos; });
  return out;
}

}  // namespace ember::e2e
