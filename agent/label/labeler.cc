#include "agent/label/labeler.h"

namespace ember {

ProcessLabeler::ProcessLabeler(Options opts) : opts_(std::move(opts)) {
  if (opts_.single_series) single_ = intern({});
}

LabelSetRef ProcessLabeler::intern(std::vector<std::pair<std::string, std::string>> labels) {
  for (const auto& kv : opts_.static_labels) labels.push_back(kv);
  return std::make_shared<const LabelSet>(std::move(labels));
}

std::string ProcessLabeler::service_name_for(const SampleMeta& meta) {
  if (!meta.process) return "kernel";
  const std::string& exe = meta.process->exe_path;
  if (!exe.empty()) {
    std::string_view base(exe);
    if (size_t slash = base.rfind('/'); slash != std::string_view::npos) base.remove_prefix(slash + 1);
    constexpr std::string_view kDeleted = " (deleted)";
    if (base.size() > kDeleted.size() && base.substr(base.size() - kDeleted.size()) == kDeleted)
      base.remove_suffix(kDeleted.size());
    if (!base.empty()) return std::string(base);
  }
  if (!meta.process->comm.empty()) return meta.process->comm;
  return meta.comm.empty() ? "unknown" : meta.comm;
}

LabelSetRef ProcessLabeler::labels_for(const SymbolizedSample& sample) {
  if (single_) return single_;
  std::string service = service_name_for(sample.meta);
  auto it = by_service_.find(service);
  if (it != by_service_.end()) return it->second;
  LabelSetRef ref = intern({{"service_name", service}});
  by_service_.emplace(service, ref);
  return ref;
}

}  // namespace ember
