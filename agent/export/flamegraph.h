// Flame graph rendering for Ember profiles: turns aggregated stacks into a
// standalone interactive SVG (or an HTML page wrapping it) that a user can
// open straight from disk, offline, to zoom into and search a profile.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ember {

// One aggregated stack: frames root-first (outermost caller first), and how many samples hit it.
struct FlameStack {
  std::vector<std::string> frames;
  uint64_t count = 0;
  uint64_t base_count = 0;  // differential graphs only: the same stack in the base profile
};

struct FlamegraphOptions {
  std::string title = "Ember CPU profile";
  std::string subtitle;          // e.g. "ember record -F 100 -- ./app  ·  2026-11-21 18:00:00"
  std::string count_name = "samples";
  uint64_t ns_per_count = 0;     // if > 0 the tooltip also shows CPU time (count * ns_per_count)
  int width = 1200;              // SVG width in px
  // Boxes narrower than this are not emitted (their counts still add to their
  // parents): they cannot be seen or clicked, and with big profiles they would
  // otherwise dominate the file size.
  double min_frame_width_px = 0.1;
  // Non-zero: a differential flame graph (as FlameGraph's difffolded.pl and
  // flamegraph.pl draw one). Boxes are as wide as in the new profile (`count`)
  // and coloured by how the frame's share of its profile changed against the
  // base (`base_count` out of `base_total`): red where it grew, blue where it
  // shrank, white where it stayed, the most changed frame at full colour.
  // Stacks only in the base are not drawn.
  uint64_t base_total = 0;
};

// A standalone interactive SVG (opens in any browser, no network access needed).
std::string render_flamegraph_svg(const std::vector<FlameStack>& stacks, const FlamegraphOptions& opts);

// A self-contained HTML page embedding the same interactive SVG.
std::string render_flamegraph_html(const std::vector<FlameStack>& stacks, const FlamegraphOptions& opts);

}  // namespace ember
