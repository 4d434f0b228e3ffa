// symbolize_bench: times Ember's symbolizer library resolving a batch of
// addresses with source lines and inlined frames, the work of
// `llvm-symbolizer --inlining` or `addr2line -f -i`.
//
//   cold: from opening the ELF (nothing parsed) to the last address resolved,
//         load time included; one pass in address-file order.
//   warm: further passes over the same addresses with everything parsed;
//         ns per Binary::describe() call, median of the passes. One more
//         pass in shuffled order shows the cost when lookups do not follow
//         each other in memory (a profiler's sample order).
//
// Every frame's name length, line and the frame counts go into a checksum
// that is printed, so no lookup can be optimized away, and every pass must
// produce the same checksum.
//
// Usage: ember_bench_symbolize [--warm N] [--no-cache] [--output FILE] BINARY ADDRESS_FILE
//   ADDRESS_FILE: one hex address per line (0x optional), ELF vaddrs.
//   --warm N:     warm passes after the cold one (default 2; 0 = cold only).
//   --no-cache:   turn off Binary's per-address answer cache (FrameCache), to
//                 time the DWARF lookup itself on warm passes.
//   --output F:   also write the cold pass's answers to F ("-" = stdout) in
//                 llvm-symbolizer's format (function, file:line:0, blank
//                 line), for comparing with other tools. Writing is part of
//                 the cold time, as it is for the tools this is compared with.
// Results go to stderr as "key: value" lines.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "symbolizer/dwarf_info.h"
#include "symbolizer/binary.h"

using namespace ember;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// CPU seconds (user + system) this process has used so far: unlike wall
// time, not inflated when other processes compete for the CPUs.
double cpu_seconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Folds one lookup's answer into a running checksum.
uint64_t mix(uint64_t sum, const std::vector<SourceFrame>& frames) {
  sum = sum * 1000003u + frames.size();
  for (const auto& f : frames)
    sum = sum * 31u + uint64_t(f.line) * 7u + f.function.size() + f.file.size() * 13u;
  return sum;
}

void write_frames(FILE* out, const std::vector<SourceFrame>& frames) {
  if (frames.empty()) std::fputs("??\n??:0:0\n", out);
  for (const auto& f : frames)
    std::fprintf(out, "%s\n%s:%d:0\n", f.function.empty() ? "??" : f.function.c_str(),
                 f.file.empty() ? "??" : f.file.c_str(), f.line);
  std::fputc('\n', out);
}

}  // namespace

int main(int argc, char** argv) {
  int warm = 2;
  const char* output = nullptr;
  bool cache = true;
  std::vector<const char*> args;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--warm") && i + 1 < argc) warm = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--output") && i + 1 < argc) output = argv[++i];
    else if (!std::strcmp(argv[i], "--no-cache")) cache = false;
    else args.push_back(argv[i]);
  }
  if (args.size() != 2) {
    std::fprintf(stderr, "usage: %s [--warm N] [--output FILE] BINARY ADDRESS_FILE\n", argv[0]);
    return 2;
  }
  std::vector<uint64_t> addrs;
  {
    // Read whole, parsed in place: input parsing is not what is measured.
    std::ifstream in(args[1], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", args[1]);
      return 2;
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const char* p = text.c_str();
    while (*p) {
      char* end = nullptr;
      uint64_t a = std::strtoull(p, &end, 16);
      if (end == p) {  // not a number: skip the line
        while (*p && *p != '\n') ++p;
        if (*p) ++p;
        continue;
      }
      addrs.push_back(a);
      p = end;
    }
  }
  FILE* out = nullptr;
  if (output) {
    out = std::strcmp(output, "-") == 0 ? stdout : std::fopen(output, "w");
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", output);
      return 2;
    }
  }

  // Cold: open, load, resolve every address once.
  double cpu_start = cpu_seconds();
  auto start = Clock::now();
  auto elf = ElfFile::open(args[0]);
  if (!elf) {
    std::fprintf(stderr, "%s\n", elf.error().message.c_str());
    return 1;
  }
  Binary::LoadOptions opts;
  opts.dwarf = true;
  if (!cache) opts.frame_cache_addresses = 0;
  auto loaded = Binary::load(std::move(*elf), opts);
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
    return 1;
  }
  std::shared_ptr<Binary> bin = *loaded;
  double load_s = seconds_since(start);
  std::vector<SourceFrame> frames;
  uint64_t cold_sum = 0;
  size_t total_frames = 0, unknown = 0;
  for (uint64_t a : addrs) {
    bin->describe(a, /*lines=*/true, /*demangle=*/true, &frames);
    cold_sum = mix(cold_sum, frames);
    total_frames += frames.size();
    unknown += frames.empty();
    if (out) write_frames(out, frames);
  }
  if (out && out != stdout) std::fclose(out);
  if (out == stdout) std::fflush(stdout);
  double cold_s = seconds_since(start);
  double cold_cpu_s = cpu_seconds() - cpu_start;

  std::fprintf(stderr, "binary: %s\n", args[0]);
  std::fprintf(stderr, "dwarf: %s\n", bin->has_dwarf() ? bin->dwarf_source().c_str() : "none");
  std::fprintf(stderr, "addresses: %zu\n", addrs.size());
  std::fprintf(stderr, "frames: %zu (unknown addresses: %zu)\n", total_frames, unknown);
  std::fprintf(stderr, "cold_load_s: %.4f\n", load_s);
  std::fprintf(stderr, "cold_total_s: %.4f\n", cold_s);
  std::fprintf(stderr, "cold_cpu_s: %.4f\n", cold_cpu_s);
  std::fprintf(stderr, "cold_addresses_per_s: %.0f\n", double(addrs.size()) / cold_s);
  std::fprintf(stderr, "checksum: %016" PRIx64 "\n", cold_sum);

  // Warm: the same addresses again, everything parsed.
  bool same = true;
  std::vector<double> ns;
  for (int pass = 0; pass < warm; ++pass) {
    uint64_t sum = 0;
    auto t = Clock::now();
    for (uint64_t a : addrs) {
      bin->describe(a, true, true, &frames);
      sum = mix(sum, frames);
    }
    ns.push_back(seconds_since(t) * 1e9 / double(std::max<size_t>(addrs.size(), 1)));
    same = same && sum == cold_sum;
  }
  if (warm > 0) {
    std::vector<double> sorted = ns;
    std::sort(sorted.begin(), sorted.end());
    double median = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                      : (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]) / 2;
    std::fprintf(stderr, "warm_passes_ns:");
    for (double v : ns) std::fprintf(stderr, " %.1f", v);
    std::fprintf(stderr, "\nwarm_ns_per_lookup: %.1f\n", median);
    std::fprintf(stderr, "warm_addresses_per_s: %.0f\n", 1e9 / median);

    // Shuffled order: what a profiler's samples look like.
    std::vector<uint64_t> shuffled = addrs;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(42));
    uint64_t sum = 0;
    auto t = Clock::now();
    for (uint64_t a : shuffled) {
      bin->describe(a, true, true, &frames);
      sum += frames.size();
    }
    std::fprintf(stderr, "warm_shuffled_ns_per_lookup: %.1f (frames %" PRIu64 ")\n",
                 seconds_since(t) * 1e9 / double(std::max<size_t>(addrs.size(), 1)), sum);
    std::fprintf(stderr, "warm_checksum_matches_cold: %s\n", same ? "yes" : "NO");
    std::fprintf(stderr, "cached_addresses: %zu\n", bin->cached_addresses());
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  std::fprintf(stderr, "binary_memory_bytes: %zu\n", bin->memory_bytes());
  std::fprintf(stderr, "peak_rss_kb: %ld\n", ru.ru_maxrss);
  return same ? 0 : 1;
}
