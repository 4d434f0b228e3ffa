#include "agent/config/relabel_rule.h"

#include <algorithm>
#include <cstring>
#include <regex>
#include <string>
#include <utility>
#include <vector>

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

// ---------------------------------------------------------------------------
// Go (RE2) regex syntax -> ECMAScript.

struct Translated {
  std::string pattern;
  std::vector<std::string> names{""};  // group 0 is the whole match
  bool icase = false;
};

Result<Translated> translate_regex(std::string_view re) {
  Translated t;
  bool dotall = false;
  size_t i = 0;
  // A leading flag group applies to the whole pattern, which std::regex can
  // express; flags anywhere else cannot be, so they are rejected below.
  if (re.starts_with("(?")) {
    size_t j = 2;
    while (j < re.size() && std::strchr("imsU", re[j]) && re[j] != '\0') ++j;
    if (j > 2 && j < re.size() && re[j] == ')') {
      for (size_t k = 2; k < j; ++k) {
        if (re[k] == 'i') t.icase = true;
        else if (re[k] == 's') dotall = true;
        else return Error{std::string("flag '") + re[k] + "' is not supported (only i and s)"};
      }
      i = j + 1;
    }
  }
  bool in_class = false;
  std::string& out = t.pattern;
  while (i < re.size()) {
    char c = re[i];
    if (c == '\\') {
      if (i + 1 >= re.size()) return Error{"trailing backslash"};
      char d = re[i + 1];
      // RE2 has no backreferences; ECMAScript would silently treat \1 as one.
      if (d >= '1' && d <= '9') return Error{"backreferences like \\1 are not supported"};
      // Only escapes that mean the same in both dialects: libstdc++ reads an
      // unknown letter escape (\pL, \z, \Q) as the bare letter, which would
      // silently match something else than Prometheus does.
      bool alnum = (d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') || (d >= '0' && d <= '9');
      bool hex2 = d == 'x' && i + 3 < re.size() && std::isxdigit(uint8_t(re[i + 2])) &&
                  std::isxdigit(uint8_t(re[i + 3]));
      if (alnum && !hex2 && !std::strchr(in_class ? "dDwWsSfnrtv" : "dDwWsSbBfnrtv", d))
        return Error{std::string("escape \\") + d + " is not supported"};
      out += c;
      out += d;
      if (hex2) {
        out += re.substr(i + 2, 2);
        i += 2;
      }
      i += 2;
      continue;
    }
    if (in_class) {
      if (c == '[' && i + 1 < re.size() && re[i + 1] == ':') {
        size_t e = re.find(":]", i + 2);
        if (e != std::string_view::npos) {
          out.append(re.substr(i, e + 2 - i));
          i = e + 2;
          continue;
        }
      }
      if (c == ']') in_class = false;
      out += c;
      ++i;
      continue;
    }
    if (c == '[') {
      out += '[';
      ++i;
      if (i < re.size() && re[i] == '^') out += re[i++];
      // In RE2 a ']' right after '[' or '[^' is a literal; in ECMAScript
      // "[]" is the empty class.
      if (i < re.size() && re[i] == ']') {
        out += "\\]";
        ++i;
      }
      in_class = true;
      continue;
    }
    if (c == '.') {
      // RE2's '.' excludes only '\n'; ECMAScript's also excludes '\r'.
      out += dotall ? "[\\s\\S]" : "[^\\n]";
      ++i;
      continue;
    }
    if (c == '(' && i + 1 < re.size() && re[i + 1] == '?') {
      size_t j = i + 2;
      if (j < re.size() && re[j] == 'P') ++j;
      bool lookbehind = j + 1 < re.size() && (re[j + 1] == '=' || re[j + 1] == '!');
      if (j < re.size() && re[j] == '<' && !lookbehind) {
        size_t e = re.find('>', j + 1);
        std::string_view name = e == std::string_view::npos ? "" : re.substr(j + 1, e - j - 1);
        if (name.empty() || !std::all_of(name.begin(), name.end(), is_word))
          return Error{"invalid named group at offset " + std::to_string(i)};
        t.names.emplace_back(name);
        out += '(';
        i = e + 1;
        continue;
      }
      if (j == i + 2 && j < re.size() && std::strchr("imsU-", re[j]) && re[j] != '\0')
        return Error{"flags are only supported as a leading (?i) or (?s), at offset " + std::to_string(i)};
      out += "(?";
      i += 2;
      continue;
    }
    if (c == '(') t.names.emplace_back();
    out += c;
    ++i;
  }
  return t;
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
  auto t = translate_regex(rule.regex_text);
  if (!t) return Error{"invalid regex '" + rule.regex_text + "': " + t.error().message};
  auto flags = std::regex::ECMAScript;
  if (t->icase) flags |= std::regex::icase;
  const std::string anchored = "^(?:" + t->pattern + ")$";
  try {
    std::regex re(anchored, flags);
    std::regex re_long(anchored, flags | std::regex_constants::__polynomial);
    rule.regex = std::move(re);
    rule.regex_long = std::move(re_long);
  } catch (const std::regex_error& e) {
    return Error{"invalid regex '" + rule.regex_text + "': " + e.what()};
  }
  rule.group_names = std::move(t->names);
  // Keep names aligned with std::regex's numbering even if the translator
  // and the engine ever disagree about what opens a group.
  rule.group_names.resize(rule.regex.mark_count() + 1);
  return {};
}

}  // namespace ember
