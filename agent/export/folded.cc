#include "agent/export/folded.h"

#include <algorithm>
#include <map>

namespace ember {

std::string folded_frame_name(const Location& loc, const Line& line) {
  std::string name = line.function.empty() ? "[unknown]" : line.function;
  // ';' separates frames in this format; a name must never contain one.
  std::replace(name.begin(), name.end(), ';', ':');
  std::replace(name.begin(), name.end(), '\n', ' ');
  if (loc.kernel()) name += "_[k]";
  return name;
}

std::vector<FlameStack> fold_profile(const Profile& profile, const FoldedOptions& opts) {
  // Sampled events count samples, as perf's folded output does; measured
  // ones (off-CPU) sum their nanoseconds and print microseconds, as
  // offcputime's folded output does.
  const bool periodic = event_type(profile.event).periodic;
  std::map<std::vector<std::string>, uint64_t> merged;
  std::vector<std::string> frames;
  for (const auto& s : profile.samples) {
    frames.clear();
    if (opts.process_root) frames.push_back(s.comm.empty() ? "[unknown]" : s.comm);
    // Stack is leaf first; within a location, lines are innermost first.
    for (auto it = s.stack.rbegin(); it != s.stack.rend(); ++it) {
      const Location& loc = **it;
      for (auto lit = loc.lines.rbegin(); lit != loc.lines.rend(); ++lit)
        frames.push_back(folded_frame_name(loc, *lit));
    }
    merged[frames] += periodic ? s.count : s.value;
  }
  std::vector<FlameStack> out;
  out.reserve(merged.size());
  for (auto& [f, amount] : merged)
    out.push_back(FlameStack{f, periodic ? amount : (amount + 500) / 1000});
  return out;
}

std::string render_folded(const std::vector<FlameStack>& stacks) {
  std::string out;
  for (const auto& s : stacks) {
    for (size_t i = 0; i < s.frames.size(); ++i) {
      if (i) out += ';';
      out += s.frames[i];
    }
    out += ' ';
    out += std::to_string(s.count);
    out += '\n';
  }
  return out;
}

}  // namespace ember
