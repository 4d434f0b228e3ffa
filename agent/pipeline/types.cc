#include "agent/pipeline/types.h"

#include <algorithm>
#include <functional>

namespace ember {

LabelSet::LabelSet(std::vector<std::pair<std::string, std::string>> labels)
    : labels_(std::move(labels)) {
  std::stable_sort(labels_.begin(), labels_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  // Last writer wins for duplicate names, as in Prometheus relabeling.
  std::vector<std::pair<std::string, std::string>> unique;
  for (auto& kv : labels_) {
    if (!unique.empty() && unique.back().first == kv.first) unique.back() = std::move(kv);
    else unique.push_back(std::move(kv));
  }
  labels_ = std::move(unique);
  size_t h = 0;
  for (const auto& [k, v] : labels_) {
    h = h * 31 + std::hash<std::string>()(k);
    h = h * 31 + std::hash<std::string>()(v);
  }
  hash_ = h;
}

const std::string& LabelSet::get(const std::string& name) const {
  static const std::string empty;
  auto it = std::lower_bound(labels_.begin(), labels_.end(), name,
                             [](const auto& kv, const std::string& n) { return kv.first < n; });
  return (it != labels_.end() && it->first == name) ? it->second : empty;
}

std::string LabelSet::to_string() const {
  std::string out = "{";
  for (size_t i = 0; i < labels_.size(); ++i) {
    if (i) out += ", ";
    out += labels_[i].first + "=\"" + labels_[i].second + "\"";
  }
  return out + "}";
}

}  // namespace ember
