// GoPclntab: symbolization of Go binaries from .gopclntab alone.
//
// The real-binary tests build tests/fixtures/go_workload with the installed
// Go toolchain (skipped without one), normally, stripped (-s -w) and as PIE,
// and compare lookups on the *stripped* binaries with llvm-symbolizer
// --inlining on the unstripped ones (it reads the DWARF Go emits). Function
// names and inline chains must agree on every address, file:line on 99%.
//
// DWARF and the Go runtime name a few things differently; those addresses
// are counted separately and printed, not hidden:
//   - assembly functions: DWARF has the linker's ABI suffix
//     ("runtime.rt0_go.abi0"), the runtime prints "runtime.rt0_go";
//   - generic instantiations: the runtime's name table elides the type
//     arguments ("pkg.F[...]"), DWARF spells them out;
//   - compiler-generated method wrappers (DW_AT_trampoline): the pclntab
//     records the calls inlined into them, DWARF does not, so DWARF shows one
//     frame where the runtime shows the inlined method and the wrapper.
//
// A synthetic ELF test covers the layouts no installed toolchain produces
// here (Go 1.16/1.17, Go 1.20+ inline trees) and PIE relocations.
//
// Set EMBER_GO_CROSS=1 to also check arm64, 386 and s390x builds (pc quantum
// 4, 4-byte pointers, big-endian); each costs a standard-library build.
#include "unit/reference_tools.h"
#include "symbolizer/go_pclntab.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "symbolizer/binary.h"

namespace ember {
namespace {

// ---------------------------------------------------------------------------
// helpers

using reftools::run_capture;
using reftools::shq;

bool have_tool(const char* name) {
  return system(("command -v " + std::string(name) + " >/dev/null 2>&1").c_str()) == 0;
}

std::string base(const std::string& path) {
  size_t s = path.rfind('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

std::string workload_source() {
#ifdef GO_WORKLOAD_SRC
  return GO_WORKLOAD_SRC;
#else
  std::string here = __FILE__;  // .../tests/unit/go_pclntab_test.cc
  size_t s = here.rfind('/');
  std::string dir = s == std::string::npos ? "." : here.substr(0, s);
  return dir + "/../fixtures/go_workload/main.go";
#endif
}

// A copy of an ELF file with its section headers removed (e_shoff, e_shnum,
// e_shstrndx zeroed), as some packers and sstrip leave binaries.
bool write_without_section_headers(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (b.size() < 64 || b.compare(0, 4, "\x7f" "ELF") != 0) return false;
  if (b[4] == 2) {  // ELFCLASS64
    std::memset(&b[0x28], 0, 8);
    std::memset(&b[0x3c], 0, 4);
  } else {
    std::memset(&b[0x20], 0, 4);
    std::memset(&b[0x30], 0, 4);
  }
  std::ofstream out(to, std::ios::binary);
  out.write(b.data(), std::streamsize(b.size()));
  out.close();
  return chmod(to.c_str(), 0755) == 0 && out.good();
}

std::unique_ptr<GoPclntab> open_table(const std::string& path) {
  auto elf = ElfFile::open(path);
  EXPECT_TRUE(elf.ok()) << path;
  if (!elf.ok()) return nullptr;
  auto t = GoPclntab::open(**elf);
  EXPECT_TRUE(t.ok()) << path << ": " << (t.ok() ? "" : t.error().message);
  if (!t.ok()) return nullptr;
  return std::move(*t);
}

// ---------------------------------------------------------------------------
// The Go builds, made once per test binary run into a temporary directory.

struct GoBuilds {
  std::string skip;   // non-empty: why the real-binary tests are skipped
  std::string error;  // non-empty: a build failed
  std::string dir, go_version;
  std::string debug, stripped, pie_debug, pie_stripped;

  std::string env() const {
    const char* cache = getenv("EMBER_GO_CACHE");  // reuse a cache across runs (development)
    std::string c = cache && *cache ? cache : dir + "/cache";
    return "GO111MODULE=off GOPATH=" + shq(dir + "/gopath") + " GOCACHE=" + shq(c) +
           " GOFLAGS= CGO_ENABLED=0 ";
  }
  // Builds the workload; returns "" or the compiler's output.
  std::string build(const std::string& out, const std::string& flags,
                    const std::string& goarch = "") const {
    std::string cmd = "cd " + shq(dir + "/src") + " && " + env() +
                      (goarch.empty() ? "" : "GOARCH=" + goarch + " ") + "nice -n 19 go build " +
                      flags + " -o " + shq(out) + " main.go 2>&1";
    int st = 0;
    std::string log = run_capture(cmd, &st);
    return st == 0 ? "" : "`" + cmd + "` failed:\n" + log;
  }
};

GoBuilds* make_builds() {
  auto* b = new GoBuilds;
  if (!have_tool("go")) {
    b->skip = "no Go toolchain (`go`) on PATH";
    return b;
  }
  char tmpl[] = "/tmp/ember-go-pclntab-XXXXXX";
  if (!mkdtemp(tmpl)) {
    b->error = "mkdtemp failed";
    return b;
  }
  b->dir = tmpl;
  static std::string cleanup_dir;
  cleanup_dir = b->dir;
  if (!getenv("EMBER_KEEP_GO_BUILDS"))
    std::atexit([] { system(("rm -rf " + shq(cleanup_dir)).c_str()); });
  mkdir((b->dir + "/src").c_str(), 0755);
  mkdir((b->dir + "/gopath").c_str(), 0755);
  {
    std::ifstream in(workload_source());
    if (!in) {
      b->error = "cannot read " + workload_source();
      return b;
    }
    std::ofstream out(b->dir + "/src/main.go");
    out << in.rdbuf();
  }
  b->go_version = run_capture("go env GOVERSION 2>/dev/null");
  while (!b->go_version.empty() && isspace(uint8_t(b->go_version.back()))) b->go_version.pop_back();
  b->debug = b->dir + "/go_workload";
  b->stripped = b->dir + "/go_workload.stripped";
  b->pie_debug = b->dir + "/go_workload.pie";
  b->pie_stripped = b->dir + "/go_workload.pie.stripped";
  // Uncompressed DWARF for the reference (llvm-symbolizer 14 and .zdebug).
  const std::string dbg = "-ldflags=-compressdwarf=false";
  const std::string strip = "-ldflags=\"-s -w\"";
  for (const auto& [out, flags] : std::vector<std::pair<std::string, std::string>>{
           {b->debug, dbg},
           {b->stripped, strip},
           {b->pie_debug, "-buildmode=pie " + dbg},
           {b->pie_stripped, "-buildmode=pie " + strip}}) {
    b->error = b->build(out, flags);
    if (!b->error.empty()) return b;
  }
  return b;
}

const GoBuilds& builds() {
  static GoBuilds* b = make_builds();
  return *b;
}

// Skips (no Go) or fails (build broke) the calling test.
#define REQUIRE_GO_BUILDS()                                             \
  do {                                                                  \
    if (!builds().skip.empty()) GTEST_SKIP() << builds().skip;          \
    ASSERT_TRUE(builds().error.empty()) << builds().error;              \
  } while (0)

// ---------------------------------------------------------------------------
// Reference: llvm-symbolizer --inlining over DWARF.

using reftools::Frame;

struct Insn {
  uint64_t addr;
  std::string symbol;  // the ELF symbol objdump puts it under
  bool int3 = false;   // x86 padding between functions
};

// Instructions of .text, from objdump (llvm-objdump for foreign machines).
std::vector<Insn> instructions(const std::string& path) {
  std::string tool = have_tool("llvm-objdump") ? "llvm-objdump" : "objdump";
  std::string dis = run_capture(tool + " -d --no-show-raw-insn -j .text " + shq(path) + " 2>/dev/null");
  std::vector<Insn> all;
  std::istringstream in(dis);
  std::string line, sym;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line[0] != ' ') {  // "0000000000401000 <internal/cpu.Initialize>:"
      size_t lt = line.find(" <"), gt = line.rfind(">:");
      if (lt != std::string::npos && gt != std::string::npos && gt > lt) sym = line.substr(lt + 2, gt - lt - 2);
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    char* end = nullptr;
    uint64_t a = std::strtoull(line.c_str(), &end, 16);
    if (end && *end == ':' && a) all.push_back({a, sym, line.find("int3") != std::string::npos});
  }
  return all;
}

// Every instruction of the program's own functions (main.*), and enough of
// the rest (the runtime and standard library), evenly spread, for `others`.
std::vector<uint64_t> sample_addresses(const std::vector<Insn>& all, size_t others) {
  size_t rest = 0;
  for (const auto& i : all) rest += i.symbol.rfind("main.", 0) != 0;
  size_t step = std::max<size_t>(1, rest / std::max<size_t>(1, others));
  std::vector<uint64_t> out;
  size_t k = 0;
  for (const auto& i : all) {
    if (i.symbol.rfind("main.", 0) == 0) out.push_back(i.addr);
    else if (k++ % step == 0) out.push_back(i.addr);
  }
  return out;
}

std::vector<std::vector<Frame>> reference(const std::string& path, const std::vector<uint64_t>& addrs) {
  return reftools::llvm_symbolize(path, addrs, /*demangle=*/true);
}

// ours (runtime naming) vs theirs (DWARF naming); sets the category used.
enum class NameMatch { kNo, kExact, kAbiSuffix, kGenericElided };
NameMatch match_name(const std::string& ours, const std::string& theirs) {
  if (ours == theirs) return NameMatch::kExact;
  const std::string abi = ".abi0";
  if (theirs.size() > abi.size() && theirs.compare(theirs.size() - abi.size(), abi.size(), abi) == 0 &&
      theirs.compare(0, theirs.size() - abi.size(), ours) == 0)
    return NameMatch::kAbiSuffix;
  // "pkg.F[...].m" matches "pkg.F[go.shape.int].m": same text outside the
  // outermost brackets.
  size_t e = ours.find("[...]");
  if (e != std::string::npos) {
    std::string head = ours.substr(0, e), tail = ours.substr(e + 5);
    if (theirs.size() > head.size() + tail.size() && theirs.compare(0, head.size(), head) == 0 &&
        theirs[head.size()] == '[' &&
        theirs.compare(theirs.size() - tail.size(), tail.size(), tail) == 0 &&
        theirs[theirs.size() - tail.size() - 1] == ']')
      return NameMatch::kGenericElided;
  }
  return NameMatch::kNo;
}

struct Agreement {
  size_t addresses = 0;       // compared (at least one side knows the address)
  size_t both_unknown = 0;    // padding between functions: neither knows it
  size_t with_inlined = 0;    // addresses whose chain has inlined frames
  size_t name_mismatch = 0;   // names or inline chains differ
  size_t abi_suffix = 0, generic_elided = 0, dwarf_wrapper = 0;
  size_t frames = 0, line_mismatch = 0;
  bool saw_three_level_chain = false;  // main.square <- main.point.norm2 <- main.weigh <- main.burn
  double ns_per_lookup = 0;
};

Agreement compare_with_llvm(const GoPclntab& table, const std::string& reference_binary,
                            size_t others, const std::string& label) {
  Agreement a;
  auto addrs = sample_addresses(instructions(reference_binary), others);
  auto ref = reference(reference_binary, addrs);
  EXPECT_EQ(ref.size(), addrs.size()) << label;
  std::vector<SourceFrame> ours;
  for (size_t i = 0; i < addrs.size() && i < ref.size(); ++i) {
    bool known = table.lookup(addrs[i], &ours);
    const auto& theirs = ref[i];
    bool theirs_unknown = theirs.empty() || (theirs.size() == 1 && theirs[0].function.empty());
    if (!known && theirs_unknown) {
      ++a.both_unknown;
      continue;
    }
    ++a.addresses;
    if (ours.size() > 1) ++a.with_inlined;
    if (ours.size() == 4 && ours[0].function == "main.square" && ours[1].function == "main.point.norm2" &&
        ours[2].function == "main.weigh" && ours[3].function == "main.burn")
      a.saw_three_level_chain = true;
    auto describe = [](const auto& frames) {
      std::string s;
      for (const auto& f : frames) s += f.function + " (" + base(f.file) + ":" + std::to_string(f.line) + ") | ";
      return s.empty() ? std::string("(none)") : s;
    };
    bool names_ok = ours.size() == theirs.size();
    bool abi = false, generic = false;
    for (size_t k = 0; names_ok && k < ours.size(); ++k) {
      NameMatch m = match_name(ours[k].function, theirs[k].function);
      names_ok = m != NameMatch::kNo;
      abi |= m == NameMatch::kAbiSuffix;
      generic |= m == NameMatch::kGenericElided;
    }
    if (!names_ok && theirs.size() == 1 && ours.size() > 1 && ours.back().function == theirs[0].function &&
        ours.back().file == "<autogenerated>" && base(ours[0].file) == base(theirs[0].file) &&
        ours[0].line == theirs[0].line) {
      // A compiler-generated wrapper with calls inlined into it: DWARF has
      // no inline records for it (DW_AT_trampoline) and shows the wrapper
      // at the inlined method's line; the pclntab has the inlined frames.
      ++a.dwarf_wrapper;
      if (a.dwarf_wrapper <= 3)
        std::printf("[ wrap ] %s 0x%llx\n    ours:   %s\n    theirs: %s\n", label.c_str(),
                    (unsigned long long)addrs[i], describe(ours).c_str(), describe(theirs).c_str());
      continue;
    }
    if (!names_ok) {
      if (++a.name_mismatch <= 20)
        ADD_FAILURE() << label << " 0x" << std::hex << addrs[i] << std::dec << "\n  ours:   "
                      << (known ? describe(ours) : "(not found)") << "\n  theirs: " << describe(theirs);
      continue;
    }
    a.abi_suffix += abi;
    a.generic_elided += generic;
    for (size_t k = 0; k < ours.size(); ++k) {
      ++a.frames;
      if (base(ours[k].file) != base(theirs[k].file) || ours[k].line != theirs[k].line) {
        if (++a.line_mismatch <= 20)
          std::printf("[ line ] %s 0x%llx frame %zu (%s): ours %s:%d, theirs %s:%d\n", label.c_str(),
                      (unsigned long long)addrs[i], k, ours[k].function.c_str(), ours[k].file.c_str(),
                      ours[k].line, theirs[k].file.c_str(), theirs[k].line);
      }
    }
  }
  // Lookup cost over the same addresses.
  const int rounds = 20;
  auto t0 = std::chrono::steady_clock::now();
  size_t found = 0;
  for (int r = 0; r < rounds; ++r)
    for (uint64_t addr : addrs) found += table.lookup(addr, &ours);
  auto dt = std::chrono::steady_clock::now() - t0;
  a.ns_per_lookup = double(std::chrono::duration_cast<std::chrono::nanoseconds>(dt).count()) /
                    double(rounds * std::max<size_t>(1, addrs.size()));
  EXPECT_GT(found, 0u);
  std::printf("[ info ] %s: %zu addresses compared (%zu with inlined frames), %zu padding addresses "
              "unknown to both; %zu name/inline-chain mismatches; %zu frames, %zu line mismatches "
              "(%.3f%% agree); naming differences: %zu ABI-suffixed asm names, %zu elided generic "
              "names, %zu wrapper addresses DWARF does not expand; %.0f ns per lookup\n",
              label.c_str(), a.addresses, a.with_inlined, a.both_unknown, a.name_mismatch, a.frames,
              a.line_mismatch,
              a.frames ? 100.0 * double(a.frames - a.line_mismatch) / double(a.frames) : 100.0,
              a.abi_suffix, a.generic_elided, a.dwarf_wrapper, a.ns_per_lookup);
  return a;
}

void expect_agreement(const Agreement& a) {
  EXPECT_GE(a.addresses, 2000u);
  EXPECT_EQ(a.name_mismatch, 0u);
  EXPECT_LE(double(a.line_mismatch), 0.01 * double(a.frames));
  EXPECT_GE(a.with_inlined, 100u);
  EXPECT_GT(a.both_unknown, 0u);  // padding was sampled, and both agree it is nobody's
  // The wrapper difference stays a rarity (a few autogenerated methods).
  EXPECT_LE(double(a.dwarf_wrapper), 0.01 * double(a.addresses));
}

// ---------------------------------------------------------------------------
// Real binaries

class GoPclntabReal : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_GO_BUILDS();
    if (!have_tool("llvm-symbolizer")) GTEST_SKIP() << "llvm-symbolizer is needed as the reference";
  }
};

TEST_F(GoPclntabReal, StrippedBinaryAgreesWithLlvmSymbolizer) {
  // The stripped binary really has neither symbols nor DWARF.
  std::string sections = run_capture("readelf -SW " + shq(builds().stripped));
  EXPECT_EQ(sections.find(".symtab"), std::string::npos);
  EXPECT_EQ(sections.find(".debug_info"), std::string::npos);
  EXPECT_NE(sections.find(".gopclntab"), std::string::npos);

  auto table = open_table(builds().stripped);
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->format(), GoPclntab::Format::kGo118);  // Go 1.18/1.19's layout
  EXPECT_STREQ(table->source(), "section");
  EXPECT_TRUE(table->has_inline_tree());
  Agreement a = compare_with_llvm(*table, builds().debug, 3000, "go_workload (stripped)");
  expect_agreement(a);
  EXPECT_TRUE(a.saw_three_level_chain) << "main.square inlined through norm2 and weigh into burn";
}

TEST_F(GoPclntabReal, StrippedPieAgreesWithLlvmSymbolizer) {
  auto table = open_table(builds().pie_stripped);
  ASSERT_NE(table, nullptr);
  EXPECT_TRUE(table->has_inline_tree());  // moduledata found through its relocation
  Agreement a = compare_with_llvm(*table, builds().pie_debug, 3000, "go_workload (PIE, stripped)");
  expect_agreement(a);
}

TEST_F(GoPclntabReal, WithoutSectionHeadersTheScanFindsTheSameTable) {
  for (const std::string& path : {builds().stripped, builds().pie_stripped}) {
    std::string nosh = path + ".nosh";
    ASSERT_TRUE(write_without_section_headers(path, nosh));
    auto with = open_table(path);
    auto without = open_table(nosh);
    ASSERT_NE(with, nullptr);
    ASSERT_NE(without, nullptr);
    EXPECT_STREQ(without->source(), "scan");
    EXPECT_EQ(without->function_count(), with->function_count());
    EXPECT_EQ(without->text_start(), with->text_start());
    EXPECT_TRUE(without->has_inline_tree());
    EXPECT_EQ(without->go_version(), with->go_version());
    size_t compared = 0, differ = 0;
    std::vector<SourceFrame> a, b;
    for (const auto& insn : instructions(builds().debug)) {
      if (compared++ % 7) continue;
      bool fa = with->lookup(insn.addr, &a), fb = without->lookup(insn.addr, &b);
      bool same = fa == fb && a.size() == b.size();
      for (size_t k = 0; same && k < a.size(); ++k)
        same = a[k].function == b[k].function && a[k].file == b[k].file && a[k].line == b[k].line;
      if (!same && ++differ <= 5) ADD_FAILURE() << nosh << " differs at 0x" << std::hex << insn.addr;
    }
    EXPECT_EQ(differ, 0u) << nosh;
  }
}

TEST(GoPclntabEdges, NonGoElfFailsCleanly) {
  for (const char* path : {"/bin/true", "/bin/sh"}) {
    auto elf = ElfFile::open(path);
    if (!elf.ok()) continue;
    auto t = GoPclntab::open(**elf);
    ASSERT_FALSE(t.ok()) << path;
    EXPECT_NE(t.error().message.find("not a Go binary"), std::string::npos) << t.error().message;
  }
  // Without section headers the scan runs, and must not invent a table.
  char tmpl[] = "/tmp/ember-nogo-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_TRUE(write_without_section_headers("/bin/true", tmpl));
  auto elf = ElfFile::open(tmpl);
  ASSERT_TRUE(elf.ok());
  auto t = GoPclntab::open(**elf);
  EXPECT_FALSE(t.ok());
  unlink(tmpl);
}

TEST(GoPclntabEdges, OutsideFunctionsAndTheLastFunction) {
  REQUIRE_GO_BUILDS();
  auto table = open_table(builds().stripped);
  ASSERT_NE(table, nullptr);
  std::vector<SourceFrame> frames;
  EXPECT_FALSE(table->lookup(0, &frames));
  EXPECT_TRUE(frames.empty());
  EXPECT_FALSE(table->lookup(table->text_start() - 1, &frames));
  EXPECT_FALSE(table->lookup(~0ull, &frames));

  // The text symbols of the unstripped twin, in address order: the last
  // function before runtime.etext, and runtime.etext itself (the end).
  std::string nm = run_capture("nm -n " + shq(builds().debug));
  std::istringstream in(nm);
  std::string line;
  uint64_t last_fn = 0, etext = 0;
  std::string last_name;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string addr, type, name;
    if (!(ls >> addr >> type >> name) || (type != "T" && type != "t")) continue;
    uint64_t a = std::strtoull(addr.c_str(), nullptr, 16);
    if (name == "runtime.etext") {
      etext = a;
      break;
    }
    last_fn = a;
    last_name = name;
  }
  ASSERT_NE(etext, 0u);
  ASSERT_NE(last_fn, 0u);
  EXPECT_FALSE(table->lookup(etext, &frames));
  EXPECT_FALSE(table->lookup(etext + 0x1000, &frames));
  ASSERT_TRUE(table->lookup(last_fn, &frames)) << last_name;
  EXPECT_NE(match_name(frames.back().function, last_name), NameMatch::kNo)
      << frames.back().function << " vs " << last_name;
  EXPECT_FALSE(frames.back().inlined);
  // Its last real instruction still belongs to it; the padding after it
  // belongs to nobody.
  uint64_t last_insn = 0, padding = 0;
  for (const auto& insn : instructions(builds().debug)) {
    if (insn.addr < last_fn || insn.addr >= etext || insn.symbol != last_name) continue;
    if (!insn.int3) last_insn = insn.addr;
    else if (last_insn && !padding) padding = insn.addr;
  }
  ASSERT_NE(last_insn, 0u);
  ASSERT_TRUE(table->lookup(last_insn, &frames)) << std::hex << last_insn;
  EXPECT_NE(match_name(frames.back().function, last_name), NameMatch::kNo);
  if (padding) {
    EXPECT_FALSE(table->lookup(padding, &frames)) << std::hex << padding;
  }
}

TEST(GoPclntabEdges, VersionLifetimeMemoryAndThreads) {
  REQUIRE_GO_BUILDS();
  std::unique_ptr<GoPclntab> table;
  {
    auto elf = ElfFile::open(builds().stripped);
    ASSERT_TRUE(elf.ok());
    auto t = GoPclntab::open(**elf);
    ASSERT_TRUE(t.ok()) << t.error().message;
    table = std::move(*t);
  }  // the ElfFile is gone; the table maps the file itself
  if (!builds().go_version.empty()) {
    EXPECT_EQ(table->go_version(), builds().go_version);
  }
  EXPECT_EQ(table->go_version().rfind("go1.", 0), 0u) << table->go_version();
  EXPECT_LT(table->memory_bytes(), 4096u);

  auto insns = instructions(builds().debug);
  ASSERT_GT(insns.size(), 1000u);
  std::vector<std::vector<SourceFrame>> expect(insns.size());
  std::vector<char> found(insns.size());
  for (size_t i = 0; i < insns.size(); ++i) found[i] = table->lookup(insns[i].addr, &expect[i]);
  size_t mism[2] = {0, 0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::vector<SourceFrame> f;
      for (size_t i = t; i < insns.size(); i += 2) {
        bool ok = table->lookup(insns[i].addr, &f);
        if (ok != bool(found[i]) || f.size() != expect[i].size() ||
            (!f.empty() && (f[0].function != expect[i][0].function || f[0].line != expect[i][0].line)))
          ++mism[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mism[0] + mism[1], 0u);
}

TEST(GoPclntabCross, OtherArchitectures) {
  const char* cross = getenv("EMBER_GO_CROSS");
  if (!cross || !*cross || std::string(cross) == "0") GTEST_SKIP() << "set EMBER_GO_CROSS=1";
  REQUIRE_GO_BUILDS();
  if (!have_tool("llvm-symbolizer")) GTEST_SKIP() << "llvm-symbolizer is needed";
  for (const char* arch : {"arm64", "386", "s390x"}) {
    std::string dbg = builds().dir + "/go_workload." + arch, str = dbg + ".stripped";
    std::string err = builds().build(dbg, "-ldflags=-compressdwarf=false", arch);
    ASSERT_TRUE(err.empty()) << err;
    err = builds().build(str, "-ldflags=\"-s -w\"", arch);
    ASSERT_TRUE(err.empty()) << err;
    auto table = open_table(str);
    ASSERT_NE(table, nullptr) << arch;
    Agreement a = compare_with_llvm(*table, dbg, 3000, std::string("go_workload/") + arch);
    EXPECT_GE(a.addresses, 2000u);
    EXPECT_EQ(a.name_mismatch, 0u);
    EXPECT_LE(double(a.line_mismatch), 0.01 * double(a.frames));
    EXPECT_GE(a.with_inlined, 100u);
  }
}

// ---------------------------------------------------------------------------
// Synthetic pclntabs: the same three functions written in each layout, in
// an in-memory ELF with no section headers (so the table is found by scan),
// optionally as PIE with every absolute pointer left to a RELATIVE
// relocation.
//
//   main.outer  [0x401000, 0x401040)  inlines main.inner, which inlines main.leaf
//   main.leaf   [0x401040, 0x401060)  tables cover only 0x18 bytes: padding after
//   main.last   [0x401060, 0x401080)  the last function

class Image {
 public:
  explicit Image(size_t size) : b_(size) {}
  static constexpr uint64_t kBase = 0x400000;  // vaddr = kBase + file offset
  uint64_t va(size_t off) const { return kBase + off; }
  void u8(size_t off, uint8_t v) { put(off, &v, 1); }
  void u16(size_t off, uint16_t v) { put(off, &v, 2); }
  void u32(size_t off, uint32_t v) { put(off, &v, 4); }
  void u64(size_t off, uint64_t v) { put(off, &v, 8); }
  void bytes(size_t off, const std::string& s) { put(off, s.data(), s.size()); }
  // An absolute pointer: stored in place, or (PIE) left zero with a
  // RELATIVE relocation carrying the value.
  void ptr(size_t off, uint64_t v) {
    if (pie) {
      u64(off, 0);
      relocs.emplace_back(va(off), v);
    } else {
      u64(off, v);
    }
  }
  std::vector<char>& data() { return b_; }
  bool pie = false;
  std::vector<std::pair<uint64_t, uint64_t>> relocs;

 private:
  void put(size_t off, const void* p, size_t n) {  // little-endian host, as the image
    if (off + n > b_.size()) std::abort();
    std::memcpy(b_.data() + off, p, n);
  }
  std::vector<char> b_;
};

std::string pcvalue_table(const std::vector<std::pair<int32_t, uint32_t>>& runs) {
  // (value, end offset) runs from the function entry; quantum 1.
  std::string s;
  auto varint = [&](uint32_t v) {
    while (v >= 0x80) {
      s += char(uint8_t(v | 0x80));
      v >>= 7;
    }
    s += char(uint8_t(v));
  };
  int32_t prev = -1;
  uint32_t pc = 0;
  for (auto [v, end] : runs) {
    int32_t d = v - prev;
    varint(uint32_t(d) << 1 ^ uint32_t(d >> 31));
    varint(end - pc);
    prev = v;
    pc = end;
  }
  s += '\0';
  return s;
}

enum class Layout { k116, k118, k120 };

struct SynthFunc {
  std::string name;
  uint32_t start, size;
  std::vector<std::pair<int32_t, uint32_t>> file, line, inl;
  uint32_t npcdata;
  bool has_inltree;
};

std::vector<char> synthetic_go_elf(Layout layout, bool pie) {
  const uint64_t text = 0x401000;
  Image img(0x5000);
  img.pie = pie;
  // Strings.
  const std::vector<std::string> names = {"main.outer", "main.inner", "main.leaf", "main.last"};
  std::string funcnametab;
  std::map<std::string, uint32_t> nameoff;
  for (const auto& n : names) {
    nameoff[n] = uint32_t(funcnametab.size());
    funcnametab += n + '\0';
  }
  std::string filetab = std::string("/src/a.go") + '\0' + "/src/b.go" + '\0';
  std::vector<uint32_t> cutab = {0, 10};
  const std::vector<SynthFunc> funcs = {
      {"main.outer", 0x000, 0x40,
       {{0, 0x10}, {1, 0x30}, {0, 0x40}},
       {{10, 0x08}, {11, 0x10}, {30, 0x18}, {31, 0x20}, {40, 0x28}, {41, 0x30}, {12, 0x40}},
       {{-1, 0x10}, {0, 0x20}, {1, 0x30}, {-1, 0x40}},
       4, true},
      {"main.leaf", 0x040, 0x20, {{1, 0x18}}, {{40, 0x10}, {41, 0x18}}, {}, 0, false},
      {"main.last", 0x060, 0x20, {{0, 0x20}}, {{50, 0x20}}, {}, 3, false},
  };
  // pctab: offset 0 means "no table", so start with a pad byte.
  std::string pctab(1, '\0');
  struct Offs {
    uint32_t file, line, inl, sp;
  };
  std::vector<Offs> offs;
  for (const auto& f : funcs) {
    Offs o{};
    // SP deltas (pcsp): a frame of 24 bytes between the first 4 bytes and
    // the last one, over the function's code (as far as its line table).
    o.sp = uint32_t(pctab.size());
    const uint32_t code_end = f.line.back().second;
    pctab += pcvalue_table({{0, 4}, {24, code_end - 1}, {0, code_end}});
    o.file = uint32_t(pctab.size());
    pctab += pcvalue_table(f.file);
    o.line = uint32_t(pctab.size());
    pctab += pcvalue_table(f.line);
    if (!f.inl.empty()) {
      o.inl = uint32_t(pctab.size());
      pctab += pcvalue_table(f.inl);
    }
    offs.push_back(o);
  }

  const size_t ps = 8;
  const size_t pcln = 0x2000;  // file offset of the header; read-only segment
  const bool v116 = layout == Layout::k116;
  size_t hdr = 8 + ps * (v116 ? 7 : 8);
  size_t o_name = hdr, o_cu = o_name + funcnametab.size(), o_file = o_cu + cutab.size() * 4;
  size_t o_pc = o_file + filetab.size();
  size_t o_tab = (o_pc + pctab.size() + 7) & ~size_t(7);
  // Header.
  img.u32(pcln, layout == Layout::k116 ? 0xFFFFFFFA : layout == Layout::k118 ? 0xFFFFFFF0 : 0xFFFFFFF1);
  img.u8(pcln + 6, 1);
  img.u8(pcln + 7, uint8_t(ps));
  size_t w = pcln + 8;
  img.u64(w, funcs.size()), w += ps;
  img.u64(w, 2), w += ps;
  if (!v116) img.ptr(w, text), w += ps;
  for (size_t o : {o_name, o_cu, o_file, o_pc, o_tab}) img.u64(w, o), w += ps;
  img.bytes(pcln + o_name, funcnametab);
  for (size_t i = 0; i < cutab.size(); ++i) img.u32(pcln + o_cu + 4 * i, cutab[i]);
  img.bytes(pcln + o_file, filetab);
  img.bytes(pcln + o_pc, pctab);

  // Inline trees live after the pclntab, at gofunc (+16, so a wrong base shows).
  const size_t gofunc = 0x3000;
  const size_t inltree = gofunc + 16;
  struct Inl {
    int16_t parent;
    std::string name;
    int32_t file, line, parent_pc;
  };
  const std::vector<Inl> tree = {{-1, "main.inner", 0, 11, 0x08}, {0, "main.leaf", 1, 31, 0x18}};
  for (size_t i = 0; i < tree.size(); ++i) {
    if (layout == Layout::k120) {  // funcID, pad[3], nameOff, parentPc, startLine
      size_t e = inltree + 16 * i;
      img.u8(e, 0);
      img.u32(e + 4, nameoff[tree[i].name]);
      img.u32(e + 8, uint32_t(tree[i].parent_pc));
      img.u32(e + 12, 1);
    } else {  // parent, funcID, pad, file, line, func_, parentPc
      size_t e = inltree + 20 * i;
      img.u16(e, uint16_t(tree[i].parent));
      img.u32(e + 4, uint32_t(tree[i].file));
      img.u32(e + 8, uint32_t(tree[i].line));
      img.u32(e + 12, nameoff[tree[i].name]);
      img.u32(e + 16, uint32_t(tree[i].parent_pc));
    }
  }

  // functab then the _func records.
  size_t ftab_entry = v116 ? 2 * ps : 8;
  size_t fpos = o_tab + (funcs.size() + 1) * ftab_entry;
  for (size_t i = 0; i <= funcs.size(); ++i) {
    size_t e = pcln + o_tab + i * ftab_entry;
    uint64_t entry = i < funcs.size() ? text + funcs[i].start : text + 0x80;
    if (i == funcs.size()) {  // the end sentinel
      if (v116) img.ptr(e, entry);
      else img.u32(e, uint32_t(entry - text));
      continue;
    }
    const SynthFunc& f = funcs[i];
    fpos = (fpos + 7) & ~size_t(7);
    if (v116) {
      img.ptr(e, entry);
      img.u64(e + ps, fpos - o_tab);
    } else {
      img.u32(e, uint32_t(entry - text));
      img.u32(e + 4, uint32_t(fpos - o_tab));
    }
    size_t p = pcln + fpos;
    if (v116) img.ptr(p, entry), p += ps;
    else img.u32(p, uint32_t(entry - text)), p += 4;
    img.u32(p + 0, nameoff[f.name]);
    img.u32(p + 12, offs[i].sp);
    img.u32(p + 16, offs[i].file);
    img.u32(p + 20, offs[i].line);
    img.u32(p + 24, f.npcdata);
    img.u32(p + 28, 0);  // cuOffset
    // nameoff..cuOffset (8 words), startLine since 1.20, then funcID, flag,
    // pad, nfuncdata.
    size_t tail = layout == Layout::k120 ? 36 : 32;
    if (layout == Layout::k120) img.u32(p + 32, 1);
    uint8_t nfuncdata = f.has_inltree ? 4 : 0;
    img.u8(p + tail, uint8_t(7 + i));  // funcID (checked by FunctionsAndSpDeltas)
    img.u8(p + tail + 1, uint8_t(i));  // flag
    img.u8(p + tail + 3, nfuncdata);
    p += tail + 4;
    for (uint32_t k = 0; k < f.npcdata; ++k) img.u32(p + 4 * k, k == 2 ? offs[i].inl : 0);
    p += 4 * f.npcdata;
    if (nfuncdata) {
      if (v116) {
        if (img.va(p) & 4) p += 4;  // pointer-aligned in memory
        for (int k = 0; k < 3; ++k) img.u64(p + ps * k, 0);
        img.ptr(p + 3 * ps, img.va(inltree));
        p += 4 * ps;
      } else {
        for (int k = 0; k < 3; ++k) img.u32(p + 4 * k, ~0u);
        img.u32(p + 12, uint32_t(inltree - gofunc));
        p += 16;
      }
    }
    fpos = p - pcln;
  }
  const size_t ro_end = 0x3100;

  // Writable segment: build info, a decoy word, the moduledata, and for PIE
  // the dynamic section and relocations.
  const size_t rw = 0x4000;
  img.bytes(rw, std::string("\xff Go buildinf:", 14));
  img.u8(rw + 14, uint8_t(ps));
  if (v116) {  // pointers to a string header (Go before 1.18)
    img.u8(rw + 15, 0);
    img.ptr(rw + 16, img.va(rw + 0x40));
    img.ptr(rw + 0x40, img.va(rw + 0x60));
    img.u64(rw + 0x48, 9);
    img.bytes(rw + 0x60, "go1.16.15");
  } else {  // inline, varint-prefixed (1.18+)
    img.u8(rw + 15, 2);
    std::string v = layout == Layout::k118 ? "go1.18.10" : "go1.21.13";
    img.u8(rw + 32, uint8_t(v.size()));
    img.bytes(rw + 33, v);
  }
  img.ptr(rw + 0x100, img.va(pcln));  // decoy: points at the header, is no moduledata
  if (!v116) {
    size_t md = rw + 0x200;
    img.ptr(md + 0 * ps, img.va(pcln));
    img.ptr(md + 1 * ps, img.va(pcln + o_name));
    img.u64(md + 17 * ps, funcs.size() + 1);
    img.ptr(md + 22 * ps, text);
    img.ptr(md + (layout == Layout::k118 ? 38 : 40) * ps, img.va(gofunc));
  }
  size_t dyn = rw + 0x600, rela = rw + 0x700;
  if (pie) {
    for (size_t i = 0; i < img.relocs.size(); ++i) {
      img.u64(rela + 24 * i, img.relocs[i].first);
      img.u64(rela + 24 * i + 8, R_X86_64_RELATIVE);
      img.u64(rela + 24 * i + 16, img.relocs[i].second);
    }
    const std::vector<std::pair<uint64_t, uint64_t>> tags = {
        {DT_RELA, img.va(rela)}, {DT_RELASZ, 24 * img.relocs.size()}, {DT_RELAENT, 24}, {DT_NULL, 0}};
    for (size_t i = 0; i < tags.size(); ++i) {
      img.u64(dyn + 16 * i, tags[i].first);
      img.u64(dyn + 16 * i + 8, tags[i].second);
    }
  }
  const size_t rw_end = 0x5000;

  // ELF header and program headers (no section headers).
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = pie ? ET_DYN : ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_entry = text;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  std::vector<Elf64_Phdr> ph;
  auto load = [&](size_t off, size_t end, uint32_t flags) {
    Elf64_Phdr p{};
    p.p_type = PT_LOAD;
    p.p_flags = flags;
    p.p_offset = off;
    p.p_vaddr = p.p_paddr = img.va(off);
    p.p_filesz = p.p_memsz = end - off;
    p.p_align = 0x1000;
    ph.push_back(p);
  };
  load(0, 0x1100, PF_R | PF_X);  // headers and text
  load(0x2000, ro_end, PF_R);
  load(rw, rw_end, PF_R | PF_W);
  if (pie) {
    Elf64_Phdr p{};
    p.p_type = PT_DYNAMIC;
    p.p_flags = PF_R | PF_W;
    p.p_offset = dyn;
    p.p_vaddr = p.p_paddr = img.va(dyn);
    p.p_filesz = p.p_memsz = 16 * 4;
    p.p_align = 8;
    ph.push_back(p);
  }
  eh.e_phnum = uint16_t(ph.size());
  std::memcpy(img.data().data(), &eh, sizeof(eh));
  std::memcpy(img.data().data() + sizeof(eh), ph.data(), ph.size() * sizeof(Elf64_Phdr));
  for (size_t i = 0x1000; i < 0x1080; ++i) img.u8(i, 0xcc);
  return img.data();
}

std::string frames_str(const std::vector<SourceFrame>& fs) {
  std::string s;
  for (const auto& f : fs)
    s += f.function + "@" + base(f.file) + ":" + std::to_string(f.line) + (f.inlined ? "(i)" : "") + " ";
  if (!s.empty()) s.pop_back();
  return s;
}

TEST(GoPclntabSynthetic, EveryLayoutPlainAndPie) {
  const std::vector<std::pair<uint64_t, std::string>> cases = {
      {0x401000, "main.outer@a.go:10"},
      {0x401007, "main.outer@a.go:10"},
      {0x40100c, "main.outer@a.go:11"},
      {0x401012, "main.inner@b.go:30(i) main.outer@a.go:11"},
      {0x40101f, "main.inner@b.go:31(i) main.outer@a.go:11"},
      {0x401024, "main.leaf@b.go:40(i) main.inner@b.go:31(i) main.outer@a.go:11"},
      {0x40102f, "main.leaf@b.go:41(i) main.inner@b.go:31(i) main.outer@a.go:11"},
      {0x401038, "main.outer@a.go:12"},
      {0x40103f, "main.outer@a.go:12"},
      {0x401040, "main.leaf@b.go:40"},
      {0x401057, "main.leaf@b.go:41"},
      {0x401058, ""},  // padding after main.leaf's tables
      {0x40105f, ""},
      {0x401060, "main.last@a.go:50"},
      {0x40107f, "main.last@a.go:50"},
      {0x401080, ""},  // the end
      {0x400fff, ""},
      {0x0, ""},
  };
  for (Layout layout : {Layout::k116, Layout::k118, Layout::k120}) {
    for (bool pie : {false, true}) {
      std::string label = std::string(layout == Layout::k116 ? "go1.16" : layout == Layout::k118 ? "go1.18" : "go1.20") +
                          (pie ? " PIE" : "");
      std::vector<char> image = synthetic_go_elf(layout, pie);
      auto elf = ElfFile::from_memory(image.data(), image.size(), label);
      ASSERT_TRUE(elf.ok()) << label << ": " << elf.error().message;
      auto t = GoPclntab::open(**elf);
      ASSERT_TRUE(t.ok()) << label << ": " << t.error().message;
      const GoPclntab& table = **t;
      EXPECT_STREQ(table.source(), "scan") << label;
      EXPECT_EQ(table.function_count(), 3u) << label;
      EXPECT_EQ(table.format(), layout == Layout::k116   ? GoPclntab::Format::kGo116
                                : layout == Layout::k118 ? GoPclntab::Format::kGo118
                                                         : GoPclntab::Format::kGo120)
          << label;
      EXPECT_TRUE(table.has_inline_tree()) << label;
      EXPECT_EQ(table.go_version(), layout == Layout::k116   ? "go1.16.15"
                                    : layout == Layout::k118 ? "go1.18.10"
                                                             : "go1.21.13")
          << label;
      elf->reset();  // the table must not need the ElfFile (or its image) any more
      std::vector<char>().swap(image);
      std::vector<SourceFrame> frames;
      for (const auto& [addr, want] : cases) {
        bool found = table.lookup(addr, &frames);
        EXPECT_EQ(found, !want.empty()) << label << " 0x" << std::hex << addr;
        EXPECT_EQ(frames_str(frames), want) << label << " 0x" << std::hex << addr;
      }
    }
  }
}

// The enumeration API (unwind tables use it) on every layout: the _func
// fields it reads sit at different offsets in 1.16, 1.18 and 1.20.
TEST(GoPclntabSynthetic, FunctionsAndSpDeltas) {
  struct Want {
    const char* name;
    uint64_t entry, end, code_end;
  };
  const Want want[] = {{"main.outer", 0x401000, 0x401040, 0x401040},
                       {"main.leaf", 0x401040, 0x401060, 0x401058},
                       {"main.last", 0x401060, 0x401080, 0x401080}};
  for (Layout layout : {Layout::k116, Layout::k118, Layout::k120}) {
    for (bool pie : {false, true}) {
      std::string label = std::to_string(int(layout)) + (pie ? " PIE" : "");
      std::vector<char> image = synthetic_go_elf(layout, pie);
      auto elf = ElfFile::from_memory(image.data(), image.size(), label);
      ASSERT_TRUE(elf.ok()) << label;
      auto t = GoPclntab::open(**elf);
      ASSERT_TRUE(t.ok()) << label << ": " << t.error().message;
      ASSERT_EQ((*t)->function_count(), 3u);
      GoPclntab::Function f;
      std::vector<GoPclntab::PcRange> sp;
      for (size_t i = 0; i < 3; ++i) {
        ASSERT_TRUE((*t)->function(i, &f)) << label << " " << i;
        EXPECT_EQ(f.name, want[i].name) << label;
        EXPECT_EQ(f.entry, want[i].entry) << label << " " << f.name;
        EXPECT_EQ(f.end, want[i].end) << label << " " << f.name;
        EXPECT_EQ(f.func_id, 7 + i) << label << " " << f.name;
        EXPECT_EQ(f.flag, i) << label << " " << f.name;
        ASSERT_TRUE((*t)->sp_deltas(f, &sp)) << label << " " << f.name;
        ASSERT_EQ(sp.size(), 3u) << label << " " << f.name;
        const uint64_t e = want[i].entry, c = want[i].code_end;
        EXPECT_EQ(sp[0].begin, e);
        EXPECT_EQ(sp[0].end, e + 4);
        EXPECT_EQ(sp[0].value, 0);
        EXPECT_EQ(sp[1].begin, e + 4);
        EXPECT_EQ(sp[1].end, c - 1);
        EXPECT_EQ(sp[1].value, 24);
        EXPECT_EQ(sp[2].begin, c - 1);
        EXPECT_EQ(sp[2].end, c);
        EXPECT_EQ(sp[2].value, 0);
      }
      EXPECT_FALSE((*t)->function(3, &f)) << "past the last function";
      f.pcsp = 0;
      EXPECT_FALSE((*t)->sp_deltas(f, &sp));
      EXPECT_TRUE(sp.empty());
    }
  }
}

// The same on a real stripped build: every function enumerates, in address
// order, with SP deltas that tile its code from the entry and agree with
// lookup() on whose code it is.
TEST(GoPclntabEdges, EveryFunctionHasContiguousSpDeltas) {
  REQUIRE_GO_BUILDS();
  auto table = open_table(builds().stripped);
  ASSERT_NE(table, nullptr);
  GoPclntab::Function f;
  std::vector<GoPclntab::PcRange> sp;
  std::vector<SourceFrame> frames;
  uint64_t prev_end = 0;
  size_t with_sp = 0, framed = 0;
  for (size_t i = 0; i < table->function_count(); ++i) {
    ASSERT_TRUE(table->function(i, &f)) << i;
    EXPECT_FALSE(f.name.empty()) << i;
    EXPECT_GE(f.entry, prev_end) << f.name;
    EXPECT_GT(f.end, f.entry) << f.name;
    prev_end = f.end;
    if (!table->sp_deltas(f, &sp)) continue;
    ++with_sp;
    EXPECT_EQ(sp.front().begin, f.entry) << f.name;
    EXPECT_LE(sp.back().end, f.end) << f.name;
    bool has_frame = false;
    for (size_t k = 0; k < sp.size(); ++k) {
      EXPECT_LT(sp[k].begin, sp[k].end) << f.name;
      if (k) {
        EXPECT_EQ(sp[k].begin, sp[k - 1].end) << f.name;
      }
      EXPECT_GE(sp[k].value, 0) << f.name;
      has_frame |= sp[k].value > 0;
    }
    framed += has_frame;
    EXPECT_EQ(sp.front().value, 0) << f.name << ": SP has not moved at the entry";
    ASSERT_TRUE(table->lookup(sp.back().end - 1, &frames)) << f.name;
    EXPECT_EQ(frames.back().function, f.name);
  }
  std::printf("[ info ] %zu functions, %zu with SP deltas, %zu of them with a frame\n",
              table->function_count(), with_sp, framed);
  EXPECT_GT(with_sp, table->function_count() * 9 / 10);
  EXPECT_GT(framed, with_sp / 2);
}

}  // namespace
}  // namespace ember
