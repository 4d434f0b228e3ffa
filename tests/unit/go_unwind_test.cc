// Unwind tables of Go binaries built from .gopclntab (the runtime's SP-delta
// tables), checked against references that do not go through pcsp decoding:
//   - the CFA and return-address rule at every pc of every function of the
//     stripped fixture, against the table the existing CFI code builds from
//     the unstripped build's .debug_frame (the Go linker writes one; it is
//     compressed, so the reference is a decompressed copy);
//   - where the caller's rbp is saved, against `go tool objdump` of the
//     prologues (.debug_frame says nothing about rbp);
//   - the runtime's stack tops and stack-switching functions.
// sym_go and sym_go_stripped are one program built twice by CMake (plain and
// -ldflags=-s -w): their functions sit at the same addresses.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>

#include "unit/reference_tools.h"
#include "agent/unwind/unwind_table.h"
#include "symbolizer/go_pclntab.h"

namespace ember::unwind {
namespace {

std::string fixture(const char* name) { return std::string(FIXTURE_DIR) + "/" + name; }

using reftools::run_capture;

std::shared_ptr<const UnwindTable> table_of(const std::string& path) {
  auto elf = ElfFile::open(path);
  EXPECT_TRUE(elf.ok()) << path;
  if (!elf.ok()) return nullptr;
  auto t = build_unwind_table(**elf);
  EXPECT_TRUE(t.ok()) << t.error().message;
  return t.ok() ? *t : nullptr;
}

struct GoFunc {
  GoPclntab::Function f;
  std::vector<GoPclntab::PcRange> sp;
};

std::vector<GoFunc> functions_of(const std::string& path) {
  std::vector<GoFunc> out;
  auto elf = ElfFile::open(path);
  if (!elf.ok()) return out;
  auto go = GoPclntab::open(**elf);
  EXPECT_TRUE(go.ok()) << path;
  if (!go.ok()) return out;
  for (size_t i = 0; i < (*go)->function_count(); ++i) {
    GoFunc g;
    EXPECT_TRUE((*go)->function(i, &g.f)) << i;
    (*go)->sp_deltas(g.f, &g.sp);
    out.push_back(std::move(g));
  }
  return out;
}

// Functions whose rule is not their pcsp table's (see add_go in
// unwind_table.cc): stack tops and SP writers.
bool special(const GoPclntab::Function& f) {
  return (f.flag & (GoPclntab::kFlagTopFrame | GoPclntab::kFlagSpWrite)) != 0;
}

bool have_go_fixtures() {
  return access(fixture("sym_go").c_str(), R_OK) == 0 && access(fixture("sym_go_stripped").c_str(), R_OK) == 0;
}

// A scratch directory for derived binaries, removed with its contents.
class TempCopy {
 public:
  TempCopy() {
    char tmpl[] = "/tmp/ember-go-unwind-XXXXXX";
    dir_ = mkdtemp(tmpl) ? tmpl : "";
  }
  ~TempCopy() {
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  std::string path(const char* name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
};

TEST(GoUnwindTable, StrippedTableAgreesWithDebugFrameAtEveryPc) {
  if (!have_go_fixtures()) GTEST_SKIP() << "sym_go fixtures not built (needs golang-go)";
  TempCopy tmp;
  const std::string ref_path = tmp.path("sym_go.debug_frame");
  int st = 0;
  run_capture("objcopy --decompress-debug-sections '" + fixture("sym_go") + "' '" + ref_path + "' 2>&1", &st);
  ASSERT_EQ(st, 0) << "objcopy failed";
  auto ours = table_of(fixture("sym_go_stripped"));
  auto ref = table_of(ref_path);
  ASSERT_TRUE(ours && ref);
  EXPECT_EQ(ours->stats().source, ".gopclntab");
  // The reference's rows are CFI; .gopclntab only replaces its special functions.
  EXPECT_EQ(ref->stats().source, ".debug_frame+.gopclntab");
  EXPECT_GT(ref->stats().fdes, 1000u);

  std::vector<GoFunc> funcs = functions_of(fixture("sym_go_stripped"));
  ASSERT_GT(funcs.size(), 1000u);
  size_t pcs = 0, mismatches = 0, uncovered = 0, special_pcs = 0, rbp_ours_only = 0, funcs_checked = 0;
  for (const GoFunc& g : funcs) {
    if (g.sp.empty()) continue;
    if (special(g.f)) {
      special_pcs += g.sp.back().end - g.f.entry;
      continue;
    }
    ++funcs_checked;
    for (uint64_t pc = g.f.entry; pc < g.sp.back().end; ++pc) {
      ++pcs;
      const UnwindRule& a = ours->find(pc);
      const UnwindRule& b = ref->find(pc);
      if (b.kind == UnwindRule::kNone) {
        ++uncovered;  // no FDE there in the reference
        continue;
      }
      bool same = a.kind == b.kind && a.cfa_offset == b.cfa_offset && a.ra_offset == b.ra_offset &&
                  a.flags == b.flags;
      // Go's .debug_frame leaves rbp "same value" everywhere; ours says
      // where the prologue saved it.
      if (same && a.rbp_offset != b.rbp_offset) {
        if (b.rbp_offset == 0 && a.rbp_offset == -16) ++rbp_ours_only;
        else same = false;
      }
      if (!same && ++mismatches <= 10)
        ADD_FAILURE() << g.f.name << " at 0x" << std::hex << pc << ": ours " << a.to_string()
                      << ", .debug_frame " << b.to_string();
    }
  }
  std::printf("[ info ] sym_go_stripped: %zu functions, %zu rows, %zu rules (source %s); %zu functions, "
              "%zu pcs compared with sym_go's .debug_frame (%zu FDEs): %zu mismatches, %zu pcs without "
              "an FDE, %zu pcs where only ours recovers rbp; %zu pcs in %s\n",
              ours->stats().go_functions, ours->rows().size(), ours->rules().size(),
              ours->stats().source.c_str(), funcs_checked, pcs, ref->stats().fdes, mismatches, uncovered,
              rbp_ours_only, special_pcs, "stack tops and SP writers (checked below)");
  EXPECT_GT(pcs, 100000u);
  EXPECT_EQ(mismatches, 0u);
  EXPECT_LT(uncovered, pcs / 100);
  EXPECT_GT(rbp_ours_only, pcs / 4);
}

// `go tool objdump` lines: "  file.go:12\t0x401000\t4883ec18\tSUBQ $0x18, SP".
struct Insn {
  uint64_t pc = 0;
  size_t len = 0;
  std::string text;
};

std::map<std::string, std::vector<Insn>> disassemble(const std::string& path, int* status) {
  std::map<std::string, std::vector<Insn>> out;
  std::string text = run_capture("GOFLAGS= GO111MODULE=off go tool objdump '" + path + "' 2>/dev/null", status);
  std::istringstream is(text);
  std::string line, cur;
  while (std::getline(is, line)) {
    if (line.rfind("TEXT ", 0) == 0) {
      cur = line.substr(5, line.find("(SB)") - 5);
      continue;
    }
    std::vector<std::string> cols;
    std::string col;
    std::istringstream ls(line);
    while (std::getline(ls, col, '\t'))
      if (!col.empty()) cols.push_back(col);
    if (cols.size() < 4 || cols[1].rfind("0x", 0) != 0) continue;
    Insn in;
    in.pc = std::stoull(cols[1], nullptr, 16);
    in.len = cols[2].size() / 2;
    in.text = cols[3];
    while (!in.text.empty() && in.text.back() == ' ') in.text.pop_back();
    out[cur].push_back(in);
  }
  return out;
}

bool moves_sp(const std::string& t) {
  return t.rfind("PUSH", 0) == 0 || t.rfind("POP", 0) == 0 ||
         ((t.rfind("SUBQ $", 0) == 0 || t.rfind("ADDQ $", 0) == 0) && t.size() > 4 &&
          t.substr(t.size() - 4) == ", SP");
}

// Where the prologue saves the caller's rbp, read off the disassembly: the
// pc after the BP store that follows the first SP move, or 0.
uint64_t saved_rbp_from(const std::vector<Insn>& code) {
  for (size_t i = 0; i + 1 < code.size(); ++i) {
    if (!moves_sp(code[i].text)) continue;
    const std::string& t = code[i].text;
    const std::string& next = code[i + 1].text;
    if (t == "PUSHQ BP" && next == "MOVQ SP, BP") return code[i].pc + code[i].len;
    // The frame is allocated with SUBQ $n, SP, or ADDQ $-n, SP where -n
    // fits a byte (n = 128).
    const bool sub = t.rfind("SUBQ $0x", 0) == 0, add = t.rfind("ADDQ $-0x", 0) == 0;
    if (sub || add) {
      uint64_t frame = std::stoull(t.substr(sub ? 8 : 9), nullptr, 16);
      char want[64];
      std::snprintf(want, sizeof(want), "MOVQ BP, 0x%llx(SP)", (unsigned long long)(frame - 8));
      if (next == want) return code[i + 1].pc + code[i + 1].len;
    }
    return 0;
  }
  return 0;
}

TEST(GoUnwindTable, SavedRbpMatchesTheDisassembledPrologues) {
  if (!have_go_fixtures()) GTEST_SKIP() << "sym_go fixtures not built (needs golang-go)";
  if (system("command -v go >/dev/null 2>&1") != 0) GTEST_SKIP() << "go is needed for go tool objdump";
  int st = 0;
  // The unstripped build: objdump names its functions from the symbol table.
  auto code = disassemble(fixture("sym_go"), &st);
  ASSERT_EQ(st, 0);
  ASSERT_GT(code.size(), 1000u);
  auto ours = table_of(fixture("sym_go_stripped"));
  ASSERT_TRUE(ours);
  size_t checked = 0, with_frame = 0, pushq = 0, wrong = 0;
  for (const GoFunc& g : functions_of(fixture("sym_go_stripped"))) {
    if (g.sp.empty() || special(g.f)) continue;
    // objdump spells assembly functions with their ABI suffix.
    auto it = code.find(g.f.name);
    if (it == code.end()) it = code.find(g.f.name + ".abi0");
    if (it == code.end() || it->second.empty() || it->second[0].pc != g.f.entry) continue;
    ++checked;
    const uint64_t from = saved_rbp_from(it->second);
    if (from) ++with_frame;
    if (from && it->second.size() > 1) {
      for (size_t i = 0; i + 1 < it->second.size(); ++i)
        if (it->second[i].text == "PUSHQ BP" && it->second[i].pc + 1 == from) ++pushq;
    }
    // Where SP is above its entry value (d > 0), rbp must be read from
    // CFA - 16 exactly from `from` on; nowhere in functions without a save.
    for (const auto& r : g.sp) {
      for (uint64_t pc = r.begin; pc < r.end; ++pc) {
        const UnwindRule& rule = ours->find(pc);
        int16_t want = (r.value > 0 && from && pc >= from) ? -16 : 0;
        if (rule.rbp_offset != want && ++wrong <= 10)
          ADD_FAILURE() << g.f.name << " at 0x" << std::hex << pc << ": " << rule.to_string()
                        << ", prologue saves rbp from 0x" << from;
      }
    }
  }
  std::printf("[ info ] %zu functions checked against go tool objdump: %zu save rbp (%zu with PUSHQ BP), "
              "%zu pcs disagree\n",
              checked, with_frame, pushq, wrong);
  EXPECT_GT(checked, 1000u);
  EXPECT_GT(with_frame, checked / 2);
  EXPECT_EQ(wrong, 0u);
}

TEST(GoUnwindTable, StackTopsEndTheStackAndStackSwitchesAreNotGuessed) {
  if (!have_go_fixtures()) GTEST_SKIP() << "sym_go fixtures not built (needs golang-go)";
  auto ours = table_of(fixture("sym_go_stripped"));
  ASSERT_TRUE(ours);
  std::map<std::string, GoFunc> by_name;
  for (GoFunc& g : functions_of(fixture("sym_go_stripped"))) by_name[g.f.name] = std::move(g);
  auto rules_in = [&](const std::string& name) {
    std::vector<UnwindRule> out;
    auto it = by_name.find(name);
    EXPECT_NE(it, by_name.end()) << name;
    if (it == by_name.end() || it->second.sp.empty()) return out;
    for (uint64_t pc = it->second.f.entry; pc < it->second.sp.back().end; ++pc) out.push_back(ours->find(pc));
    return out;
  };
  // TOPFRAME: the outermost frames of goroutines, the main thread, threads.
  for (const char* name : {"runtime.goexit", "runtime.rt0_go", "runtime.mstart"}) {
    EXPECT_NE(by_name[name].f.flag & GoPclntab::kFlagTopFrame, 0) << name;
    for (const UnwindRule& r : rules_in(name)) EXPECT_EQ(r.kind, UnwindRule::kEndOfStack) << name;
  }
  // Stack switchers without a frame: no rule can reach the goroutine's SP.
  for (const char* name : {"runtime.systemstack", "runtime.mcall", "runtime.morestack"}) {
    EXPECT_NE(by_name[name].f.flag & GoPclntab::kFlagSpWrite, 0) << name;
    for (const UnwindRule& r : rules_in(name)) EXPECT_EQ(r.kind, UnwindRule::kEndOfStack) << name;
  }
  // time.now switches to the g0 stack for the vDSO call after setting up a
  // frame-pointer frame: from there on rbp leads back to its caller.
  std::vector<UnwindRule> now = rules_in("time.now");
  ASSERT_FALSE(now.empty());
  EXPECT_EQ(now.front().kind, UnwindRule::kCfaRsp);
  EXPECT_EQ(now.front().cfa_offset, 8);
  size_t via_rbp = 0;
  for (const UnwindRule& r : now) {
    if (r.kind != UnwindRule::kCfaRbp) continue;
    ++via_rbp;
    EXPECT_EQ(r.cfa_offset, 16);
    EXPECT_EQ(r.ra_offset, -8);
    EXPECT_EQ(r.rbp_offset, -16);
  }
  EXPECT_GT(via_rbp, now.size() / 2);
}

}  // namespace
}  // namespace ember::unwind
