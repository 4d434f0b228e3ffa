#include "agent/sampler/kernel_features.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

namespace ember {
namespace {

struct FeatureDef {
  const char* name;
  const char* helper_enum;  // the helper's name in enum bpf_func_id
  bpf_func_id helper;
  bool KernelFeatures::*field;
};

const FeatureDef kFeatures[] = {
    {"bpf_loop", "BPF_FUNC_loop", BPF_FUNC_loop, &KernelFeatures::bpf_loop},
    {"task_pt_regs", "BPF_FUNC_task_pt_regs", BPF_FUNC_task_pt_regs, &KernelFeatures::task_pt_regs},
};

}  // namespace

const std::vector<std::string>& kernel_feature_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& f : kFeatures) v.emplace_back(f.name);
    return v;
  }();
  return names;
}

Status disable_kernel_feature(KernelFeatures* f, const std::string& name) {
  for (const auto& def : kFeatures) {
    if (name == def.name) {
      f->*def.field = false;
      return {};
    }
  }
  std::string valid;
  for (const auto& n : kernel_feature_names()) valid += (valid.empty() ? "" : ", ") + n;
  return Errorf("unknown kernel feature '%s' (expected one of: %s)", name.c_str(), valid.c_str());
}

KernelFeatures probe_running_kernel() {
  KernelFeatures f;
  for (const auto& def : kFeatures)
    f.*def.field = libbpf_probe_bpf_helper(BPF_PROG_TYPE_PERF_EVENT, def.helper, nullptr) == 1;
  return f;
}

Result<KernelFeatures> kernel_features_from_btf(const std::string& path) {
  struct btf* btf = btf__parse(path.c_str(), nullptr);
  if (!btf) return Errorf("cannot read BTF from %s: %s", path.c_str(), std::strerror(errno));
  KernelFeatures f;
  int id = btf__find_by_name_kind(btf, "bpf_func_id", BTF_KIND_ENUM);
  if (id < 0) {
    btf__free(btf);
    return Errorf("%s has no enum bpf_func_id: not a kernel's BTF", path.c_str());
  }
  const struct btf_type* t = btf__type_by_id(btf, uint32_t(id));
  const struct btf_enum* e = btf_enum(t);
  for (uint16_t i = 0; i < btf_vlen(t); ++i) {
    const char* name = btf__name_by_offset(btf, e[i].name_off);
    for (const auto& def : kFeatures)
      if (name && std::strcmp(name, def.helper_enum) == 0) f.*def.field = true;
  }
  btf__free(btf);
  return f;
}

}  // namespace ember
