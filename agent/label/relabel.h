// Prometheus-style relabeling: the user's `relabel_configs` rewrite, add,
// drop and filter the labels of a profile series (e.g. turn
// __meta_kubernetes_pod_label_app into app, or drop kube-system). The config
// loader calls parse_relabel_configs() (agent/config/relabel_config.h) once;
// the label stage calls relabel()
// once per new label set, not per sample.
//
// Semantics follow Prometheus's relabel_config action by action (same
// defaults, same validation, same hashmod values), so existing Prometheus
// snippets work unchanged. Differences, all from using std::regex (ECMAScript)
// in place of Go's RE2:
//  - Go syntax that ECMAScript lacks is translated: (?P<name>...) and
//    (?<name>...) named groups, a leading (?i)/(?s) flag group, and '.' never
//    matching '\n' (only '\n', as in Go). Other RE2-only syntax (\pL, \Q..\E,
//    \z, flags mid-pattern) is a config error, never a silent mismatch.
//    ECMAScript extras (lookahead) are accepted; backreferences are rejected.
//  - Label names are validated with the classic rule [a-zA-Z_][a-zA-Z0-9_]*.
//  - lowercase/uppercase map code points with glibc's C.UTF-8 tables.
#pragma once

#include <cstdint>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "agent/config/relabel_rule.h"
#include "common/labels.h"
#include "common/result.h"

namespace ember {

// During relabeling, as in Prometheus, a missing label reads as "" and
// setting a label to "" removes it.

// Applies the rules in order. Returns false if a keep/drop/keepequal/dropequal
// rule dropped the target; `labels` is then left as it was at that point and
// should be discarded.
bool relabel(const std::vector<RelabelRule>& rules, Labels& labels);

// MD5 of `data` (RFC 1321), as used by the hashmod action. Exposed for tests.
void md5(const void* data, size_t len, uint8_t out[16]);

}  // namespace ember
