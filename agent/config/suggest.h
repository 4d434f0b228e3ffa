// closest_key: the "did you mean" of config errors. Both the config parser
// and relabel_configs' parser use it, so a typo in any key gets the same hint.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace ember {

// Levenshtein distance between two keys (short strings: quadratic is fine).
inline size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The candidate nearest to `key`, or "" when none is a near miss (distance
// 3 or more). `key_of` gives each candidate's name.
template <typename Range, typename Key>
std::string closest_key(std::string_view key, const Range& candidates, Key key_of) {
  std::string best;
  size_t best_d = 3;
  for (const auto& c : candidates) {
    std::string_view k = key_of(c);
    size_t d = edit_distance(key, k);
    if (d < best_d) {
      best_d = d;
      best = std::string(k);
    }
  }
  return best;
}

}  // namespace ember
