#include "common/metrics.h"

#include <set>

namespace ember {

Counter& Metrics::get(const std::string& name, const std::string& labels, const std::string& help,
                      Kind kind) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = entries_[{name, labels}];
  if (!e.counter) {
    e.counter = std::make_unique<Counter>();
    e.kind = kind;
  }
  if (!help.empty()) e.help = help;
  return *e.counter;
}

Counter& Metrics::counter(const std::string& name, const std::string& labels,
                          const std::string& help) {
  return get(name, labels, help, Kind::kCounter);
}

Counter& Metrics::gauge(const std::string& name, const std::string& labels,
                        const std::string& help) {
  return get(name, labels, help, Kind::kGauge);
}

std::vector<Metrics::Row> Metrics::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Row> rows;
  rows.reserve(entries_.size());
  for (const auto& [key, e] : entries_)
    rows.push_back(Row{key.first, key.second, e.kind, e.help, e.counter->value()});
  return rows;
}

uint64_t Metrics::total(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t sum = 0;
  for (auto it = entries_.lower_bound({name, ""}); it != entries_.end() && it->first.first == name;
       ++it)
    sum += it->second.counter->value();
  return sum;
}

std::string Metrics::prometheus_text() const {
  std::string out;
  std::string last;
  for (const auto& r : snapshot()) {
    if (r.name != last) {
      // HELP and TYPE once per metric family.
      std::string help;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto it = entries_.lower_bound({r.name, ""});
             it != entries_.end() && it->first.first == r.name; ++it)
          if (!it->second.help.empty()) help = it->second.help;
      }
      if (!help.empty()) out += "# HELP " + r.name + " " + help + "\n";
      out += "# TYPE " + r.name + (r.kind == Kind::kCounter ? " counter\n" : " gauge\n");
      last = r.name;
    }
    out += r.name;
    if (!r.labels.empty()) out += "{" + r.labels + "}";
    out += " " + std::to_string(r.value) + "\n";
  }
  return out;
}

}  // namespace ember
