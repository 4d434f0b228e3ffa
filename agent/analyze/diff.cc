#include "agent/analyze/diff.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "agent/analyze/summary.h"

namespace ember {

namespace {

// Two-sided p-value of the two-proportion z-test of x1/n1 against x2/n2.
double two_proportion_p(int64_t x1, int64_t n1, int64_t x2, int64_t n2) {
  if (n1 <= 0 || n2 <= 0) return 1;
  // In doubles: two counts below 2^63 can add up past it.
  double p1 = double(x1) / double(n1), p2 = double(x2) / double(n2);
  double pooled = (double(x1) + double(x2)) / (double(n1) + double(n2));
  double var = pooled * (1 - pooled) * (1.0 / double(n1) + 1.0 / double(n2));
  if (var <= 0) return p1 == p2 ? 1 : 0;
  double z = std::fabs(p2 - p1) / std::sqrt(var);
  return std::erfc(z / std::sqrt(2.0));
}

std::string joined(const StackProfile& p, const StackProfile::Stack& s) {
  std::string out;
  for (size_t i = 0; i < s.frames.size(); ++i) {
    if (i) out += ';';
    // ';' separates frames in folded text: a name must not contain one.
    for (char c : p.names[s.frames[i]]) out += c == ';' ? ':' : c == '\n' ? ' ' : c;
  }
  return out;
}

std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", v);
  return buf;
}

std::string points(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.2fpp", v);
  return buf;
}

double biggest_move(const FunctionChange& f) {
  return std::max(std::fabs(f.self.delta()), std::fabs(f.total.delta()));
}

}  // namespace

Result<ProfileDiff> diff_profiles(const StackProfile& base, const StackProfile& next, const DiffOptions& opts) {
  if (base.sample_type != next.sample_type || base.unit != next.unit)
    return Errorf("the profiles measure different things: %s/%s against %s/%s", base.sample_type.c_str(),
                  base.unit.c_str(), next.sample_type.c_str(), next.unit.c_str());
  ProfileDiff d;
  d.sample_type = base.sample_type;
  d.unit = base.unit;
  d.alpha = opts.alpha;
  d.base_value = base.total_value();
  d.next_value = next.total_value();
  d.base_samples = base.total_samples();
  d.next_samples = next.total_samples();
  if (d.base_value <= 0 || d.base_samples <= 0) return Errorf("the base profile is empty");
  if (d.next_value <= 0 || d.next_samples <= 0) return Errorf("the new profile is empty");

  std::map<std::string, FunctionChange> by_name;
  auto fold_in = [&](const StackProfile& p, bool is_base) {
    const double total = double(is_base ? d.base_value : d.next_value);
    for (const auto& t : function_totals(p)) {
      FunctionChange& f = by_name[p.names[t.name]];
      ShareChange* self = &f.self;
      ShareChange* incl = &f.total;
      (is_base ? self->base : self->next) = 100.0 * double(t.self_value) / total;
      (is_base ? incl->base : incl->next) = 100.0 * double(t.total_value) / total;
      (is_base ? self->base_samples : self->next_samples) = t.self_samples;
      (is_base ? incl->base_samples : incl->next_samples) = t.total_samples;
    }
  };
  fold_in(base, true);
  fold_in(next, false);

  // Nanoseconds taken for samples would make every change look significant.
  d.tested = d.unit == "count" || (base.samples_known && next.samples_known);
  d.tests = d.tested ? 2 * by_name.size() : 0;
  for (auto& [name, f] : by_name) {
    f.name = name;
    for (ShareChange* c : {&f.self, &f.total}) {
      if (!d.tested) continue;  // p stays 1
      double p = two_proportion_p(c->base_samples, d.base_samples, c->next_samples, d.next_samples);
      c->p = std::min(1.0, p * double(d.tests));
      c->significant = c->p < opts.alpha;
    }
    d.functions.push_back(std::move(f));
  }
  std::stable_sort(d.functions.begin(), d.functions.end(),
                   [](const FunctionChange& a, const FunctionChange& b) { return biggest_move(a) > biggest_move(b); });

  std::map<std::string, ProfileDiff::Stack> stacks;
  for (const auto& s : base.stacks) stacks[joined(base, s)].base += s.value;
  for (const auto& s : next.stacks) stacks[joined(next, s)].next += s.value;
  for (auto& [frames, s] : stacks) {
    s.frames = frames;
    d.stacks.push_back(std::move(s));
  }
  return d;
}

std::vector<const FunctionChange*> regressions(const ProfileDiff& diff, double pp) {
  std::vector<const FunctionChange*> out;
  for (const auto& f : diff.functions) {
    bool grew = (f.self.significant && f.self.delta() > pp) || (f.total.significant && f.total.delta() > pp);
    if (grew) out.push_back(&f);
  }
  return out;
}

std::string render_diff_text(const ProfileDiff& d, size_t rows) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%s/%s: base %s (%lld samples), new %s (%lld samples)\n", d.sample_type.c_str(),
                d.unit.c_str(), format_value(d.base_value, d.unit).c_str(), static_cast<long long>(d.base_samples),
                format_value(d.next_value, d.unit).c_str(), static_cast<long long>(d.next_samples));
  out += line;
  if (d.tested) {
    std::snprintf(line, sizeof line,
                  "shares of each profile's total; * significant: two-proportion z-test, "
                  "Bonferroni over %zu tests, alpha %g\n",
                  d.tests, d.alpha);
  } else {
    std::snprintf(line, sizeof line,
                  "shares of each profile's total; significance not tested: a profile does not say how many "
                  "samples made its values\n");
  }
  out += line;
  std::snprintf(line, sizeof line, "%10s %8s %8s %1s %10s %8s %8s %1s  %s\n", "self", "base", "new", "", "total",
                "base", "new", "", "function");
  out += line;
  size_t shown = 0;
  for (const auto& f : d.functions) {
    if (shown++ == rows) break;
    std::snprintf(line, sizeof line, "%10s %8s %8s %1s %10s %8s %8s %1s  ", points(f.self.delta()).c_str(),
                  pct(f.self.base).c_str(), pct(f.self.next).c_str(), f.self.significant ? "*" : "",
                  points(f.total.delta()).c_str(), pct(f.total.base).c_str(), pct(f.total.next).c_str(),
                  f.total.significant ? "*" : "");
    out += line;
    out += f.name;
    out += '\n';
  }
  if (d.functions.size() > rows) {
    std::snprintf(line, sizeof line, "(%zu more functions changed less)\n", d.functions.size() - rows);
    out += line;
  }
  return out;
}

namespace {

// Markdown table cells: a '|' or newline in a name would break the row.
std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else if (c == '`') out += '\'';
    else out += c;
  }
  return out;
}

}  // namespace

std::string render_diff_markdown(const ProfileDiff& d, size_t rows, double fail_above) {
  std::string out;
  auto regs = regressions(d, fail_above);
  char line[512];
  std::snprintf(line, sizeof line, "### Profile diff (%s/%s)\n\n", md_cell(d.sample_type).c_str(),
                md_cell(d.unit).c_str());
  out += line;
  if (fail_above > 0) {
    if (regs.empty()) {
      std::snprintf(line, sizeof line, "No function's share grew by more than %g points significantly.\n\n",
                    fail_above);
      out += line;
    } else {
      std::snprintf(line, sizeof line, "**%zu function%s grew by more than %g points:** ", regs.size(),
                    regs.size() == 1 ? "" : "s", fail_above);
      out += line;
      for (size_t i = 0; i < regs.size(); ++i) out += (i ? ", `" : "`") + md_cell(regs[i]->name) + "`";
      out += "\n\n";
    }
  }
  std::snprintf(line, sizeof line, "Base %s (%lld samples), new %s (%lld samples). Shares of each profile's total; ",
                format_value(d.base_value, d.unit).c_str(), static_cast<long long>(d.base_samples),
                format_value(d.next_value, d.unit).c_str(), static_cast<long long>(d.next_samples));
  out += line;
  if (d.tested) {
    std::snprintf(line, sizeof line,
                  "bold changes are significant (two-proportion z-test, Bonferroni over %zu tests, alpha %g).\n\n",
                  d.tests, d.alpha);
    out += line;
  } else {
    out += "significance not tested (a profile does not say how many samples made its values).\n\n";
  }
  out += "| function | self base | self new | self change | total base | total new | total change |\n";
  out += "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  size_t shown = 0;
  for (const auto& f : d.functions) {
    if (shown++ == rows) break;
    auto change = [](const ShareChange& c) {
      std::string s = points(c.delta());
      return c.significant ? "**" + s + "**" : s;
    };
    out += "| `" + md_cell(f.name) + "` | " + pct(f.self.base) + " | " + pct(f.self.next) + " | " + change(f.self) +
           " | " + pct(f.total.base) + " | " + pct(f.total.next) + " | " + change(f.total) + " |\n";
  }
  return out;
}

std::string render_diff_json(const ProfileDiff& d, double fail_above) {
  using nlohmann::json;
  auto share = [](const ShareChange& c) {
    return json{{"base_percent", c.base}, {"new_percent", c.next},         {"change_points", c.delta()},
                {"base_samples", c.base_samples}, {"new_samples", c.next_samples}, {"p", c.p},
                {"significant", c.significant}};
  };
  json j;
  j["sample_type"] = d.sample_type;
  j["unit"] = d.unit;
  j["base"] = {{"value", d.base_value}, {"samples", d.base_samples}};
  j["new"] = {{"value", d.next_value}, {"samples", d.next_samples}};
  j["test"] = {{"name", "two-proportion z-test, two-sided, Bonferroni-corrected"},
               {"tested", d.tested},
               {"tests", d.tests},
               {"alpha", d.alpha}};
  j["functions"] = json::array();
  for (const auto& f : d.functions)
    j["functions"].push_back({{"name", f.name}, {"self", share(f.self)}, {"total", share(f.total)}});
  j["fail_above_points"] = fail_above;
  j["regressions"] = json::array();
  for (const auto* f : regressions(d, fail_above)) j["regressions"].push_back(f->name);
  // Names come from the profiles: invalid UTF-8 is replaced, not thrown on.
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string render_diff_folded(const ProfileDiff& d) {
  std::string out;
  for (const auto& s : d.stacks) {
    out += s.frames;
    out += ' ';
    out += std::to_string(s.base);
    out += ' ';
    out += std::to_string(s.next);
    out += '\n';
  }
  return out;
}

}  // namespace ember
