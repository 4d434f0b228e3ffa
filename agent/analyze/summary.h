// Per-function totals of a StackProfile, and the `ember report` table: the
// top functions by self ("flat") and inclusive ("cum") value, as
// `go tool pprof -top` prints them, for a terminal or a CI log.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/analyze/stack_profile.h"

namespace ember {

struct FunctionTotals {
  uint32_t name = 0;  // index into the profile's names
  // Self: stacks that end in the function. Inclusive: stacks that contain it,
  // each counted once however often the function recurses in it.
  int64_t self_value = 0, total_value = 0;
  int64_t self_samples = 0, total_samples = 0;
};

// One entry per name that occurs in some stack, in name order.
std::vector<FunctionTotals> function_totals(const StackProfile& profile);

// "1.23s" for nanoseconds or microseconds, "12.5MB" for bytes, a count otherwise.
std::string format_value(int64_t value, const std::string& unit);

struct TopOptions {
  size_t rows = 20;
  bool by_inclusive = false;  // sort by cum instead of flat
};

// The table, with a header line naming the sample type, the total and how
// many functions are not shown.
std::string render_top(const StackProfile& profile, const TopOptions& opts = {});

}  // namespace ember
