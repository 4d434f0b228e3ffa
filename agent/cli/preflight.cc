#include "agent/cli/preflight.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>

namespace ember {
namespace {

// Capability numbers newer than some libc headers.
constexpr int kCapSysAdmin = 21;
constexpr int kCapSysPtrace = 19;
constexpr int kCapSyslog = 34;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

bool has_cap(const __user_cap_data_struct* data, int cap) {
  return (data[cap / 32].effective >> (cap % 32)) & 1u;
}

}  // namespace

bool parse_kernel_release(const std::string& release, int* major, int* minor) {
  return std::sscanf(release.c_str(), "%d.%d", major, minor) == 2;
}

PreflightResult preflight(const std::string& sys_root, const std::string& release_in) {
  PreflightResult r;

  std::string release = release_in;
  if (release.empty()) {
    utsname u{};
    if (uname(&u) == 0) release = u.release;
  }
  int major = 0, minor = 0;
  if (parse_kernel_release(release, &major, &minor)) {
    // 5.8: BPF ring buffer, CAP_BPF and CAP_PERFMON.
    if (major < 5 || (major == 5 && minor < 8))
      r.errors.push_back("kernel " + release +
                         " is too old: Ember needs Linux 5.8 or newer (BPF ring buffer)");
  }

  std::string btf = sys_root + "/kernel/btf/vmlinux";
  if (access(btf.c_str(), R_OK) != 0)
    r.errors.push_back("the kernel has no BTF type information (" + btf +
                       " is missing): Ember needs a kernel built with "
                       "CONFIG_DEBUG_INFO_BTF=y (default on Debian 11+, Ubuntu 20.10+, RHEL 8.2+)");

  __user_cap_header_struct hdr{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) {
    r.errors.push_back("cannot read this process's capabilities");
    return r;
  }
  bool admin = has_cap(data, kCapSysAdmin);
  bool bpf = has_cap(data, kCapBpf) || admin;
  bool perfmon = has_cap(data, kCapPerfmon) || admin;
  if (!bpf || !perfmon) {
    std::string missing;
    if (!bpf) missing += "CAP_BPF";
    if (!perfmon) missing += std::string(missing.empty() ? "" : " and ") + "CAP_PERFMON";
    r.errors.push_back("missing privileges: Ember must run as root or with CAP_BPF and "
                       "CAP_PERFMON (or CAP_SYS_ADMIN on kernels before 5.8); this process "
                       "lacks " + missing);
  }
  if (!has_cap(data, kCapSysPtrace) && !admin)
    r.warnings.push_back("without CAP_SYS_PTRACE, processes of other users cannot be "
                         "symbolized");
  if (!has_cap(data, kCapSyslog) && !admin)
    r.warnings.push_back("without CAP_SYSLOG, kernel addresses are hidden and kernel frames "
                         "stay unresolved");
  return r;
}

}  // namespace ember
