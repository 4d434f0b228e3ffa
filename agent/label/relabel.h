// Prometheus-style relabeling: the user's `relabel_configs` rewrite, add,
// drop and filter the labels of a profile series (e.g. turn
// __meta_kubernetes_pod_label_app into app, or drop kube-system). The config
// loader calls parse_relabel_configs() (agent/config/relabel_config.h) once;
// the label stage calls relabel()
// once per new label set, not per sample.
//
// Semantics follow Prometheus's relabel_config action by action (same
// defaults, same validation, same hashmod values), so existing Prometheus
// snippets work unchanged. Regexes are RE2's, whose syntax and semantics are
// Go's (Prometheus's engine): linear time, no backreferences or lookaround,
// '.' not matching '\n' unless (?s). Two spellings differ in this RE2 and are
// handled at compile time: (?<name>...) (Go 1.22) is read as (?P<name>...),
// and \C, which Go rejects, is a config error. Other differences:
//  - Label names are validated with the classic rule [a-zA-Z_][a-zA-Z0-9_]*.
//  - lowercase/uppercase map code points with glibc's C.UTF-8 tables.
#pragma once

#include <cstdint>
#include <map>
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
