#include "agent/config/relabel_config.h"
#include "agent/config/suggest.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ember {
namespace {

class Errors {
 public:
  explicit Errors(const std::string& source) : source_(source) {}

  void add(const YAML::Mark& m, const std::string& key, const std::string& msg) {
    std::ostringstream os;
    os << source_;
    if (m.line >= 0) os << ":" << m.line + 1;
    os << ": " << key << ": " << msg;
    lines_.push_back(os.str());
  }
  void add(const YAML::Node& n, const std::string& key, const std::string& msg) { add(mark(n), key, msg); }

  static YAML::Mark mark(const YAML::Node& n) {
    try {
      return n.Mark();
    } catch (const YAML::Exception&) {
      return YAML::Mark::null_mark();
    }
  }

  bool empty() const { return lines_.empty(); }
  size_t size() const { return lines_.size(); }
  Error error() const {
    std::string all;
    for (size_t i = 0; i < lines_.size(); ++i) {
      if (i) all += "\n";
      all += lines_[i];
    }
    return Error{all};
  }

 private:
  std::string source_;
  std::vector<std::string> lines_;
};

const char* kind(const YAML::Node& n) {
  return n.IsMap() ? "a mapping" : n.IsSequence() ? "a list" : n.IsNull() ? "nothing" : "a string";
}

// Reads one rule's keys into `r`; returns false if any key was unusable, in
// which case cross-key validation is skipped (it would only repeat the error).
bool read_rule(const YAML::Node& item, const std::string& prefix, Errors& errs, RelabelRule& r,
               std::map<std::string, YAML::Mark>& seen) {
  static const char* const kKeys[] = {"source_labels", "separator", "regex", "target_label",
                                      "replacement", "modulus", "action"};
  size_t before = errs.size();
  for (auto it = item.begin(); it != item.end(); ++it) {
    // Copies: yaml-cpp's it-> goes through a temporary, and Nodes are handles.
    const YAML::Node k = it->first;
    const YAML::Node v = it->second;
    if (!k.IsScalar()) {
      errs.add(k, prefix, "expected a key name, got " + std::string(kind(k)));
      continue;
    }
    const std::string key = k.Scalar();
    const std::string full = prefix + "." + key;
    if (seen.count(key)) {
      errs.add(k, full, "duplicate key");
      continue;
    }
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
      std::string msg = "unknown key";
      std::string best = closest_key(key, kKeys, [](const char* c) { return std::string_view(c); });
      if (!best.empty()) msg += " (did you mean '" + prefix + "." + best + "'?)";
      errs.add(k, full, msg);
      continue;
    }
    seen[key] = Errors::mark(v);

    if (key == "source_labels") {
      if (v.IsNull()) {
        seen.erase(key);  // null is "not set", as in Prometheus
        continue;
      }
      if (!v.IsSequence()) {
        errs.add(v, full, "expected a list of label names, got " + std::string(kind(v)));
        continue;
      }
      size_t j = 0;
      for (auto li = v.begin(); li != v.end(); ++li, ++j) {
        std::string lk = full + "[" + std::to_string(j) + "]";
        if (!li->IsScalar()) errs.add(*li, lk, "expected a label name, got " + std::string(kind(*li)));
        else if (!valid_label_name(li->Scalar())) errs.add(*li, lk, "'" + li->Scalar() + "' is not a valid label name");
        else r.source_labels.push_back(li->Scalar());
      }
    } else if (key == "modulus") {
      if (v.IsNull()) continue;
      const std::string s = v.IsScalar() ? v.Scalar() : "";
      uint64_t m = 0;
      bool ok = v.IsScalar() && !s.empty() && s.size() <= 20 &&
                std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
      for (char c : s) {
        if (!ok) break;
        uint64_t d = uint64_t(c - '0');
        if (m > (UINT64_MAX - d) / 10) ok = false;
        else m = m * 10 + d;
      }
      if (!ok) {
        errs.add(v, full, "expected a non-negative integer, got " +
                              (v.IsScalar() ? "'" + s + "'" : std::string(kind(v))));
        continue;
      }
      r.modulus = m;
    } else {
      // String keys. A null value reads as "" (Go's YAML decoder zeroes it).
      if (!v.IsNull() && !v.IsScalar()) {
        errs.add(v, full, "expected a string, got " + std::string(kind(v)));
        continue;
      }
      std::string s = v.IsNull() ? "" : v.Scalar();
      if (key == "separator") {
        r.separator = s;
      } else if (key == "regex") {
        r.regex_text = s;
      } else if (key == "target_label") {
        r.target_label = s;
      } else if (key == "replacement") {
        r.replacement = s;
      } else if (key == "action") {
        if (auto a = relabel_action_from_name(s)) {
          r.action = *a;
        } else {
          const std::string all = relabel_action_names();
          errs.add(v, full,
                   s.empty() ? "must not be empty (expected one of " + all + ")"
                             : "unknown action '" + s + "' (expected one of " + all + ")");
        }
      }
    }
  }
  return errs.size() == before;
}

// Prometheus's Config.Validate, with the offending key named.
void validate_rule(const RelabelRule& r, const std::string& prefix, const YAML::Mark& rule_mark,
                   const std::map<std::string, YAML::Mark>& seen, Errors& errs) {
  auto at = [&](const std::string& key) {
    auto it = seen.find(key);
    return it == seen.end() ? rule_mark : it->second;
  };
  auto fail = [&](const std::string& key, const std::string& msg) { errs.add(at(key), prefix + "." + key, msg); };
  const std::string act = relabel_action_name(r.action);
  using A = RelabelAction;
  const A a = r.action;

  if (a == A::kHashMod && r.modulus == 0) fail("modulus", "action hashmod requires a modulus greater than 0");

  bool needs_target = a == A::kReplace || a == A::kHashMod || a == A::kLowercase || a == A::kUppercase ||
                      a == A::kKeepEqual || a == A::kDropEqual;
  if (needs_target && r.target_label.empty()) {
    fail("target_label", "required for action " + act);
  } else if (a == A::kReplace) {
    bool templ = r.target_label.find('$') != std::string::npos;
    if (templ ? !valid_name_template(r.target_label) : !valid_label_name(r.target_label))
      fail("target_label", "'" + r.target_label + "' is not a valid label name" +
                               (templ ? " template (use $1 or ${name} references)" : ""));
  } else if (needs_target && !valid_label_name(r.target_label)) {
    fail("target_label", "'" + r.target_label + "' is not a valid label name");
  }

  bool equal_action = a == A::kKeepEqual || a == A::kDropEqual;
  if ((a == A::kLowercase || a == A::kUppercase || equal_action) && r.replacement != "$1")
    fail("replacement", "not allowed with action " + act);
  if (a == A::kLabelMap && !valid_name_template(r.replacement))
    fail("replacement", "'" + r.replacement +
                            "' is not a valid label name template for action labelmap (e.g. $1 or k8s_$1)");

  if (equal_action) {
    const std::string only = "not allowed with action " + act + " (it takes only source_labels and target_label)";
    if (seen.count("regex")) fail("regex", only);
    if (r.modulus != 0) fail("modulus", only);
    if (r.separator != ";") fail("separator", only);
  }
  if (a == A::kLabelDrop || a == A::kLabelKeep) {
    const std::string only = "not allowed with action " + act + " (it takes only regex)";
    if (seen.count("source_labels")) fail("source_labels", only);
    if (!r.target_label.empty()) fail("target_label", only);
    if (r.modulus != 0) fail("modulus", only);
    if (r.separator != ";") fail("separator", only);
    if (r.replacement != "$1") fail("replacement", only);
  }
}

}  // namespace

Result<std::vector<RelabelRule>> parse_relabel_configs(const YAML::Node& list, const std::string& source) {
  const std::string top = "relabel_configs";
  Errors errs(source);
  std::vector<RelabelRule> rules;
  try {
    if (!list.IsDefined() || list.IsNull()) return rules;
    if (!list.IsSequence()) {
      errs.add(list, top, "expected a list of rules, got " + std::string(kind(list)));
      return errs.error();
    }
    size_t i = 0;
    for (auto it = list.begin(); it != list.end(); ++it, ++i) {
      const YAML::Node item = *it;
      const std::string prefix = top + "[" + std::to_string(i) + "]";
      if (!item.IsMap()) {
        errs.add(item, prefix, "expected a mapping of rule keys, got " + std::string(kind(item)));
        continue;
      }
      RelabelRule r;
      std::map<std::string, YAML::Mark> seen;
      if (!read_rule(item, prefix, errs, r, seen)) continue;
      size_t before = errs.size();
      validate_rule(r, prefix, Errors::mark(item), seen, errs);
      if (auto st = compile_relabel_regex(r); !st) {
        auto m = seen.find("regex");
        errs.add(m == seen.end() ? Errors::mark(item) : m->second, prefix + ".regex", st.error().message);
      }
      if (errs.size() == before) rules.push_back(std::move(r));
    }
  } catch (const YAML::Exception& e) {
    errs.add(YAML::Mark::null_mark(), top, std::string("cannot read: ") + e.what());
  }
  if (!errs.empty()) return errs.error();
  return rules;
}

}  // namespace ember
