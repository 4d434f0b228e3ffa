// RelabelRule: one parsed Prometheus relabel_config rule (see relabel.h for
// the semantics and relabel() itself, config/relabel_config.h for the
// parser). Split out so that Config can hold rules without the label stage.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace re2 {
class RE2;
}

namespace ember {

enum class RelabelAction {
  kReplace,
  kKeep,
  kDrop,
  kLabelMap,
  kLabelDrop,
  kLabelKeep,
  kHashMod,
  kLowercase,
  kUppercase,
  kKeepEqual,
  kDropEqual
};

// The config spelling of an action ("replace", "labelmap", ...).
const char* relabel_action_name(RelabelAction a);
// The action spelled `name`, compared after lowercasing as Prometheus does;
// nullopt for none. relabel_action_names(): every spelling, for errors.
std::optional<RelabelAction> relabel_action_from_name(std::string_view name);
std::string relabel_action_names();
// Prometheus's rules for a label name ([a-zA-Z_][a-zA-Z0-9_]*) and for a
// target_label with $references.
bool valid_label_name(std::string_view s);
bool valid_name_template(std::string_view s);

struct RelabelRule {
  RelabelAction action = RelabelAction::kReplace;
  std::vector<std::string> source_labels;
  std::string separator = ";";
  std::string regex_text = "(.*)";  // as written
  // regex_text compiled by compile_relabel_regex() with RE2, whose syntax and
  // semantics are Go's (Prometheus's), anchored at both ends: ^(?:regex)$.
  // Null until compiled (then it matches nothing). Shared because rules are
  // copied with the Config; an RE2 is immutable and thread-safe.
  std::shared_ptr<const re2::RE2> regex;
  std::string target_label;
  std::string replacement = "$1";
  uint64_t modulus = 0;

  // Names of (?P<name>...) groups by group number ("" for unnamed), for
  // $name / ${name} in replacement and target_label.
  std::vector<std::string> group_names;
};

// Compiles rule.regex_text into rule.regex and rule.group_names. parse_relabel_configs() does this for every rule; call it
// after building a RelabelRule by hand.
Status compile_relabel_regex(RelabelRule& rule);

}  // namespace ember
