#include "common/duration.h"

#include <cmath>
#include <cstdlib>

namespace ember {

Result<Duration> parse_duration(std::string_view text) {
  if (text.empty()) return Errorf("empty duration");
  std::string s(text);
  const char* p = s.c_str();
  long double total_ns = 0;
  bool any = false;
  while (*p) {
    char* end = nullptr;
    long double v = std::strtold(p, &end);
    if (end == p || *p == '-' || *p == '+')
      return Errorf("invalid duration '%s': expected e.g. 500ms, 20s, 1m", s.c_str());
    p = end;
    long double unit;
    if (p[0] == 'n' && p[1] == 's') { unit = 1; p += 2; }
    else if (p[0] == 'u' && p[1] == 's') { unit = 1e3; p += 2; }
    else if (p[0] == 'm' && p[1] == 's') { unit = 1e6; p += 2; }
    else if (p[0] == 's') { unit = 1e9; p += 1; }
    else if (p[0] == 'm') { unit = 60e9; p += 1; }
    else if (p[0] == 'h') { unit = 3600e9; p += 1; }
    else return Errorf("invalid duration '%s': missing unit (ns, us, ms, s, m, h)", s.c_str());
    total_ns += v * unit;
    any = true;
  }
  if (!any) return Errorf("invalid duration '%s'", s.c_str());
  if (total_ns > 1e18L) return Errorf("duration '%s' is too long", s.c_str());
  return Duration(static_cast<int64_t>(std::llround(static_cast<double>(total_ns))));
}

std::string format_duration(Duration d) {
  int64_t ns = d.count();
  if (ns == 0) return "0s";
  std::string out;
  if (ns % 1'000'000'000 != 0) {
    if (ns % 1'000'000 == 0) return std::to_string(ns / 1'000'000) + "ms";
    if (ns % 1'000 == 0) return std::to_string(ns / 1'000) + "us";
    return std::to_string(ns) + "ns";
  }
  int64_t s = ns / 1'000'000'000;
  if (s >= 3600) { out += std::to_string(s / 3600) + "h"; s %= 3600; }
  if (s >= 60) { out += std::to_string(s / 60) + "m"; s %= 60; }
  if (s > 0) out += std::to_string(s) + "s";
  return out;
}

}  // namespace ember
