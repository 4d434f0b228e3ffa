#include "agent/config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

namespace ember {
namespace {

using ::testing::HasSubstr;

TEST(Config, EmptyFileMeansDefaults) {
  auto c = parse_config("", "empty.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->frequency_hz, 100);
  EXPECT_EQ(c->interval, std::chrono::seconds(10));
  EXPECT_EQ(c->output.directory, "/var/lib/ember/profiles");
  EXPECT_EQ(c->sampler.ring_buffer_bytes, 0u);  // auto
  auto a = parse_config("sampler:\n  ring_buffer_size: auto\n", "a.yaml");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->sampler.ring_buffer_bytes, 0u);
}

TEST(Config, ParsesEveryKey) {
  const char* yaml = R"(
frequency: 250
interval: 30s
log_level: debug
labels:
  env: prod
  region: eu-west-1
output:
  directory: /tmp/profiles
  max_bytes: 2GiB
sampler:
  ring_buffer_size: 16MiB
  kernel_stacks: false
  user_stacks: true
  include_idle: yes
  max_processes: 1000
symbolizer:
  demangle: false
  cache_max_binaries: 64
  cache_max_bytes: 128MiB
paths:
  proc: /host/proc
  sys: /host/sys
)";
  auto c = parse_config(yaml, "full.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->frequency_hz, 250);
  EXPECT_EQ(c->interval, std::chrono::seconds(30));
  EXPECT_EQ(c->log_level, log::Level::kDebug);
  ASSERT_EQ(c->labels.size(), 2u);
  EXPECT_EQ(c->labels.at("env"), "prod");
  EXPECT_EQ(c->output.directory, "/tmp/profiles");
  EXPECT_EQ(c->output.max_bytes, 2ull << 30);
  EXPECT_EQ(c->sampler.ring_buffer_bytes, 16ull << 20);
  EXPECT_FALSE(c->sampler.kernel_stacks);
  EXPECT_TRUE(c->sampler.include_idle);
  EXPECT_EQ(c->sampler.max_processes, 1000u);
  EXPECT_FALSE(c->symbolizer.demangle.demangle);
  EXPECT_EQ(c->symbolizer.cache_max_binaries, 64u);
  EXPECT_EQ(c->symbolizer.cache_max_bytes, 128ull << 20);
  EXPECT_EQ(c->paths.proc, "/host/proc");
  EXPECT_EQ(c->paths.sys, "/host/sys");
}

TEST(Config, UnknownKeyNamesKeyAndLineAndSuggests) {
  auto c = parse_config("frequency: 99\nintervall: 10s\n", "ember.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("ember.yaml:2: intervall: unknown key"));
  EXPECT_THAT(c.error().message, HasSubstr("did you mean 'interval'"));
}

TEST(Config, NestedUnknownKeyHasItsFullName) {
  auto c = parse_config("output:\n  directory: /x\n  dir: /y\n", "f.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("f.yaml:3: output.dir: unknown key"));
}

TEST(Config, WrongTypeNamesKeyAndLine) {
  auto c = parse_config("interval: 10s\nfrequency: fast\n", "f.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("f.yaml:2: frequency: expected an integer, got 'fast'"));
  auto d = parse_config("sampler: [1, 2]\n", "f.yaml");
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(d.error().message, HasSubstr("f.yaml:1: sampler: expected a mapping"));
  auto e = parse_config("sampler:\n  kernel_stacks: maybe\n", "f.yaml");
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.error().message, HasSubstr("f.yaml:2: sampler.kernel_stacks: expected true or false"));
}

TEST(Config, OutOfRangeNamesKeyLineAndRange) {
  auto c = parse_config("frequency: 0\n", "f.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("f.yaml:1: frequency: 0 is out of range [1, 10000]"));
  auto d = parse_config("\ninterval: 100ms\n", "f.yaml");
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(d.error().message, HasSubstr("f.yaml:2: interval: 100ms is out of range [1s, 1h]"));
  auto e = parse_config("sampler:\n  ring_buffer_size: 2KiB\n", "f.yaml");
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.error().message, HasSubstr("f.yaml:2: sampler.ring_buffer_size: 2KiB is out of range"));
}

TEST(Config, ReportsEveryErrorAtOnce) {
  auto c = parse_config("frequency: -1\nbogus: 1\ninterval: soon\n", "f.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("f.yaml:1: frequency"));
  EXPECT_THAT(c.error().message, HasSubstr("f.yaml:2: bogus"));
  EXPECT_THAT(c.error().message, HasSubstr("f.yaml:3: interval"));
}

TEST(Config, DuplicateKeyIsAnError) {
  auto c = parse_config("frequency: 10\nfrequency: 20\n", "f.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("f.yaml:2: frequency: duplicate key"));
}

TEST(Config, InvalidYamlNamesLineAndColumn) {
  auto c = parse_config("frequency: 10\noutput: {directory: /x\n", "f.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("f.yaml:"));
  EXPECT_THAT(c.error().message, HasSubstr("invalid YAML"));
}

TEST(Config, BadLabelNamesAreRejected) {
  auto c = parse_config("labels:\n  9lives: x\n  __reserved: y\n  ok_name: z\n", "f.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("f.yaml:2: labels.9lives: invalid label name"));
  EXPECT_THAT(c.error().message, HasSubstr("f.yaml:3: labels.__reserved: invalid label name"));
}

TEST(Config, CrossFieldValidation) {
  auto c = parse_config("sampler:\n  kernel_stacks: false\n  user_stacks: false\n", "f.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("nothing to sample"));
}

TEST(Config, RenderedConfigParsesBackToTheSameValues) {
  Config c;
  c.frequency_hz = 333;
  c.interval = std::chrono::seconds(90);
  c.labels = {{"team", "core"}};
  c.output.directory = "/data/p";
  c.sampler.ring_buffer_bytes = 4ull << 20;
  auto back = parse_config(render_config(c), "rendered");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->frequency_hz, 333);
  EXPECT_EQ(back->interval, std::chrono::seconds(90));
  EXPECT_EQ(back->labels, c.labels);
  EXPECT_EQ(back->output.directory, "/data/p");
  EXPECT_EQ(back->sampler.ring_buffer_bytes, 4ull << 20);
}

TEST(Config, ProfilesAndOffCpuKeys) {
  auto d = parse_config("", "d.yaml");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->profiles.cpu);
  EXPECT_FALSE(d->profiles.off_cpu);
  EXPECT_FALSE(d->profiles.wall);
  EXPECT_EQ(d->off_cpu.min_wait.count(), 0);
  EXPECT_EQ(d->off_cpu.max_wait.count(), 0);

  auto c = parse_config("profiles: [off_cpu, wall]\noff_cpu:\n  min_wait: 2ms\n  max_wait: 1s\n"
                        "  max_waiting_threads: 1024\n",
                        "p.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c->profiles.cpu);
  EXPECT_TRUE(c->profiles.off_cpu);
  EXPECT_TRUE(c->profiles.wall);
  EXPECT_EQ(c->off_cpu.min_wait, std::chrono::milliseconds(2));
  EXPECT_EQ(c->off_cpu.max_wait, std::chrono::seconds(1));
  EXPECT_EQ(c->off_cpu.max_waiting_threads, 1024u);
  // perf's spelling is taken too.
  auto dash = parse_config("profiles: [cpu, off-cpu]\n", "p.yaml");
  ASSERT_TRUE(dash.ok());
  EXPECT_TRUE(dash->profiles.off_cpu);

  auto unknown = parse_config("frequency: 99\nprofiles: [cpu, heap]\n", "p.yaml");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.error().message,
              HasSubstr("p.yaml:2: profiles[1]: unknown profile 'heap' (expected cpu, off_cpu or wall)"));
  auto empty = parse_config("profiles: []\n", "p.yaml");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.error().message, HasSubstr("p.yaml:1: profiles: expected a list of profiles"));
  auto scalar = parse_config("profiles: cpu\n", "p.yaml");
  ASSERT_FALSE(scalar.ok());
  EXPECT_THAT(scalar.error().message, HasSubstr("profiles: expected a list"));
  auto unused = parse_config("off_cpu:\n  max_wait: 1s\n", "p.yaml");
  ASSERT_FALSE(unused.ok());
  EXPECT_THAT(unused.error().message, HasSubstr("off_cpu.max_wait: set, but profiles has neither off_cpu nor wall"));
  auto backwards = parse_config("profiles: [off_cpu]\noff_cpu:\n  min_wait: 1s\n  max_wait: 10ms\n", "p.yaml");
  ASSERT_FALSE(backwards.ok());
  EXPECT_THAT(backwards.error().message, HasSubstr("off_cpu.max_wait: 10ms is below off_cpu.min_wait"));
  auto typo = parse_config("off_cpu:\n  min_wiat: 1s\n", "p.yaml");
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(typo.error().message, HasSubstr("p.yaml:2: off_cpu.min_wiat: unknown key (did you mean 'off_cpu.min_wait'?)"));

  Config r;
  r.profiles = {true, false, true};
  Config long_wait;
  long_wait.profiles.off_cpu = true;
  long_wait.off_cpu.min_wait = std::chrono::hours(2);  // as --min-wait could set it
  EXPECT_FALSE(validate_config(long_wait).ok());
  r.off_cpu.min_wait = std::chrono::microseconds(500);
  r.off_cpu.max_wait = std::chrono::seconds(2);
  auto back = parse_config(render_config(r), "rendered");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->profiles, r.profiles);
  EXPECT_EQ(back->off_cpu.min_wait, r.off_cpu.min_wait);
  EXPECT_EQ(back->off_cpu.max_wait, r.off_cpu.max_wait);
  auto defaults = parse_config(render_config(Config{}), "rendered");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->off_cpu.max_wait.count(), 0);
}

TEST(Config, UnwinderAndSymbolizerKeys) {
  const char* yaml = R"(
sampler:
  unwinder: tables
  unwind_table_memory: 64MiB
symbolizer:
  demangle: simplified
  lines: false
  debug_dir: /opt/debug
  perf_maps: off
  debuginfod:
    urls: [https://debuginfod.debian.net, http://10.0.0.1:8002]
    cache_dir: /var/tmp/dbg
    timeout: 3s
)";
  auto c = parse_config(yaml, "sym.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->sampler.unwinder, UnwinderMode::kTables);
  EXPECT_EQ(c->sampler.unwind_table_bytes, 64ull << 20);
  EXPECT_TRUE(c->symbolizer.demangle.demangle);
  EXPECT_EQ(c->symbolizer.demangle.style, DemangleStyle::kSimplified);
  EXPECT_FALSE(c->symbolizer.lines);
  // Added to the default, not replacing it.
  EXPECT_EQ(c->symbolizer.debug_dirs, (std::vector<std::string>{"/usr/lib/debug", "/opt/debug"}));
  EXPECT_FALSE(c->symbolizer.perf_maps);
  EXPECT_EQ(c->symbolizer.debuginfod.urls,
            (std::vector<std::string>{"https://debuginfod.debian.net", "http://10.0.0.1:8002"}));
  EXPECT_EQ(c->symbolizer.debuginfod.cache_dir, "/var/tmp/dbg");
  EXPECT_EQ(c->symbolizer.debuginfod.timeout, std::chrono::seconds(3));

  // Defaults: full names with lines, no debuginfod, auto unwinder.
  auto d = parse_config("", "empty.yaml");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->sampler.unwinder, UnwinderMode::kAuto);
  EXPECT_TRUE(d->symbolizer.lines);
  EXPECT_TRUE(d->symbolizer.demangle.demangle);
  EXPECT_EQ(d->symbolizer.demangle.style, DemangleStyle::kFull);
  EXPECT_TRUE(d->symbolizer.debuginfod.urls.empty());
  // demangle: the old booleans still work.
  auto b = parse_config("symbolizer:\n  demangle: false\n", "b.yaml");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->symbolizer.demangle.demangle);

  // Round trip through --check's rendering.
  auto back = parse_config(render_config(*c), "rendered");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->sampler.unwinder, UnwinderMode::kTables);
  EXPECT_EQ(back->symbolizer.demangle.style, DemangleStyle::kSimplified);
  EXPECT_FALSE(back->symbolizer.lines);
  EXPECT_EQ(back->symbolizer.debuginfod.urls, c->symbolizer.debuginfod.urls);
  EXPECT_EQ(back->symbolizer.debuginfod.timeout, std::chrono::seconds(3));

  auto bad = parse_config(
      "sampler:\n  unwinder: dwarf\nsymbolizer:\n  demangle: maybe\n  debuginfod:\n    urls: [ftp://x]\n",
      "bad.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("bad.yaml:2: sampler.unwinder: expected auto, tables or fp"));
  EXPECT_THAT(bad.error().message, HasSubstr("bad.yaml:4: symbolizer.demangle: expected full, simplified or none"));
  EXPECT_THAT(bad.error().message, HasSubstr("bad.yaml:6: symbolizer.debuginfod.urls[0]: expected an http"));
}

TEST(Config, Sizes) {
  EXPECT_EQ(*parse_size("4096"), 4096u);
  EXPECT_EQ(*parse_size("64KiB"), 64u << 10);
  EXPECT_EQ(*parse_size("8M"), 8u << 20);
  EXPECT_EQ(*parse_size("1GiB"), 1ull << 30);
  EXPECT_EQ(*parse_size("1.5MiB"), 3u << 19);
  EXPECT_FALSE(parse_size("lots").ok());
  EXPECT_FALSE(parse_size("5 parsecs").ok());
  EXPECT_EQ(format_size(8u << 20), "8MiB");
}

}  // namespace
}  // namespace ember

namespace ember {
namespace {

// "Billion laughs": nine levels of nine aliases describe 9^9 (387 million)
// nodes in 10 lines. It is refused after the first 100,000, at once.
TEST(ConfigAbuse, AliasBombIsRefusedQuickly) {
  std::string yaml = "l0: &l0 [x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    std::string prev = "*l" + std::to_string(i - 1);
    yaml += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int j = 0; j < 9; ++j) yaml += (j ? ", " : "") + prev;
    yaml += "]\n";
  }
  yaml += "relabel_configs: *l9\n";
  auto t0 = std::chrono::steady_clock::now();
  auto c = parse_config(yaml, "bomb.yaml");
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("bomb.yaml:"));
  EXPECT_THAT(c.error().message, HasSubstr("more than 100000 YAML nodes"));
  // Far from the minutes (and gigabytes) a full walk would take.
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(ConfigAbuse, AnAliasThatContainsItselfIsRefused) {
  auto c = parse_config("relabel_configs: &a [*a]\n", "loop.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("loop.yaml:1:"));
}

TEST(ConfigAbuse, DeepNestingIsRefused) {
  std::string yaml = "labels: " + std::string(200, '[') + std::string(200, ']') + "\n";
  auto c = parse_config(yaml, "deep.yaml");
  ASSERT_FALSE(c.ok());
}

// Anchors have honest uses: one relabel rule shared by two lists.
TEST(ConfigAbuse, OrdinaryAnchorsStillWork) {
  auto c = parse_config(
      "relabel_configs:\n"
      "  - &drop_batch\n"
      "    source_labels: [__meta_process_comm]\n"
      "    regex: batch.*\n"
      "    action: drop\n"
      "  - *drop_batch\n",
      "anchors.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->relabel_configs.size(), 2u);
}

TEST(ConfigAbuse, AFileOverOneMebibyteIsRefused) {
  char path[] = "/tmp/ember-config-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string line = "# " + std::string(1000, 'x') + "\n";
  for (int i = 0; i < 1100; ++i) ASSERT_EQ(write(fd, line.data(), line.size()), ssize_t(line.size()));
  close(fd);
  auto c = load_config_file(path);
  unlink(path);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("larger than 1MiB"));
}

}  // namespace
}  // namespace ember
