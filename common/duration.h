// Durations as users write them: "500ms", "20s", "1m", "1h30m", "2.5s".
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace ember {

using Duration = std::chrono::nanoseconds;

// Parses a sequence of <number><unit> terms (units: ns, us, ms, s, m, h).
// A bare number is rejected: "10" is ambiguous and config errors must be loud.
Result<Duration> parse_duration(std::string_view text);

// Renders the shortest exact form, e.g. 90s -> "1m30s", 0.5s -> "500ms".
std::string format_duration(Duration d);

}  // namespace ember
