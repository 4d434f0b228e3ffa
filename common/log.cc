#include "common/log.h"

#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <unordered_map>

namespace ember::log {
namespace {

std::mutex g_mu;
Level g_level = Level::kInfo;
Style g_style = Style::kPlain;

struct Limit {
  double last = -1e18;
  uint64_t suppressed = 0;
};
std::unordered_map<std::string, Limit>& limits() {
  static std::unordered_map<std::string, Limit> m;
  return m;
}

const char* level_name_of(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "?";
}

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// Caller holds g_mu.
void emit(Level level, const char* msg, uint64_t suppressed) {
  if (g_style == Style::kPlain) {
    const char* prefix = level == Level::kError  ? "error: "
                         : level == Level::kWarn ? "warning: "
                         : level == Level::kDebug ? "debug: "
                                                  : "";
    if (suppressed)
      std::fprintf(stderr, "ember: %s%s (%llu similar lines suppressed)\n", prefix, msg,
                   (unsigned long long)suppressed);
    else
      std::fprintf(stderr, "ember: %s%s\n", prefix, msg);
    return;
  }
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char when[64];
  std::snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000);
  std::string quoted;
  for (const char* p = msg; *p; ++p) {
    if (*p == '"' || *p == '\\') quoted += '\\';
    if (*p == '\n') { quoted += "\\n"; continue; }
    quoted += *p;
  }
  if (suppressed)
    std::fprintf(stderr, "ts=%s level=%s msg=\"%s\" suppressed=%llu\n", when, level_name_of(level),
                 quoted.c_str(), (unsigned long long)suppressed);
  else
    std::fprintf(stderr, "ts=%s level=%s msg=\"%s\"\n", when, level_name_of(level), quoted.c_str());
}

}  // namespace

void set_level(Level level) { g_level = level; }
void set_style(Style style) { g_style = style; }
Level level() { return g_level; }

bool parse_level(const std::string& n, Level* out) {
  if (n == "debug") *out = Level::kDebug;
  else if (n == "info") *out = Level::kInfo;
  else if (n == "warn" || n == "warning") *out = Level::kWarn;
  else if (n == "error") *out = Level::kError;
  else return false;
  return true;
}

void write(Level level, const char* fmt, ...) {
  if (level < g_level) return;
  va_list ap, copy;
  va_start(ap, fmt);
  va_copy(copy, ap);
  int n = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  std::string buf(n > 0 ? size_t(n) + 1 : 1, '\0');
  std::vsnprintf(buf.data(), buf.size(), fmt, ap);
  va_end(ap);
  std::lock_guard<std::mutex> lock(g_mu);
  emit(level, buf.c_str(), 0);
}

void write_limited(Level level, const char* key, double interval_s, const char* fmt, ...) {
  if (level < g_level) return;
  std::lock_guard<std::mutex> lock(g_mu);
  Limit& l = limits()[key];
  double now = now_s();
  if (now - l.last < interval_s) {
    ++l.suppressed;
    return;
  }
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  emit(level, buf, l.suppressed);
  l.last = now;
  l.suppressed = 0;
}

const char* level_name(Level level) { return level_name_of(level); }

}  // namespace ember::log
