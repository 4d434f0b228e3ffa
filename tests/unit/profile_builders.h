// Small builders for hand-made profiles in tests.
#pragma once

#include <memory>
#include <string>

#include "agent/model/types.h"

namespace ember::testing {

inline std::shared_ptr<const Mapping> make_mapping(const std::string& file, uint64_t start,
                                                   uint64_t limit, const std::string& build_id = "") {
  auto m = std::make_shared<Mapping>();
  m->file = file;
  m->start = start;
  m->limit = limit;
  m->build_id = build_id;
  return m;
}

inline LocationRef make_location(uint64_t addr, std::shared_ptr<const Mapping> m,
                                 std::vector<std::string> names_innermost_first,
                                 OriginId origin = origin::kNative) {
  auto l = std::make_shared<Location>();
  l->address = addr;
  l->mapping = std::move(m);
  l->origin = origin;
  l->resolved = true;
  for (auto& n : names_innermost_first) {
    Line line;
    line.function = n;
    line.system_name = n;
    l->lines.push_back(line);
  }
  return l;
}

inline LabelSetRef labels(const Labels& kv) {
  return std::make_shared<const LabelSet>(kv);
}

}  // namespace ember::testing
