// ProfileDiff: what changed between two profiles of the same kind, function
// by function, as shares of each profile's total (so a longer run is not a
// regression), with a test that tells a change from the noise between two
// runs of the same program. `ember diff` prints it and fails a build on it.
//
// The test: for each function and for its self and inclusive share, a
// two-proportion z-test on sample counts (the function's samples out of the
// profile's, base against new), two-sided, with a Bonferroni correction over
// every test made (two per function in either profile). A change is
// significant when its corrected p-value is below alpha (default 0.01).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/analyze/stack_profile.h"
#include "common/result.h"

namespace ember {

struct DiffOptions {
  double alpha = 0.01;
};

struct ShareChange {
  double base = 0, next = 0;  // percent of each profile's total value
  int64_t base_samples = 0, next_samples = 0;
  double p = 1;               // Bonferroni-corrected two-sided p-value
  bool significant = false;
  double delta() const { return next - base; }  // percentage points
};

struct FunctionChange {
  std::string name;
  ShareChange self, total;
};

struct ProfileDiff {
  std::string sample_type, unit;
  int64_t base_value = 0, next_value = 0;
  int64_t base_samples = 0, next_samples = 0;
  size_t tests = 0;
  double alpha = 0.01;
  // False when a profile says neither how many samples made its values (no
  // samples/count type, no sampling period) nor counts in samples: then no
  // change is marked significant, and --fail-above cannot judge.
  bool tested = true;
  // Every function of either profile, largest change (of self or inclusive
  // share, whichever moved more) first.
  std::vector<FunctionChange> functions;
  // The two profiles' stacks side by side (frames joined by ';', the values
  // of base and new), for a diff flame graph or difffolded's three columns.
  struct Stack {
    std::string frames;
    int64_t base = 0, next = 0;
  };
  std::vector<Stack> stacks;  // sorted by frames
};

// Fails when the two cannot be compared: different sample types or units,
// or an empty profile.
Result<ProfileDiff> diff_profiles(const StackProfile& base, const StackProfile& next, const DiffOptions& opts = {});

// Functions whose self or inclusive share grew by more than `points`
// percentage points, significantly: what --fail-above fails on.
std::vector<const FunctionChange*> regressions(const ProfileDiff& diff, double points);

// Renderings. `rows` bounds the function tables.
std::string render_diff_text(const ProfileDiff& diff, size_t rows);
std::string render_diff_markdown(const ProfileDiff& diff, size_t rows, double fail_above);
std::string render_diff_json(const ProfileDiff& diff, double fail_above);
std::string render_diff_folded(const ProfileDiff& diff);  // "frames base new" per line

}  // namespace ember
