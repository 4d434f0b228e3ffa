// `ember report FILE` and `ember diff BASE NEW`: read profiles back (pprof
// from Ember, `go tool pprof` or a Pyroscope export; or folded stacks) and
// summarize or compare them, for a terminal, a CI log or a pull request.
// Need no privileges and no BPF. Single-threaded.
#include <algorithm>
#include <cxxopts.hpp>
#include <fstream>
#include <iostream>

#include "agent/analyze/diff.h"
#include "agent/analyze/summary.h"
#include "agent/cli/command_line.h"
#include "agent/cli/commands.h"
#include "agent/export/flamegraph.h"
#include "agent/export/folded.h"

namespace ember {

namespace {

// `ember diff`: 1 means a regression was found, so unreadable or
// incompatible inputs get 2, as bad flags do.
constexpr int kExitRegression = 1;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool write_file(const std::string& path, const std::string& data, const char* command) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  f.close();
  if (!f) {
    std::cerr << command << ": cannot write " << path << std::endl;
    return false;
  }
  return true;
}

// A profile read back, as the flame graph renderer takes it. A CPU profile
// with sample counts is drawn in samples, its time in the tooltips.
std::vector<FlameStack> flame_stacks_of(const StackProfile& p, FlamegraphOptions* o) {
  const bool by_samples = p.samples_known && p.unit == "nanoseconds" && p.total_samples() > 0;
  o->count_name = by_samples || p.unit == "count" ? "samples" : p.unit;
  o->ns_per_count = by_samples ? uint64_t(p.total_value() / p.total_samples()) : 0;
  std::vector<FlameStack> out;
  out.reserve(p.stacks.size());
  for (const auto& s : p.stacks) {
    FlameStack f;
    for (uint32_t n : s.frames) {
      f.frames.push_back(p.names[n]);
      // Folded text separates frames with ';': a pprof name must not carry one.
      std::replace(f.frames.back().begin(), f.frames.back().end(), ';', ':');
    }
    f.count = uint64_t(by_samples ? s.samples : s.value);
    out.push_back(std::move(f));
  }
  return out;
}

// A differential flame graph of the diff: widths from the new profile,
// red where a frame's share grew, blue where it shrank.
std::string render_diff_flamegraph(const ProfileDiff& d, bool html, const std::string& base_name,
                                   const std::string& new_name) {
  std::vector<FlameStack> stacks;
  stacks.reserve(d.stacks.size());
  for (const auto& s : d.stacks) {
    FlameStack f;
    for (size_t at = 0;;) {  // frames were joined with ';', which no name contains
      size_t semi = s.frames.find(';', at);
      f.frames.push_back(s.frames.substr(at, semi == std::string::npos ? std::string::npos : semi - at));
      if (semi == std::string::npos) break;
      at = semi + 1;
    }
    f.count = uint64_t(s.next);
    f.base_count = uint64_t(s.base);
    stacks.push_back(std::move(f));
  }
  FlamegraphOptions o;
  o.title = "Ember profile diff: " + d.sample_type;
  o.subtitle = new_name + " against " + base_name + "  ·  red: a larger share than in the base, blue: smaller";
  o.count_name = d.unit;
  o.base_total = uint64_t(d.base_value);
  return html ? render_flamegraph_html(stacks, o) : render_flamegraph_svg(stacks, o);
}

}  // namespace

int run_report(int argc, char** argv) {
  cxxopts::Options options("ember report",
                           "Print the top functions of a profile by self (flat) and inclusive (cum) value,\n"
                           "as `go tool pprof -top` does.\n\n"
                           "  ember report [--top N] [--cum] [--sample-type T] [-o out.html]... FILE\n\n"
                           "FILE: pprof (gzipped or not: Ember's, `go tool pprof`'s, a Pyroscope export)\n"
                           "or folded stacks ('frame;frame;... count' per line); '-' reads standard input.\n");
  options.add_options()
      ("top", "Rows to print", cxxopts::value<size_t>()->default_value("20"))
      ("cum", "Sort by inclusive value instead of self")
      ("o,output", "Also write the profile as FILE: .html (flame graph, table and sandwich views), "
                   ".svg (flame graph) or .folded; repeatable", cxxopts::value<std::vector<std::string>>())
      ("sample-type", "pprof: the sample type to read (default: the file's default)", cxxopts::value<std::string>())
      ("file", "", cxxopts::value<std::string>())
      ("h,help", "Show this help");
  options.parse_positional({"file"});
  options.positional_help("FILE");
  int exit_code = 0;
  auto parsed = parse_command_line(options, "ember report", argc, argv, false, &exit_code);
  if (!parsed) return exit_code;
  const cxxopts::ParseResult& args = *parsed;
  if (!args.count("file")) {
    std::cerr << "ember report: name a profile file\n\n" << options.help() << std::endl;
    return kExitUsage;
  }
  ProfileReadOptions ro;
  if (args.count("sample-type")) ro.sample_type = args["sample-type"].as<std::string>();
  auto profile = read_profile_file(args["file"].as<std::string>(), ro);
  if (!profile) {
    std::cerr << "ember report: " << profile.error().message << std::endl;
    return kExitUsage;
  }
  std::vector<std::string> outputs;
  if (args.count("output")) outputs = args["output"].as<std::vector<std::string>>();
  for (const auto& o : outputs) {
    if (!ends_with(o, ".html") && !ends_with(o, ".svg") && !ends_with(o, ".folded")) {
      std::cerr << "ember report: -o " << o << ": name a .html, .svg or .folded file" << std::endl;
      return kExitUsage;
    }
  }
  TopOptions top;
  top.rows = args["top"].as<size_t>();
  top.by_inclusive = args.count("cum") > 0;
  std::cout << render_top(*profile, top);
  for (const auto& o : outputs) {
    FlamegraphOptions fo;
    fo.title = "Ember profile: " + profile->sample_type;
    fo.subtitle = args["file"].as<std::string>();
    std::vector<FlameStack> stacks = flame_stacks_of(*profile, &fo);
    std::string data;
    if (ends_with(o, ".folded")) {
      data = render_folded(stacks);
    } else {
      data = ends_with(o, ".html") ? render_flamegraph_html(stacks, fo) : render_flamegraph_svg(stacks, fo);
    }
    if (!write_file(o, data, "ember report")) return kExitUsage;
  }
  return 0;
}

int run_diff(int argc, char** argv) {
  cxxopts::Options options(
      "ember diff",
      "Compare two profiles function by function, as shares of each one's total, and tell\n"
      "a change from noise. Exit 1 when --fail-above is given and some function's self or\n"
      "inclusive share grew by more than that many percentage points, significantly; exit 2\n"
      "when an input cannot be read or the two measure different things; 0 otherwise.\n\n"
      "  ember diff [--fail-above PP] [-o diff.html|.svg|.md|.folded|.json]... [--json] BASE NEW\n\n"
      "Significance: a two-proportion z-test on sample counts (the function's samples out of\n"
      "the profile's), two-sided, Bonferroni-corrected over every test made (self and\n"
      "inclusive, for each function of either profile); significant below --alpha.\n"
      "BASE and NEW: pprof (gzipped or not) or folded stacks, of the same sample type.\n");
  options.add_options()
      ("fail-above", "Exit 1 if a share grew by more than PP points, significantly", cxxopts::value<double>())
      ("alpha", "Significance level, after the correction", cxxopts::value<double>()->default_value("0.01"))
      ("top", "Rows of the function tables", cxxopts::value<size_t>()->default_value("20"))
      ("o,output", "Also write the diff to FILE: .html or .svg (a differential flame graph: red grew, "
                   "blue shrank), .md (a table for a pull request), .folded (difffolded's three "
                   "columns: stack, base, new) or .json; repeatable",
       cxxopts::value<std::vector<std::string>>())
      ("json", "Print JSON instead of a table")
      ("sample-type", "pprof: the sample type to compare (default: each file's default)",
       cxxopts::value<std::string>())
      ("files", "", cxxopts::value<std::vector<std::string>>())
      ("h,help", "Show this help");
  options.parse_positional({"files"});
  options.positional_help("BASE NEW");
  int exit_code = 0;
  auto parsed = parse_command_line(options, "ember diff", argc, argv, false, &exit_code);
  if (!parsed) return exit_code;
  const cxxopts::ParseResult& args = *parsed;
  std::vector<std::string> files;
  if (args.count("files")) files = args["files"].as<std::vector<std::string>>();
  if (files.size() != 2) {
    std::cerr << "ember diff: name two profiles, BASE and NEW\n\n" << options.help() << std::endl;
    return kExitUsage;
  }
  double fail_above = args.count("fail-above") ? args["fail-above"].as<double>() : 0;
  double alpha = args["alpha"].as<double>();
  if (!(fail_above >= 0 && fail_above <= 100)) {
    std::cerr << "ember diff: --fail-above: expected percentage points from 0 to 100" << std::endl;
    return kExitUsage;
  }
  if (!(alpha > 0 && alpha < 1)) {
    std::cerr << "ember diff: --alpha: expected a probability between 0 and 1" << std::endl;
    return kExitUsage;
  }
  std::vector<std::string> outputs;
  if (args.count("output")) outputs = args["output"].as<std::vector<std::string>>();
  for (const auto& o : outputs) {
    if (!ends_with(o, ".md") && !ends_with(o, ".folded") && !ends_with(o, ".json") && !ends_with(o, ".html") &&
        !ends_with(o, ".svg")) {
      std::cerr << "ember diff: -o " << o << ": name a .html, .svg, .md, .folded or .json file" << std::endl;
      return kExitUsage;
    }
  }

  ProfileReadOptions ro;
  if (args.count("sample-type")) ro.sample_type = args["sample-type"].as<std::string>();
  auto base = read_profile_file(files[0], ro);
  if (!base) {
    std::cerr << "ember diff: " << base.error().message << std::endl;
    return kExitUsage;
  }
  auto next = read_profile_file(files[1], ro);
  if (!next) {
    std::cerr << "ember diff: " << next.error().message << std::endl;
    return kExitUsage;
  }
  DiffOptions dopts;
  dopts.alpha = alpha;
  auto diff = diff_profiles(*base, *next, dopts);
  if (!diff) {
    std::cerr << "ember diff: " << diff.error().message << std::endl;
    return kExitUsage;
  }
  if (args.count("fail-above") && !diff->tested) {
    std::cerr << "ember diff: --fail-above: cannot tell a change from noise: a profile does not say how many "
                 "samples made its values (no samples/count sample type or sampling period)"
              << std::endl;
    return kExitUsage;
  }
  size_t rows = args["top"].as<size_t>();
  std::cout << (args.count("json") ? render_diff_json(*diff, fail_above) : render_diff_text(*diff, rows));
  for (const auto& o : outputs) {
    std::string data = ends_with(o, ".md")       ? render_diff_markdown(*diff, rows, fail_above)
                       : ends_with(o, ".folded") ? render_diff_folded(*diff)
                       : ends_with(o, ".json")   ? render_diff_json(*diff, fail_above)
                                                 : render_diff_flamegraph(*diff, ends_with(o, ".html"), files[0], files[1]);
    if (!write_file(o, data, "ember diff")) return kExitUsage;
  }
  if (args.count("fail-above")) {
    auto regs = regressions(*diff, fail_above);
    if (!regs.empty()) {
      for (const auto* f : regs)
        std::cerr << "ember diff: " << f->name << " grew by more than " << fail_above
                  << " points (self " << (f->self.delta() >= 0 ? "+" : "") << f->self.delta() << ", total "
                  << (f->total.delta() >= 0 ? "+" : "") << f->total.delta() << ")" << std::endl;
      return kExitRegression;
    }
  }
  return 0;
}

}  // namespace ember
