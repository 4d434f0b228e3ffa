// Leveled, rate-limited logging to stderr.
//
// Two styles: "plain" for interactive commands (`ember: warning: ...`) and
// "logfmt" for the daemon (`ts=... level=warn msg="..."`) so log shippers can
// parse it. Any thread may log; a mutex keeps lines whole.
#pragma once

#include <cstdint>
#include <string>

namespace ember::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class Style { kPlain, kLogfmt };

void set_level(Level level);
void set_style(Style style);
Level level();
bool parse_level(const std::string& name, Level* out);
const char* level_name(Level level);  // "debug", "info", "warn", "error"

[[gnu::format(printf, 2, 3)]] void write(Level level, const char* fmt, ...);

// Logs at most once per `interval_s` for a given call site key; suppressed
// lines are counted and reported with the next line that gets through.
[[gnu::format(printf, 4, 5)]] void write_limited(Level level, const char* key, double interval_s,
                                                 const char* fmt, ...);

}  // namespace ember::log

#define EMBER_DEBUG(...) \
  do { if (::ember::log::level() <= ::ember::log::Level::kDebug) ::ember::log::write(::ember::log::Level::kDebug, __VA_ARGS__); } while (0)
#define EMBER_INFO(...) ::ember::log::write(::ember::log::Level::kInfo, __VA_ARGS__)
#define EMBER_WARN(...) ::ember::log::write(::ember::log::Level::kWarn, __VA_ARGS__)
#define EMBER_ERROR(...) ::ember::log::write(::ember::log::Level::kError, __VA_ARGS__)
// Rate-limited warning keyed by call site: at most one line per 10 s.
#define EMBER_WARN_LIMITED(...) \
  ::ember::log::write_limited(::ember::log::Level::kWarn, __FILE__ ":" EMBER_STR(__LINE__), 10.0, __VA_ARGS__)
#define EMBER_STR2(x) #x
#define EMBER_STR(x) EMBER_STR2(x)
