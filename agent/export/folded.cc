#include "agent/export/folded.h"

#include <algorithm>
#include <map>

namespace ember {

std::string folded_frame_name(const Location& loc, const Line& line) {
  std::string name = line.function.empty() ? "[unknown]" : line.function;
  // ';' separates frames in this format; a name must never contain one.
  std::replace(name.begin(), name.end(), ';', ':');
  std::replace(name.begin(), name.end(), '\n', ' ');
  if (loc.kind == FrameKind::kKernel) name += "_[k]";
  return name;
}

std::vector<FlameStack> fold_profile(const Profile& profile, const FoldedOptions& opts) {
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
    merged[frames] += s.count;
  }
  std::vector<FlameStack> out;
  out.reserve(merged.size());
  for (auto& [f, count] : merged) out.push_back(FlameStack{f, count});
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
