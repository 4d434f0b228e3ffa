#include "agent/model/types.h"

#include <algorithm>
#include <functional>

namespace ember {

LabelSet::LabelSet(const Labels& labels) : labels_(labels.begin(), labels.end()) {
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
