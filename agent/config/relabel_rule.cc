#include "agent/config/relabel_rule.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <re2/re2.h>

#include "common/utf8.h"

namespace ember {
namespace {

bool is_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

}  // namespace

bool valid_label_name(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), is_word);
}

// Prometheus's check for a target_label with references (and a labelmap
// replacement): a name-start character or a $ref first, then word characters
// and $refs, where a ref is $word or ${word}. "$$" is not allowed here.
bool valid_name_template(std::string_view s) {
  if (s.empty()) return false;
  bool first = true;
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '$') {
      ++i;
      if (i < s.size() && s[i] == '{') {
        size_t j = i + 1;
        while (j < s.size() && is_word(s[j])) ++j;
        if (j == i + 1 || j >= s.size() || s[j] != '}') return false;
        i = j + 1;
      } else {
        size_t j = i;
        while (j < s.size() && is_word(s[j])) ++j;
        if (j == i) return false;
        i = j;
      }
    } else if (is_word(s[i])) {
      if (first && s[i] >= '0' && s[i] <= '9') return false;
      ++i;
    } else {
      return false;
    }
    first = false;
  }
  return true;
}

namespace {

// Go's regexp (Prometheus's engine) and RE2 share one syntax, with two
// differences in RE2 2022-06 (Debian 12): Go 1.22 also accepts (?<name>...)
// for a named group, which this RE2 knows only as (?P<name>...), and Go
// rejects \C (any byte), which RE2 accepts. This pass rewrites the first and
// rejects the second, skipping escaped characters and character classes.
Result<std::string> go_to_re2(std::string_view re) {
  std::string out;
  out.reserve(re.size() + 8);
  bool in_class = false;
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    if (c == '\\' && i + 1 < re.size()) {
      if (re[i + 1] == 'C') return Error{"\\C (any byte) is not supported (Go's regexp rejects it)"};
      out += c;
      out += re[++i];
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      // A ']' (after an optional '^') first in a class is a literal.
      if (i + 1 < re.size() && re[i + 1] == '^') out += re[++i];
      if (i + 1 < re.size() && re[i + 1] == ']') out += re[++i];
      continue;
    }
    if (c == '(' && re.substr(i, 3) == "(?<" && i + 3 < re.size() && re[i + 3] != '=' &&
        re[i + 3] != '!') {
      out += "(?P<";
      i += 2;
      continue;
    }
    out += c;
  }
  return out;
}

struct ActionName {
  RelabelAction action;
  const char* name;
};
constexpr ActionName kActions[] = {
    {RelabelAction::kReplace, "replace"},     {RelabelAction::kKeep, "keep"},
    {RelabelAction::kDrop, "drop"},           {RelabelAction::kKeepEqual, "keepequal"},
    {RelabelAction::kDropEqual, "dropequal"}, {RelabelAction::kHashMod, "hashmod"},
    {RelabelAction::kLabelMap, "labelmap"},   {RelabelAction::kLabelDrop, "labeldrop"},
    {RelabelAction::kLabelKeep, "labelkeep"}, {RelabelAction::kLowercase, "lowercase"},
    {RelabelAction::kUppercase, "uppercase"},
};

}  // namespace


std::optional<RelabelAction> relabel_action_from_name(std::string_view name) {
  // Prometheus lowercases the action (strings.ToLower) before matching.
  const std::string lower = utf8_map_case(name, false);
  for (const auto& a : kActions)
    if (lower == a.name) return a.action;
  return std::nullopt;
}

std::string relabel_action_names() {
  std::string all;
  for (const auto& a : kActions) all += std::string(all.empty() ? "" : ", ") + a.name;
  return all;
}

const char* relabel_action_name(RelabelAction a) {
  for (const auto& x : kActions)
    if (x.action == a) return x.name;
  return "?";
}

Status compile_relabel_regex(RelabelRule& rule) {
  auto pattern = go_to_re2(rule.regex_text);
  if (!pattern) return Error{"invalid regex '" + rule.regex_text + "': " + pattern.error().message};
  RE2::Options opts;  // RE2's defaults are Go's syntax: UTF-8, Perl classes, \b
  opts.set_log_errors(false);
  // Anchored at both ends, as Prometheus compiles it.
  auto re = std::make_shared<const RE2>("^(?:" + *pattern + ")$", opts);
  if (!re->ok()) return Error{"invalid regex '" + rule.regex_text + "': " + re->error()};
  rule.group_names.assign(size_t(re->NumberOfCapturingGroups()) + 1, "");
  for (const auto& [index, name] : re->CapturingGroupNames())
    if (index > 0 && size_t(index) < rule.group_names.size()) rule.group_names[size_t(index)] = name;
  rule.regex = std::move(re);
  return {};
}

}  // namespace ember
