// Folded stacks: one line per distinct stack, frames root-first joined by
// ';', a space, then the sample count (sampled events such as CPU) or the
// microseconds measured (off-CPU, wall); kernel frames carry the "_[k]" suffix.
// The format of Brendan Gregg's FlameGraph tools, and what the flamegraph
// renderer consumes.
#pragma once

#include <string>
#include <vector>

#include "agent/export/flamegraph.h"
#include "agent/model/types.h"

namespace ember {

struct FoldedOptions {
  // Start every stack with the thread name, like `perf script | stackcollapse`.
  bool process_root = true;
};

// Root-first stacks with inlined frames expanded, identical stacks merged,
// sorted by their text.
std::vector<FlameStack> fold_profile(const Profile& profile, const FoldedOptions& opts = {});
std::string render_folded(const std::vector<FlameStack>& stacks);

// Display name of one source frame, with the kernel suffix when needed.
std::string folded_frame_name(const Location& loc, const Line& line);

}  // namespace ember
