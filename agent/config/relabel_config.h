// The YAML side of relabeling: `relabel_configs` parsed and validated once,
// at the edge, into RelabelRules (agent/config/relabel_rule.h) that the label
// stage applies (agent/label/relabel.h).
#pragma once

#include <string>
#include <vector>

#include "agent/config/relabel_rule.h"
#include "common/result.h"

namespace YAML {
class Node;
}

namespace ember {

// Parses the YAML list under `relabel_configs`; errors name source:line and
// the key, e.g.
//   ember.yaml:12: relabel_configs[2].action: unknown action 'repalce' (expected one of replace, keep, ...)
// Rules are numbered from 0. Every error is reported, one per line. A null
// or missing node is an empty list. Every rule's regex is compiled.
Result<std::vector<RelabelRule>> parse_relabel_configs(const YAML::Node& list, const std::string& source);

}  // namespace ember
