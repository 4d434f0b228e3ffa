#include "agent/analyze/summary.h"

#include <algorithm>
#include <cstdio>

namespace ember {

std::vector<FunctionTotals> function_totals(const StackProfile& profile) {
  std::vector<FunctionTotals> by_name(profile.names.size());
  // The last stack that counted each name inclusively, so that recursion
  // counts once per stack.
  std::vector<size_t> counted_in(profile.names.size(), SIZE_MAX);
  std::vector<bool> seen(profile.names.size(), false);
  for (size_t si = 0; si < profile.stacks.size(); ++si) {
    const auto& s = profile.stacks[si];
    if (s.frames.empty()) continue;
    for (uint32_t f : s.frames) {
      seen[f] = true;
      if (counted_in[f] == si) continue;
      counted_in[f] = si;
      by_name[f].total_value += s.value;
      by_name[f].total_samples += s.samples;
    }
    by_name[s.frames.back()].self_value += s.value;
    by_name[s.frames.back()].self_samples += s.samples;
  }
  std::vector<FunctionTotals> out;
  for (uint32_t i = 0; i < by_name.size(); ++i) {
    if (!seen[i]) continue;
    by_name[i].name = i;
    out.push_back(by_name[i]);
  }
  std::sort(out.begin(), out.end(), [&](const FunctionTotals& a, const FunctionTotals& b) {
    return profile.names[a.name] < profile.names[b.name];
  });
  return out;
}

std::string format_value(int64_t value, const std::string& unit) {
  char buf[48];
  if (unit == "nanoseconds" || unit == "microseconds") {
    // As pprof prints durations: "1.50s", "350ms", "12.5us", "0".
    double secs = double(value) / (unit == "nanoseconds" ? 1e9 : 1e6);
    if (value == 0) std::snprintf(buf, sizeof buf, "0");
    else if (secs >= 1) std::snprintf(buf, sizeof buf, "%.2fs", secs);
    else if (secs >= 1e-3) std::snprintf(buf, sizeof buf, "%.4gms", secs * 1e3);
    else std::snprintf(buf, sizeof buf, "%.4gus", secs * 1e6);
  } else if (unit == "bytes") {
    double v = double(value);
    const char* suffix = "B";
    for (const char* s : {"kB", "MB", "GB", "TB"}) {
      if (v < 1024) break;
      v /= 1024;
      suffix = s;
    }
    std::snprintf(buf, sizeof buf, "%.1f%s", v, suffix);
  } else {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(value));
  }
  return buf;
}

std::string render_top(const StackProfile& profile, const TopOptions& opts) {
  std::vector<FunctionTotals> rows = function_totals(profile);
  std::stable_sort(rows.begin(), rows.end(), [&](const FunctionTotals& a, const FunctionTotals& b) {
    return opts.by_inclusive ? a.total_value > b.total_value : a.self_value > b.self_value;
  });
  const int64_t total = profile.total_value();
  auto pct = [&](int64_t v) { return total > 0 ? 100.0 * double(v) / double(total) : 0.0; };
  std::string out;
  char line[256];
  size_t shown = std::min(rows.size(), opts.rows);
  std::snprintf(line, sizeof line, "%s/%s: %s in all, %lld samples; top %zu of %zu functions by %s\n",
                profile.sample_type.c_str(), profile.unit.c_str(), format_value(total, profile.unit).c_str(),
                static_cast<long long>(profile.total_samples()), shown, rows.size(),
                opts.by_inclusive ? "cum" : "flat");
  out += line;
  std::snprintf(line, sizeof line, "%12s %7s %7s %12s %7s  %s\n", "flat", "flat%", "sum%", "cum", "cum%", "function");
  out += line;
  double sum = 0;
  for (size_t i = 0; i < shown; ++i) {
    const auto& r = rows[i];
    sum += pct(r.self_value);
    std::snprintf(line, sizeof line, "%12s %6.2f%% %6.2f%% %12s %6.2f%%  ", format_value(r.self_value, profile.unit).c_str(),
                  pct(r.self_value), sum, format_value(r.total_value, profile.unit).c_str(), pct(r.total_value));
    out += line;
    out += profile.names[r.name];
    out += '\n';
  }
  return out;
}

}  // namespace ember
