#include "k8s/cgroup.h"

#include <algorithm>
#include <cstddef>
#include <utility>

namespace ember {
namespace {

constexpr std::string_view kScope = ".scope";
constexpr std::string_view kService = ".service";
constexpr std::string_view kSlice = ".slice";

bool is_lower_hex(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Runtimes write 64 hex digits. Shorter ids are accepted only where the
// context already says "this is a container" (a runtime prefix, a /docker/
// parent), and never below 12: a short hex-looking word proves nothing.
bool is_container_id(std::string_view s, size_t min_len) {
  return s.size() >= min_len && s.size() <= 64 && is_lower_hex(s);
}

// The part of a kubelet pod cgroup name after "pod": a UUID (whose dashes the
// systemd driver turns into underscores, since '-' is systemd's hierarchy
// separator) or, for static pods, the 32-hex md5 the kubelet derives.
std::string parse_pod_uid(std::string_view s) {
  std::string uid(s);
  for (char& c : uid)
    if (c == '_') c = '-';
  if (uid.size() == 32) {
    for (char c : uid)
      if (!is_hex(c)) return "";
    return uid;
  }
  if (uid.size() == 36) {
    for (size_t i = 0; i < uid.size(); ++i) {
      bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash ? uid[i] != '-' : !is_hex(uid[i])) return "";
    }
    return uid;
  }
  return "";
}

struct RuntimePrefix {
  std::string_view prefix;
  std::string_view runtime;
  bool conmon;  // the runtime's monitor process, not the container
};

// Longer prefixes first: "crio-conmon-" must win over "crio-".
constexpr RuntimePrefix kPrefixes[] = {
    {"cri-containerd-", "containerd", false},
    {"crio-conmon-", "cri-o", true},
    {"crio-", "cri-o", false},
    {"libpod-conmon-", "podman", true},
    {"libpod-", "podman", false},
    {"docker-", "docker", false},
    {"nerdctl-", "containerd", false},
};

// Walks a path from the root down. Later (deeper) components override what
// earlier ones said, which is what makes nested containers report the
// innermost one.
class PathWalker {
 public:
  void component(std::string_view c) {
    if (c.ends_with(kService) || c.ends_with(kScope)) info_.systemd_unit = std::string(c);
    if (c.find(':') != std::string_view::npos) {
      systemd_triple(c);
    } else if (c.ends_with(kSlice)) {
      kube_slice(c.substr(0, c.size() - kSlice.size()));
    } else if (c == "kubepods") {
      // A (possibly nested) kubelet root: whatever pod we were in is not
      // the one this process belongs to.
      info_.pod_uid.clear();
      info_.qos_class.clear();
      in_kubepods_ = true;
    } else if (in_kubepods_ && prev_ == "kubepods" && (c == "burstable" || c == "besteffort")) {
      info_.qos_class = std::string(c);
    } else if (!(in_kubepods_ && kube_pod(c))) {
      container(c);
    }
    prev_ = c;
  }

  CgroupInfo take() { return std::move(info_); }

 private:
  bool kube_pod(std::string_view c) {
    if (!c.starts_with("pod")) return false;
    std::string uid = parse_pod_uid(c.substr(3));
    if (uid.empty()) return false;
    info_.pod_uid = std::move(uid);
    if (prev_ == "kubepods") info_.qos_class = "guaranteed";
    return true;
  }

  // Under the systemd driver every slice name spells its whole ancestry
  // ("kubepods-burstable-pod<uid>.slice"), so one component is enough. Any
  // prefix before "kubepods" is a custom cgroup root (kind: "kubelet-").
  void kube_slice(std::string_view name) {
    size_t k = std::string_view::npos;
    for (size_t pos = 0; pos <= name.size();) {
      size_t dash = name.find('-', pos);
      std::string_view part = name.substr(pos, dash == std::string_view::npos ? dash : dash - pos);
      if (part == "kubepods") k = dash == std::string_view::npos ? name.size() : dash + 1;
      if (dash == std::string_view::npos) break;
      pos = dash + 1;
    }
    if (k == std::string_view::npos) return;
    std::string_view rest = k >= name.size() ? std::string_view() : name.substr(k);
    info_.qos_class.clear();
    info_.pod_uid.clear();
    bool has_qos = false;
    for (std::string_view q : {"burstable", "besteffort"}) {
      if (rest == q || rest.starts_with(std::string(q) + "-")) {
        info_.qos_class = std::string(q);
        rest.remove_prefix(std::min(rest.size(), q.size() + 1));
        has_qos = true;
        break;
      }
    }
    if (rest.starts_with("pod")) {
      std::string uid = parse_pod_uid(rest.substr(3));
      if (!uid.empty()) {
        info_.pod_uid = std::move(uid);
        if (!has_qos) info_.qos_class = "guaranteed";
      }
    }
  }

  // A systemd cgroupsPath ("slice:prefix:name") that a cgroupfs-configured
  // runc took literally as a directory name: kubelet on the systemd driver
  // with containerd's SystemdCgroup=false. Seen in the wild; still names the
  // pod and the container.
  void systemd_triple(std::string_view c) {
    size_t a = c.find(':');
    size_t b = c.find(':', a + 1);
    if (b == std::string_view::npos || c.find(':', b + 1) != std::string_view::npos) return;
    std::string_view slice = c.substr(0, a);
    if (slice.ends_with(kSlice)) kube_slice(slice.substr(0, slice.size() - kSlice.size()));
    std::string unit = std::string(c.substr(a + 1, b - a - 1)) + "-" + std::string(c.substr(b + 1));
    container(unit);
  }

  void container(std::string_view c) {
    std::string_view base = c;
    if (base.ends_with(kScope)) base.remove_suffix(kScope.size());
    for (const auto& p : kPrefixes) {
      if (!base.starts_with(p.prefix)) continue;
      std::string_view id = base.substr(p.prefix.size());
      if (!is_container_id(id, 12)) continue;
      info_.container_id = p.conmon ? std::string() : std::string(id);
      info_.runtime = std::string(p.runtime);
      return;
    }
    // Bare ids: docker's cgroupfs driver (/docker/<id>) and the kubelet's
    // cgroupfs layout (/kubepods/.../pod<uid>/<id>), where containerd, k3s and
    // cri-dockerd all write the same thing, so the runtime stays unknown.
    bool under_docker = prev_ == "docker";
    if (is_container_id(c, under_docker ? 12 : 64)) {
      info_.container_id = std::string(c);
      info_.runtime = under_docker ? "docker" : "";
    }
  }

  CgroupInfo info_;
  std::string_view prev_;
  bool in_kubepods_ = false;
};

// How much a parse says, to pick the most telling line of a v1/hybrid file.
int score(const CgroupInfo& i) {
  return (i.container_id.empty() ? 0 : 8) + (i.pod_uid.empty() ? 0 : 4) +
         (i.runtime.empty() ? 0 : 2) + (i.systemd_unit.empty() ? 0 : 1);
}

bool has_controller(std::string_view list, std::string_view name) {
  for (size_t pos = 0; pos <= list.size();) {
    size_t comma = list.find(',', pos);
    std::string_view c = list.substr(pos, comma == std::string_view::npos ? comma : comma - pos);
    if (c == name) return true;
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return false;
}

// Lower is preferred when two lines say equally much: the unified hierarchy,
// then the hierarchies container runtimes and systemd always populate.
int hierarchy_rank(std::string_view id, std::string_view controllers) {
  if (id == "0" && controllers.empty()) return 0;
  if (has_controller(controllers, "name=systemd")) return 1;
  if (has_controller(controllers, "cpu")) return 2;
  if (has_controller(controllers, "cpuacct")) return 3;
  if (has_controller(controllers, "memory")) return 4;
  return 5;
}

}  // namespace

CgroupInfo parse_cgroup_path(std::string_view path) {
  // The kernel marks a cgroup v2 path whose cgroup was removed.
  constexpr std::string_view kDeleted = " (deleted)";
  if (path.ends_with(kDeleted)) path.remove_suffix(kDeleted.size());
  PathWalker w;
  for (size_t pos = 0; pos < path.size();) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view c = path.substr(pos, slash - pos);
    // ".." appears when the reader's cgroup namespace is below the target's.
    if (!c.empty() && c != "." && c != "..") w.component(c);
    pos = slash + 1;
  }
  CgroupInfo info = w.take();
  info.path = std::string(path);
  return info;
}

CgroupInfo parse_proc_cgroup(std::string_view text) {
  CgroupInfo best;
  int best_score = -1, best_rank = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.ends_with('\r')) line.remove_suffix(1);

    // <hierarchy-id>:<controllers>:<path>; the path itself may contain ':'.
    size_t a = line.find(':');
    if (a == std::string_view::npos || a == 0) continue;
    size_t b = line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    std::string_view id = line.substr(0, a);
    bool digits = true;
    for (char c : id) digits = digits && c >= '0' && c <= '9';
    if (!digits) continue;
    std::string_view path = line.substr(b + 1);
    if (path.empty() || path[0] != '/') continue;

    int rank = hierarchy_rank(id, line.substr(a + 1, b - a - 1));
    CgroupInfo info = parse_cgroup_path(path);
    int s = score(info);
    if (s > best_score || (s == best_score && rank < best_rank)) {
      best = std::move(info);
      best_score = s;
      best_rank = rank;
    }
  }
  return best;
}

}  // namespace ember
