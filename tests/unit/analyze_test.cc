// Profiles read back from files (pprof built here with the protobuf API, and
// folded text), their per-function totals, the `ember report` table, and
// `ember diff`: shares, the significance test, and its renderings.
#include <zlib.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "agent/analyze/diff.h"
#include "agent/analyze/stack_profile.h"
#include "agent/analyze/summary.h"
#include "profile.pb.h"

namespace ember {
namespace {

namespace pb = perftools::profiles;

std::vector<std::string> names_of(const StackProfile& p, const StackProfile::Stack& s) {
  std::vector<std::string> out;
  for (uint32_t f : s.frames) out.push_back(p.names[f]);
  return out;
}

// stack text ("a;b;c") -> value, whatever the order the reader kept.
std::map<std::string, int64_t> by_text(const StackProfile& p) {
  std::map<std::string, int64_t> out;
  for (const auto& s : p.stacks) {
    std::string t;
    for (const auto& n : names_of(p, s)) t += (t.empty() ? "" : ";") + n;
    out[t] += s.value;
  }
  return out;
}

std::string gzip(const std::string& data) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, uLong(data.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = uInt(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// A small pprof as Go writes a CPU profile: samples/count and cpu/nanoseconds,
// period 10 ms. main -> work -> (leaf inlined into helper), and main -> idle.
class PprofBuilder {
 public:
  PprofBuilder() {
    str("");
    add_type("samples", "count");
    add_type("cpu", "nanoseconds");
    p.mutable_period_type()->set_type(str("cpu"));
    p.mutable_period_type()->set_unit(str("nanoseconds"));
    p.set_period(10'000'000);
  }
  int64_t str(const std::string& s) {
    auto it = strings.find(s);
    if (it != strings.end()) return it->second;
    p.add_string_table(s);
    return strings[s] = p.string_table_size() - 1;
  }
  void add_type(const std::string& type, const std::string& unit) {
    auto* st = p.add_sample_type();
    st->set_type(str(type));
    st->set_unit(str(unit));
  }
  uint64_t function(const std::string& name) {
    auto* f = p.add_function();
    f->set_id(uint64_t(p.function_size()));
    f->set_name(str(name));
    f->set_system_name(str(name));
    return f->id();
  }
  // Lines innermost first, as pprof stores inlining.
  uint64_t location(const std::vector<uint64_t>& functions, uint64_t address = 0x1000) {
    auto* l = p.add_location();
    l->set_id(uint64_t(p.location_size()));
    l->set_address(address);
    for (uint64_t f : functions) l->add_line()->set_function_id(f);
    return l->id();
  }
  // Locations leaf first, as pprof stores stacks.
  void sample(const std::vector<uint64_t>& leaf_first, std::vector<int64_t> values) {
    auto* s = p.add_sample();
    for (uint64_t id : leaf_first) s->add_location_id(id);
    for (int64_t v : values) s->add_value(v);
  }
  std::string bytes() const { return p.SerializeAsString(); }
  pb::Profile p;
  std::map<std::string, int64_t> strings;
};

PprofBuilder go_like_cpu_profile() {
  PprofBuilder b;
  uint64_t f_main = b.function("main"), f_work = b.function("work"), f_helper = b.function("helper"),
           f_leaf = b.function("leaf"), f_idle = b.function("idle");
  uint64_t l_main = b.location({f_main}), l_work = b.location({f_work});
  uint64_t l_inl = b.location({f_leaf, f_helper});  // leaf inlined into helper
  uint64_t l_idle = b.location({f_idle});
  b.sample({l_inl, l_work, l_main}, {30, 300'000'000});
  b.sample({l_idle, l_main}, {10, 100'000'000});
  b.sample({l_inl, l_work, l_main}, {5, 50'000'000});  // merged with the first
  return b;
}

TEST(ReadPprof, StacksAreRootFirstWithInlinedFramesExpanded) {
  auto p = read_profile(go_like_cpu_profile().bytes());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->format, "pprof");
  EXPECT_EQ(p->sample_type, "cpu");  // the last type: pprof's default
  EXPECT_EQ(p->unit, "nanoseconds");
  EXPECT_TRUE(p->samples_known);
  auto stacks = by_text(*p);
  ASSERT_EQ(stacks.size(), 2u);
  EXPECT_EQ(stacks["main;work;helper;leaf"], 350'000'000);
  EXPECT_EQ(stacks["main;idle"], 100'000'000);
  EXPECT_EQ(p->total_samples(), 45);
  EXPECT_EQ(p->total_value(), 450'000'000);
}

TEST(ReadPprof, AHandEncodedMinimalProfile) {
  // The fuzz target's pprof seed (tests/fuzz/make_seeds.sh), byte for byte:
  // one sample type, one sample of one location of one function.
  const std::string bytes(
      "\x0a\x04\x08\x01\x10\x02"                  // sample_type {type 1, unit 2}
      "\x12\x06\x0a\x01\x01\x12\x01\x05"          // sample {location_id [1], value [5]}
      "\x22\x06\x08\x01\x22\x02\x08\x01"          // location {id 1, line {function_id 1}}
      "\x2a\x04\x08\x01\x10\x03"                  // function {id 1, name 3}
      "\x32\x00\x32\x03" "cpu" "\x32\x0b" "nanoseconds" "\x32\x04" "main",
      54);
  auto p = read_profile(bytes);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->sample_type, "cpu");
  EXPECT_FALSE(p->samples_known);
  EXPECT_EQ(by_text(*p), (std::map<std::string, int64_t>{{"main", 5}}));
}

TEST(ReadPprof, GzippedAndBySampleTypeName) {
  ProfileReadOptions o;
  o.sample_type = "samples";
  auto p = read_profile(gzip(go_like_cpu_profile().bytes()), o);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->sample_type, "samples");
  EXPECT_EQ(p->unit, "count");
  EXPECT_EQ(p->total_value(), 45);

  o.sample_type = "alloc_space";
  auto missing = read_profile(go_like_cpu_profile().bytes(), o);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "pprof: no sample type 'alloc_space' (it has samples, cpu)");
}

TEST(ReadPprof, DefaultSampleTypeAndSamplesFromThePeriod) {
  PprofBuilder b;
  b.p.clear_sample_type();
  b.add_type("cpu", "nanoseconds");  // no samples/count type: samples = value / period
  b.add_type("wall", "nanoseconds");
  b.p.set_default_sample_type(b.str("cpu"));
  uint64_t l = b.location({b.function("f")});
  b.sample({l}, {25'000'000, 99});
  auto p = read_profile(b.bytes());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->sample_type, "cpu");
  EXPECT_TRUE(p->samples_known);
  EXPECT_EQ(p->total_samples(), 3);  // 2.5 periods, rounded

  b.p.set_period(0);
  auto unknown = read_profile(b.bytes());
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->samples_known);
}

TEST(ReadPprof, UnsymbolizedLocationsAreNamedByModuleAndOffset) {
  PprofBuilder b;
  auto* m = b.p.add_mapping();
  m->set_id(1);
  m->set_memory_start(0x400000);
  m->set_memory_limit(0x500000);
  m->set_file_offset(0x1000);
  m->set_filename(b.str("/usr/bin/app"));
  auto* l = b.p.add_location();
  l->set_id(1);
  l->set_mapping_id(1);
  l->set_address(0x401234);
  auto* bare = b.p.add_location();
  bare->set_id(2);
  bare->set_address(0xdead);
  b.sample({1, 2}, {1, 10'000'000});
  auto p = read_profile(b.bytes());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(by_text(*p).begin()->first, "0xdead;app+0x2234");
}

TEST(ReadPprof, MalformedProfilesAreRefusedWithAReason) {
  {
    PprofBuilder b = go_like_cpu_profile();
    b.p.mutable_sample(0)->set_location_id(0, 99);
    auto p = read_profile(b.bytes());
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().message, "pprof: a sample refers to location 99, which is not in the profile");
  }
  {
    PprofBuilder b = go_like_cpu_profile();
    b.p.mutable_sample(1)->add_value(7);
    auto p = read_profile(b.bytes());
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().message, "pprof: sample 1 has 3 values for 2 sample types");
  }
  {
    PprofBuilder b = go_like_cpu_profile();
    b.p.mutable_sample(1)->set_value(1, -5);
    EXPECT_EQ(read_profile(b.bytes()).error().message, "pprof: sample 1 has a negative value");
  }
  {
    PprofBuilder b = go_like_cpu_profile();
    b.p.mutable_function(0)->set_name(1000);
    EXPECT_EQ(read_profile(b.bytes()).error().message, "pprof: a function names a string past the table");
  }
  {
    PprofBuilder b = go_like_cpu_profile();
    b.p.mutable_location(0)->mutable_line(0)->set_function_id(77);
    EXPECT_EQ(read_profile(b.bytes()).error().message,
              "pprof: location 1 refers to function 77, which is not in the profile");
  }
  {
    PprofBuilder b = go_like_cpu_profile();
    b.p.mutable_sample(0)->set_value(1, INT64_MAX);
    EXPECT_EQ(read_profile(b.bytes()).error().message, "pprof: the values add up past 2^63");
  }
  EXPECT_EQ(read_pprof(std::string("\x0a\xff\xff\xff", 4)).error().message, "pprof: not a profile.proto message");
  // Well-formed on the wire, but a proto3 string that is not UTF-8.
  EXPECT_EQ(read_pprof(std::string("\x32\x02\xff\xfe", 4)).error().message,
            "pprof: not a profile.proto message (or one with strings that are not UTF-8)");
  std::string gz = gzip(go_like_cpu_profile().bytes());
  EXPECT_EQ(read_profile(gz.substr(0, gz.size() / 2)).error().message, "gzip data is truncated");
}

TEST(ReadPprof, DecompressionAndExpansionAreBounded) {
  // A gzip bomb: 64 MiB of zeros in about 64 KiB.
  std::string bomb = gzip(std::string(64 << 20, '\0'));
  EXPECT_LT(bomb.size(), 100'000u);
  ProfileReadOptions o;
  o.max_bytes = 16 << 20;
  EXPECT_EQ(read_profile(bomb, o).error().message, "gzip data inflates past 16777216 bytes");

  // One location inlining 1,000 functions, in 1,000 samples: a million frames
  // from a file of a few kilobytes.
  PprofBuilder b;
  std::vector<uint64_t> fs;
  for (int i = 0; i < 1000; ++i) fs.push_back(b.function(std::string("f").append(std::to_string(i))));
  uint64_t l = b.location(fs);
  for (int i = 0; i < 1000; ++i) b.sample({l}, {1, 1});
  o = {};
  o.max_frames = 500'000;
  EXPECT_EQ(read_profile(b.bytes(), o).error().message,
            "pprof: more than 500000 frames or 1073741824 bytes of frame names in all");
  o.max_frames = 2'000'000;
  auto p = read_profile(b.bytes(), o);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->stacks.size(), 1u);
  EXPECT_EQ(p->stacks[0].frames.size(), 1000u);
  EXPECT_EQ(p->names[p->stacks[0].frames[0]], "f999");  // the outermost is the last line
}

TEST(ReadPprof, NamesArePrintableAndBounded) {
  PprofBuilder b;
  uint64_t evil = b.function("evil\nfake;stack 999\x1b[31m\xc2\x9b");
  uint64_t huge = b.function(std::string(10000, 'x'));
  b.sample({b.location({evil}), b.location({huge})}, {1, 1});
  auto p = read_profile(b.bytes());
  ASSERT_TRUE(p.ok()) << p.error().message;
  std::vector<std::string> names = names_of(*p, p->stacks[0]);
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[1], "evil fake;stack 999 [31m ");  // no newline, no escape, no C1
  EXPECT_EQ(names[0].size(), 4096u + 3);
  EXPECT_EQ(names[0].substr(4090), "xxxxxx...");
}

TEST(ReadPprof, AFileCannotExpandPastTheBudgets) {
  // One 4 KiB name in one location, referred to 100,000 times: 400 KB of
  // file, 400 MB of names once spelled out frame by frame.
  PprofBuilder b;
  uint64_t l = b.location({b.function(std::string(4000, 'n'))});
  for (int i = 0; i < 1000; ++i) b.sample(std::vector<uint64_t>(100, l), {1, 1});
  ProfileReadOptions o;
  o.max_frame_bytes = 100 << 20;
  EXPECT_EQ(read_profile(gzip(b.bytes()), o).error().message,
            "pprof: more than 50000000 frames or 104857600 bytes of frame names in all");
  // A million empty samples: two bytes each in the file, a hundred as objects.
  PprofBuilder empty;
  for (int i = 0; i < 1'000'000; ++i) empty.p.add_sample();
  std::string gz = gzip(empty.bytes());
  EXPECT_LT(gz.size(), 20'000u);
  o = {};
  o.max_messages = 500'000;
  EXPECT_EQ(read_profile(gz, o).error().message, "pprof: more than 500000 messages");
  // Inside a location, its lines count too.
  PprofBuilder lines;
  std::vector<uint64_t> fs(1000, lines.function("f"));
  for (int i = 0; i < 600; ++i) lines.location(fs);
  EXPECT_EQ(read_profile(lines.bytes(), o).error().message, "pprof: more than 500000 messages");
}

TEST(ReadPprof, SamplesFromAPeriodDoNotOverflow) {
  PprofBuilder b;
  b.p.clear_sample_type();
  b.add_type("cpu", "nanoseconds");  // samples = value / period
  b.sample({b.location({b.function("f")})}, {INT64_MAX});
  auto p = read_profile(b.bytes());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->total_samples(), INT64_MAX / 10'000'000);  // the remaining 0.48 of a period rounds down
}

TEST(ReadFolded, LinesCommentsAndMerging) {
  auto p = read_profile("# from perf\r\nmain;work;leaf 30\r\n\nmain;idle 10\nmain;work;leaf 5\nmain;;x 0\n");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->format, "folded");
  EXPECT_EQ(p->sample_type, "samples");
  auto stacks = by_text(*p);
  ASSERT_EQ(stacks.size(), 2u);
  EXPECT_EQ(stacks["main;work;leaf"], 35);
  EXPECT_EQ(stacks["main;idle"], 10);
  EXPECT_EQ(p->total_samples(), 45);
  // Names with spaces (C++ signatures) keep them: the count is after the last one.
  auto cxx = read_profile("main;std::vector<int, std::allocator<int> >::push_back(int const&) 7\n");
  ASSERT_TRUE(cxx.ok());
  EXPECT_EQ(by_text(*cxx).begin()->first, "main;std::vector<int, std::allocator<int> >::push_back(int const&)");
}

TEST(ReadFolded, ErrorsNameTheLine) {
  EXPECT_EQ(read_profile("a;b 1\nno_count\n").error().message, "folded: line 2 is not 'frame;frame;... count'");
  EXPECT_EQ(read_profile("a;b 1\n\na;c x1\n").error().message, "folded: line 3 ends in 'x1', not a count");
  EXPECT_EQ(read_profile("a;b -4\n").error().message, "folded: line 1 ends in '-4', not a count");
  EXPECT_EQ(read_profile("a 9223372036854775807\nb 1\n").error().message, "folded: the counts add up past 2^63");
  ProfileReadOptions o;
  o.sample_type = "cpu";
  EXPECT_EQ(read_profile("a 1\n", o).error().message, "folded stacks have one value; there is no sample type 'cpu'");
  o = {};
  o.max_frames = 5;
  EXPECT_EQ(read_profile("a;b;c 1\nd;e;f 1\n", o).error().message,
            "folded: more than 5 frames or 1073741824 bytes of frame names in all");
}

TEST(Summary, RecursionCountsOncePerStack) {
  auto p = read_profile("main;f;f;f 10\nmain;g;f 5\nmain;g 5\n");
  ASSERT_TRUE(p.ok());
  std::map<std::string, FunctionTotals> t;
  for (const auto& f : function_totals(*p)) t[p->names[f.name]] = f;
  EXPECT_EQ(t["main"].total_value, 20);
  EXPECT_EQ(t["main"].self_value, 0);
  EXPECT_EQ(t["f"].total_value, 15);
  EXPECT_EQ(t["f"].self_value, 15);
  EXPECT_EQ(t["g"].total_value, 10);
  EXPECT_EQ(t["g"].self_value, 5);
}

TEST(Summary, TopTableLikePprof) {
  auto p = read_profile(go_like_cpu_profile().bytes());
  ASSERT_TRUE(p.ok());
  std::string top = render_top(*p, TopOptions{3, false});
  EXPECT_EQ(top,
            "cpu/nanoseconds: 450ms in all, 45 samples; top 3 of 5 functions by flat\n"
            "        flat   flat%    sum%          cum    cum%  function\n"
            "       350ms  77.78%  77.78%        350ms  77.78%  leaf\n"
            "       100ms  22.22% 100.00%        100ms  22.22%  idle\n"
            "           0   0.00% 100.00%        350ms  77.78%  helper\n");
  std::string cum = render_top(*p, TopOptions{1, true});
  EXPECT_NE(cum.find("           0   0.00%   0.00%        450ms 100.00%  main\n"), std::string::npos) << cum;
  EXPECT_EQ(format_value(1'500'000'000, "nanoseconds"), "1.50s");
  EXPECT_EQ(format_value(3 << 20, "bytes"), "3.0MB");
  EXPECT_EQ(format_value(42, "count"), "42");
  EXPECT_EQ(format_value(12'500, "nanoseconds"), "12.5us");
}

// Folded text of one run of a program whose functions take the given shares,
// `n` samples drawn at random (a CPU profile is such a draw).
std::string run_of(const std::map<std::string, double>& shares, int n, std::mt19937_64& rng) {
  std::vector<std::string> stacks;
  std::vector<double> weights;
  for (const auto& [s, w] : shares) {
    stacks.push_back(s);
    weights.push_back(w);
  }
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  std::vector<int> counts(stacks.size());
  for (int i = 0; i < n; ++i) ++counts[pick(rng)];
  std::string out;
  for (size_t i = 0; i < stacks.size(); ++i) out += stacks[i] + " " + std::to_string(counts[i]) + "\n";
  return out;
}

const std::map<std::string, double> kProgram = {
    {"main;parse;lex", 20}, {"main;parse;build", 10}, {"main;solve;fast_caller;kernel", 30},
    {"main;solve;slow_caller;kernel", 10}, {"main;emit;write", 20}, {"main;emit;format", 10},
};

TEST(Diff, NoiseBetweenRunsOfTheSameProgramIsNotAChange) {
  // 200 pairs of runs of 1,000 samples each (10 s at 100 Hz): the shares move
  // by a few points from noise alone. The corrected test keeps the chance that
  // a diff calls anything significant at alpha (1%): about 2 of 200 diffs, and
  // more than 6 has a probability of 0.5%. With --fail-above 5 none may fail.
  std::mt19937_64 rng(7);
  int significant = 0, failed = 0;
  double widest = 0;
  for (int i = 0; i < 200; ++i) {
    auto a = read_profile(run_of(kProgram, 1000, rng));
    auto b = read_profile(run_of(kProgram, 1000, rng));
    ASSERT_TRUE(a.ok() && b.ok());
    auto d = diff_profiles(*a, *b);
    ASSERT_TRUE(d.ok()) << d.error().message;
    bool any = false;
    for (const auto& f : d->functions) {
      any = any || f.self.significant || f.total.significant;
      widest = std::max(widest, std::fabs(f.total.delta()));
    }
    significant += any;
    failed += !regressions(*d, 5).empty();
  }
  std::printf("[ figure ] Diff.Noise diffs_with_a_significant_change=%d of 200, widest_move_pp=%.2f\n",
              significant, widest);
  EXPECT_LE(significant, 6);
  EXPECT_EQ(failed, 0);
  EXPECT_GT(widest, 3.0);  // the noise is real: shares did move
}

TEST(Diff, AFourTimesSlowerCallerIsFoundAndNamed) {
  std::map<std::string, double> slower = kProgram;
  slower["main;solve;slow_caller;kernel"] *= 4;
  std::mt19937_64 rng(11);
  auto base = read_profile(run_of(kProgram, 1000, rng));
  auto next = read_profile(run_of(slower, 1000, rng));
  ASSERT_TRUE(base.ok() && next.ok());
  auto d = diff_profiles(*base, *next);
  ASSERT_TRUE(d.ok());
  auto regs = regressions(*d, 5);
  ASSERT_FALSE(regs.empty());
  EXPECT_EQ(regs[0]->name, "slow_caller");  // the biggest move comes first
  EXPECT_NEAR(regs[0]->total.base, 10, 3);
  EXPECT_NEAR(regs[0]->total.next, 30.8, 3);  // 40 of 130
  EXPECT_TRUE(regs[0]->total.significant);
  EXPECT_LT(regs[0]->total.p, 1e-6);
  for (const auto* r : regs) EXPECT_TRUE(r->name == "slow_caller" || r->name == "solve" || r->name == "kernel");
  // What shrank is reported, and is not a regression.
  bool saw_fast = false;
  for (const auto& f : d->functions)
    if (f.name == "fast_caller") saw_fast = f.total.delta() < 0;
  EXPECT_TRUE(saw_fast);
  EXPECT_TRUE(regressions(*d, 50).empty());
}

TEST(Diff, RenderingsAgree) {
  auto base = read_profile("main;a 60\nmain;b|c 40\n");
  auto next = read_profile("main;a 20\nmain;b|c 80\nmain;new 0\n");
  ASSERT_TRUE(base.ok() && next.ok());
  auto d = diff_profiles(*base, *next);
  ASSERT_TRUE(d.ok());

  std::string text = render_diff_text(*d, 10);
  EXPECT_NE(text.find("samples/count: base 100 (100 samples), new 100 (100 samples)"), std::string::npos) << text;
  EXPECT_NE(text.find("+40.00pp   40.00%   80.00% *   +40.00pp   40.00%   80.00% *  b|c"), std::string::npos) << text;

  std::string md = render_diff_markdown(*d, 10, 5);
  EXPECT_NE(md.find("**1 function grew by more than 5 points:** `b\\|c`"), std::string::npos) << md;
  EXPECT_NE(md.find("| `b\\|c` | 40.00% | 80.00% | **+40.00pp** |"), std::string::npos) << md;

  auto j = nlohmann::json::parse(render_diff_json(*d, 5));
  EXPECT_EQ(j["base"]["samples"], 100);
  EXPECT_EQ(j["test"]["tests"], 6);  // a, b|c, main: self and total each
  // a and b|c moved 40 points each (ties in name order); main did not move.
  EXPECT_EQ(j["functions"][0]["name"], "a");
  EXPECT_EQ(j["functions"][1]["name"], "b|c");
  EXPECT_EQ(j["functions"][1]["total"]["significant"], true);
  EXPECT_EQ(j["functions"][2]["total"]["p"], 1.0);
  EXPECT_EQ(j["regressions"], nlohmann::json::array({"b|c"}));

  EXPECT_EQ(render_diff_folded(*d), "main;a 60 20\nmain;b|c 40 80\n");
}

TEST(Diff, WithoutSampleCountsNothingIsMarkedSignificant) {
  PprofBuilder a, b;
  for (PprofBuilder* x : {&a, &b}) {
    x->p.clear_sample_type();
    x->add_type("cpu", "nanoseconds");
    x->p.set_period(0);  // no counts, no period: values are nanoseconds only
  }
  a.sample({a.location({a.function("f")})}, {10'000'000'000});
  a.sample({a.location({a.function("g")})}, {10'000'000'000});
  b.sample({b.location({b.function("f")})}, {10'000'000'000});
  b.sample({b.location({b.function("g")})}, {11'000'000'000});
  auto pa = read_profile(a.bytes()), pb = read_profile(b.bytes());
  ASSERT_TRUE(pa.ok() && pb.ok());
  auto d = diff_profiles(*pa, *pb);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->tested);
  for (const auto& f : d->functions) EXPECT_FALSE(f.self.significant || f.total.significant) << f.name;
  EXPECT_NE(render_diff_text(*d, 5).find("significance not tested"), std::string::npos);
}

TEST(Diff, IncompatibleOrEmptyProfilesAreRefused) {
  auto cpu = read_profile(go_like_cpu_profile().bytes());
  auto folded = read_profile("main 1\n");
  auto empty = read_profile("# nothing\n");
  ASSERT_TRUE(cpu.ok() && folded.ok() && empty.ok());
  EXPECT_EQ(diff_profiles(*cpu, *folded).error().message,
            "the profiles measure different things: cpu/nanoseconds against samples/count");
  EXPECT_EQ(diff_profiles(*folded, *empty).error().message, "the new profile is empty");
}

}  // namespace
}  // namespace ember
