// `ember report` and `ember diff` end to end, on profiles `ember record`
// took of two builds of one workload (tests/fixtures/ratio_workload.c): the
// second build's caller_c does four times the work, so its share of the
// program goes from 10% to 4/13 (30.8%). `go tool pprof` judges the reader.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "e2e_util.h"

namespace ember::e2e {
namespace {

class AnalyzeE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "end-to-end tests need root (BPF)";
  }
  // Records 3 s of the workload at 499 Hz (about 1,500 samples) as pprof
  // and as folded stacks, at `base` + ".pb.gz" / ".folded".
  void record(const std::string& variant, const std::string& base) {
    auto r = run({ember_bin(), "record", "-F", "499", "-o", base + ".pb.gz", "-o", base + ".folded", "--",
                  fixture("diff_" + variant + "/ratio_diff"), "3"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
};

// The share of `function` (self or total) in `ember diff --json` output.
const nlohmann::json* function_of(const nlohmann::json& diff, const std::string& name) {
  for (const auto& f : diff["functions"])
    if (f["name"] == name) return &f;
  return nullptr;
}

TEST_F(AnalyzeE2E, DiffFailsOnTheSlowerCallerAndNotOnNoise) {
  TempDir tmp;
  for (int i = 1; i <= 4; ++i) record("base", tmp / ("base" + std::to_string(i)));
  record("slow", tmp / "slow");
  if (HasFatalFailure()) return;

  // The regression: exit 1, caller_c named, every output written.
  auto r = run({ember_bin(), "diff", "--fail-above", "5", "-o", tmp / "diff.md", "-o", tmp / "diff.folded", "-o",
                tmp / "diff.json", "-o", tmp / "diff.html", tmp / "base1.pb.gz", tmp / "slow.pb.gz"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("ember diff: caller_c grew by more than 5 points"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("caller_c"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cpu/nanoseconds: base "), std::string::npos) << r.out;

  auto j = nlohmann::json::parse(read_file(tmp / "diff.json"));
  const nlohmann::json* c = function_of(j, "caller_c");
  ASSERT_NE(c, nullptr) << j.dump();
  double before = (*c)["total"]["base_percent"], after = (*c)["total"]["new_percent"];
  report_figure("caller_c_base_percent", before);
  report_figure("caller_c_new_percent", after);
  EXPECT_NEAR(before, 10.0, 3.0);
  EXPECT_NEAR(after, 100.0 * 4 / 13, 4.0);
  EXPECT_TRUE((*c)["total"]["significant"].get<bool>());
  EXPECT_NE(std::find(j["regressions"].begin(), j["regressions"].end(), "caller_c"), j["regressions"].end());
  // caller_a and caller_b shrank; a shrinking function is never a regression.
  for (const char* f : {"caller_a", "caller_b"}) {
    const nlohmann::json* s = function_of(j, f);
    ASSERT_NE(s, nullptr) << f;
    EXPECT_LT((*s)["total"]["change_points"].get<double>(), 0) << f;
    EXPECT_EQ(std::find(j["regressions"].begin(), j["regressions"].end(), f), j["regressions"].end()) << f;
  }

  std::string md = read_file(tmp / "diff.md");
  EXPECT_NE(md.find("grew by more than 5 points:** "), std::string::npos) << md;
  EXPECT_NE(md.find("| `caller_c` |"), std::string::npos) << md;

  // The differential flame graph: caller_c in red (its share grew), and
  // caller_a in blue.
  std::string html = read_file(tmp / "diff.html");
  // The widest box of that name: a stack cut short (an unwinding stop) can put
  // a small one elsewhere, with no counterpart in the base.
  auto fill_of = [&](const std::string& name) {
    std::string fill;
    uint64_t widest = 0;
    const std::string key = "<title>" + name + "\n";
    for (size_t t = html.find(key); t != std::string::npos; t = html.find(key, t + 1)) {
      size_t n = html.rfind("data-n=\"", t);
      uint64_t width = n == std::string::npos ? 0 : std::stoull(html.substr(n + 8, 20));
      if (width <= widest) continue;
      widest = width;
      size_t f = html.find("fill=\"", html.find("<rect", t));
      fill = html.substr(f + 6, 7);
    }
    return fill;
  };
  std::string c_fill = fill_of("caller_c"), a_fill = fill_of("caller_a");
  std::string diff_folded = read_file(tmp / "diff.folded");
  ASSERT_EQ(c_fill.size(), 7u) << "no caller_c box";
  EXPECT_EQ(c_fill.substr(1, 2), "fa") << c_fill << "\n" << diff_folded;  // red channel full, the others faded
  EXPECT_LT(std::stoi(c_fill.substr(3, 2), nullptr, 16), 0xc0) << c_fill;
  ASSERT_EQ(a_fill.size(), 7u) << "no caller_a box";
  EXPECT_EQ(a_fill.substr(5, 2), "fa") << a_fill;  // blue
  EXPECT_NE(html.find("points against the base"), std::string::npos);

  // difffolded's three columns: each column adds up to its profile's total.
  std::istringstream folded(read_file(tmp / "diff.folded"));
  int64_t base_sum = 0, new_sum = 0;
  size_t lines = 0;
  for (std::string line; std::getline(folded, line); ++lines) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, std::regex("(.+) ([0-9]+) ([0-9]+)"))) << line;
    base_sum += std::stoll(m[2]);
    new_sum += std::stoll(m[3]);
  }
  EXPECT_GT(lines, 3u);
  EXPECT_EQ(base_sum, j["base"]["value"].get<int64_t>());
  EXPECT_EQ(new_sum, j["new"]["value"].get<int64_t>());

  // Folded stacks give the same verdict (both builds are named ratio_diff).
  auto rf = run({ember_bin(), "diff", "--fail-above", "5", tmp / "base1.folded", tmp / "slow.folded"});
  EXPECT_EQ(rf.exit_code, 1) << rf.out << rf.err;
  EXPECT_NE(rf.err.find("caller_c"), std::string::npos) << rf.err;

  // Three pairs of runs of the same build: noise, exit 0.
  double widest = 0;
  for (auto [a, b] : {std::pair{1, 2}, std::pair{3, 4}, std::pair{2, 3}}) {
    auto same = run({ember_bin(), "diff", "--fail-above", "5", "--json", tmp / ("base" + std::to_string(a) + ".pb.gz"),
                     tmp / ("base" + std::to_string(b) + ".pb.gz")});
    EXPECT_EQ(same.exit_code, 0) << a << " vs " << b << ": " << same.out << same.err;
    auto sj = nlohmann::json::parse(same.out);
    for (const auto& f : sj["functions"])
      widest = std::max(widest, std::fabs(f["total"]["change_points"].get<double>()));
  }
  report_figure("same_build_widest_move_pp", widest);

  // Different sample types cannot be compared: exit 2.
  auto bad = run({ember_bin(), "diff", tmp / "base1.pb.gz", tmp / "base2.folded"});
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("measure different things: cpu/nanoseconds against samples/count"), std::string::npos)
      << bad.err;
  auto missing = run({ember_bin(), "diff", tmp / "base1.pb.gz", tmp / "nothing.pb.gz"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("nothing.pb.gz: cannot open"), std::string::npos) << missing.err;
}

// flat% and cum% of `function` in a `-top` table (go tool pprof's or ours).
bool top_row(const std::string& table, const std::string& function, double* flat, double* cum) {
  std::regex row("\\s*\\S+\\s+([0-9.]+)%\\s+[0-9.]+%\\s+\\S+\\s+([0-9.]+)%\\s+" + function);
  std::istringstream in(table);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, row)) {
      *flat = std::stod(m[1]);
      *cum = std::stod(m[2]);
      return true;
    }
  }
  return false;
}

TEST_F(AnalyzeE2E, ReportAgreesWithGoToolPprof) {
  if (!have_program("go")) FAIL() << "go (Debian golang-go) is needed to judge ember report";
  TempDir tmp;
  record("base", tmp / "p");
  if (HasFatalFailure()) return;
  auto ours = run({ember_bin(), "report", "--top", "200", tmp / "p.pb.gz"});
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  auto theirs = run({"env", "HOME=" + tmp.path(), "GOCACHE=" + (tmp / "gocache"), "go", "tool", "pprof", "-top",
                     "-nodecount=200", tmp / "p.pb.gz"});
  ASSERT_EQ(theirs.exit_code, 0) << theirs.err;
  for (const char* f : {"leaf", "caller_a", "caller_b", "main"}) {
    double our_flat = -1, our_cum = -1, go_flat = -2, go_cum = -2;
    ASSERT_TRUE(top_row(ours.out, f, &our_flat, &our_cum)) << f << "\n" << ours.out;
    ASSERT_TRUE(top_row(theirs.out, f, &go_flat, &go_cum)) << f << "\n" << theirs.out;
    EXPECT_NEAR(our_flat, go_flat, 0.011) << f;
    EXPECT_NEAR(our_cum, go_cum, 0.011) << f;
  }
  // Folded input reads too; its root frame is the thread name (a sample or
  // two before the exec carry the forking ember's).
  auto folded = run({ember_bin(), "report", "--cum", tmp / "p.folded"});
  ASSERT_EQ(folded.exit_code, 0) << folded.err;
  double flat = -1, cum = -1;
  ASSERT_TRUE(top_row(folded.out, "ratio_diff", &flat, &cum)) << folded.out;
  EXPECT_GE(cum, 99.0) << folded.out;
}

}  // namespace
}  // namespace ember::e2e
