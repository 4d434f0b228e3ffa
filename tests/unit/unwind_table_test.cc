// Unwind tables checked against binutils: for every row readelf's
// --debug-dump=frames-interp prints (and points inside each row), our table
// must give the same CFA, return-address and rbp rules. Run on binaries
// built here without frame pointers (with and without -g, with only
// .debug_frame, with split debug info) and on Debian's own libc.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <sstream>

#include "agent/unwind/cfi.h"
#include "agent/unwind/unwind_table.h"

namespace ember::unwind {
namespace {

std::string fixture(const char* name) { return std::string(FIXTURE_DIR) + "/" + name; }

const char* kRegNames[] = {"rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8",
                           "r9",  "r10", "r11", "r12", "r13", "r14", "r15", "rip"};

struct ReadelfRow {
  uint64_t pc = 0, end = 0;
  std::string cfa, ra, rbp;  // rbp "" when readelf has no column for it
};

// Parses `readelf --debug-dump=frames-interp` into rows with explicit ends.
// FDEs without instructions print no table: the CIE's initial row applies.
std::vector<ReadelfRow> readelf_rows(const std::string& path) {
  std::string cmd = "readelf --debug-dump=frames-interp '" + path + "' 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::vector<ReadelfRow> out;
  if (!p) return out;
  std::map<std::string, ReadelfRow> cie_initial;
  std::string cur_cie;
  bool in_cie = false;
  uint64_t fde_b = 0, fde_e = 0;
  std::vector<std::string> cols;
  std::vector<ReadelfRow> fde_rows;
  auto flush_fde = [&] {
    if (fde_e == 0) return;
    if (fde_rows.empty() && cie_initial.count(cur_cie)) {
      ReadelfRow r = cie_initial[cur_cie];
      r.pc = fde_b;
      fde_rows.push_back(r);
    }
    for (size_t i = 0; i < fde_rows.size(); ++i) {
      fde_rows[i].end = i + 1 < fde_rows.size() ? fde_rows[i + 1].pc : fde_e;
      if (fde_rows[i].end > fde_rows[i].pc) out.push_back(fde_rows[i]);
    }
    fde_rows.clear();
    fde_e = 0;
  };
  char buf[4096];
  while (fgets(buf, sizeof(buf), p)) {
    std::string line(buf);
    if (line.rfind("Contents of the", 0) == 0) {  // CIE offsets are per section
      flush_fde();
      cie_initial.clear();
      continue;
    }
    if (line.find(" CIE ") != std::string::npos) {
      flush_fde();
      std::istringstream is(line);
      is >> cur_cie;
      in_cie = true;
      continue;
    }
    if (line.find(" FDE ") != std::string::npos) {
      flush_fde();
      in_cie = false;
      size_t c = line.find("cie=");
      cur_cie = line.substr(c + 4, 8);
      size_t pc = line.find("pc=");
      fde_b = std::stoull(line.substr(pc + 3, 16), nullptr, 16);
      fde_e = std::stoull(line.substr(pc + 21, 16), nullptr, 16);
      continue;
    }
    std::istringstream is(line);
    std::vector<std::string> tok;
    std::string t;
    while (is >> t) {
      // "r5 (rdi)" is one column.
      if (!t.empty() && t[0] == '(' && !tok.empty()) tok.back() += " " + t;
      else tok.push_back(t);
    }
    if (tok.empty()) continue;
    if (tok[0] == "LOC") {
      cols = tok;
      continue;
    }
    if (tok[0].size() != 16 || tok.size() != cols.size()) continue;
    ReadelfRow r;
    r.pc = std::stoull(tok[0], nullptr, 16);
    for (size_t i = 1; i < cols.size(); ++i) {
      if (cols[i] == "CFA") r.cfa = tok[i];
      else if (cols[i] == "ra") r.ra = tok[i];
      else if (cols[i] == "rbp") r.rbp = tok[i];
    }
    if (in_cie) {
      if (!cie_initial.count(cur_cie)) cie_initial[cur_cie] = r;
    } else {
      fde_rows.push_back(r);
    }
  }
  flush_fde();
  pclose(p);
  return out;
}

// Whether our rule says what readelf's row says.
// readelf's spelling of a CFA-relative slot: c-8, c+168.
std::string slot(int v) { return std::string("c") + (v >= 0 ? "+" : "") + std::to_string(v); }

bool agrees(const UnwindRule& r, const ReadelfRow& e, std::string* why) {
  std::ostringstream os;
  bool ok = true;
  // CFA
  std::string cfa;
  switch (r.kind) {
    case UnwindRule::kCfaRsp: cfa = "rsp+" + std::to_string(r.cfa_offset); break;
    case UnwindRule::kCfaRbp: cfa = "rbp+" + std::to_string(r.cfa_offset); break;
    case UnwindRule::kCfaReg:
      cfa = std::string(kRegNames[r.reg]) + "+" + std::to_string(r.cfa_offset);
      break;
    case UnwindRule::kCfaPlt:
    case UnwindRule::kCfaRbpDeref:
    case UnwindRule::kSignal: cfa = "exp"; break;
    case UnwindRule::kEndOfStack: cfa = e.cfa; break;  // CFA does not matter at the end
    default: cfa = "?";
  }
  if (cfa != e.cfa) ok = false;
  // Return address
  std::string ra;
  if (r.kind == UnwindRule::kEndOfStack) ra = "u";
  else if (r.kind == UnwindRule::kSignal) ra = "exp";
  else if (r.flags & UnwindRule::kRaInRegister)
    ra = "r" + std::to_string(r.reg) + " (" + kRegNames[r.reg] + ")";
  else ra = slot(r.ra_offset);
  if (ra != e.ra) ok = false;
  // rbp (irrelevant once the stack has ended)
  if (r.kind != UnwindRule::kEndOfStack) {
    std::string rbp;
    if (r.kind == UnwindRule::kSignal || (r.flags & UnwindRule::kRbpFromRbp)) rbp = "exp";
    else if (r.rbp_offset) rbp = slot(r.rbp_offset);
    std::string expect = (e.rbp == "u") ? "" : e.rbp;
    if (rbp != expect && !((r.flags & UnwindRule::kRbpUndefined) && !expect.empty())) ok = false;
  }
  if (!ok) {
    os << "ours " << r.to_string() << " vs readelf CFA=" << e.cfa << " ra=" << e.ra
       << " rbp=" << (e.rbp.empty() ? "-" : e.rbp);
    *why = os.str();
  }
  return ok;
}

struct Checked {
  size_t points = 0, mismatches = 0, unsupported = 0;
};

// Rows we deliberately do not execute (and mark kUnsupported): a CFA in a
// register other than rsp/rbp together with a return address in a register
// (libc's __start_context), or expressions beyond the recognized forms.
bool exotic(const ReadelfRow& e) {
  bool cfa_plain = e.cfa.rfind("rsp+", 0) == 0 || e.cfa.rfind("rbp+", 0) == 0;
  bool ra_plain = e.ra == "c-8" || e.ra == "u";
  return !cfa_plain || !ra_plain;
}

Checked check_against_readelf(const std::string& path, const UnwindTable& table) {
  Checked c;
  auto rows = readelf_rows(path);
  EXPECT_FALSE(rows.empty()) << path;
  for (const auto& e : rows) {
    for (uint64_t pc : {e.pc, e.pc + (e.end - e.pc) / 2, e.end - 1}) {
      ++c.points;
      std::string why;
      const UnwindRule& r = table.find(pc);
      if (r.kind == UnwindRule::kUnsupported && exotic(e)) {
        ++c.unsupported;
        continue;
      }
      if (!agrees(r, e, &why)) {
        if (++c.mismatches <= 10)
          ADD_FAILURE() << path << " at 0x" << std::hex << pc << ": " << why;
      }
    }
  }
  return c;
}

std::shared_ptr<const UnwindTable> table_of(const std::string& path) {
  auto elf = ElfFile::open(path);
  EXPECT_TRUE(elf.ok()) << path;
  if (!elf.ok()) return nullptr;
  auto t = build_unwind_table(**elf);
  EXPECT_TRUE(t.ok()) << t.error().message;
  return t.ok() ? *t : nullptr;
}

class AgainstReadelf : public ::testing::TestWithParam<const char*> {};

TEST_P(AgainstReadelf, EveryRowMatches) {
  std::string path = GetParam()[0] == '/' ? GetParam() : fixture(GetParam());
  auto table = table_of(path);
  ASSERT_TRUE(table);
  Checked c = check_against_readelf(path, *table);
  std::printf("[ info ] %s: %zu FDEs, %zu CFI rows -> %zu rows, %zu rules, %zu unsupported rows; "
              "%zu points checked, %zu mismatches, %zu exotic points marked unsupported (source %s)\n",
              path.c_str(), table->stats().fdes, table->stats().cfi_rows, table->rows().size(),
              table->rules().size(), table->stats().unsupported_rows, c.points, c.mismatches,
              c.unsupported, table->stats().source.c_str());
  EXPECT_GT(c.points, 40u);
  EXPECT_EQ(c.mismatches, 0u);
}

INSTANTIATE_TEST_SUITE_P(Binaries, AgainstReadelf,
                         ::testing::Values("unwind_nofp", "unwind_nofp_g", "unwind_debugframe",
                                           "symbols_pie", "/lib/x86_64-linux-gnu/libc.so.6"));

TEST(UnwindTable, SplitDebugInfoIsFoundThroughDebuglink) {
  // unwind_split's own .debug_frame was moved out: only crt code has
  // .eh_frame in the binary. The rest must come from unwind_split.debug.
  auto split = table_of(fixture("unwind_split"));
  auto whole = table_of(fixture("unwind_debugframe"));
  ASSERT_TRUE(split && whole);
  EXPECT_NE(split->stats().source.find("debuglink:.debug_frame"), std::string::npos)
      << split->stats().source;
  EXPECT_EQ(split->rows().size(), whole->rows().size());
  // Same rule at every row of the unsplit binary.
  for (const auto& row : whole->rows())
    EXPECT_EQ(split->find(whole->pc(row)), whole->find(whole->pc(row))) << std::hex << whole->pc(row);
}

TEST(UnwindTable, PltRowsUseTheLinkersFormula) {
  auto t = table_of(fixture("symbols_pie"));
  ASSERT_TRUE(t);
  // Find the .plt section through readelf's section list.
  FILE* p = popen(("readelf -SW '" + fixture("symbols_pie") + "'").c_str(), "r");
  char buf[512];
  uint64_t plt = 0, plt_size = 0;
  while (fgets(buf, sizeof(buf), p)) {
    std::istringstream is(buf);
    std::string idx, name, type, addr, off, size;
    is >> idx;
    if (idx == "[") is >> idx;
    is >> name >> type >> addr >> off >> size;
    if (name == ".plt") {
      plt = std::stoull(addr, nullptr, 16);
      plt_size = std::stoull(size, nullptr, 16);
    }
  }
  pclose(p);
  ASSERT_NE(plt, 0u);
  ASSERT_GT(plt_size, 16u);
  // PLT0 pushes then jumps; entries past it use the formula.
  EXPECT_EQ(t->find(plt).kind, UnwindRule::kCfaRsp);
  const UnwindRule& entry = t->find(plt + 16 + 4);
  EXPECT_EQ(entry.kind, UnwindRule::kCfaPlt) << entry.to_string();
  EXPECT_EQ(entry.cfa_offset, 8);
  EXPECT_EQ(entry.aux, 11);
}

TEST(UnwindTable, LibcSpecialCases) {
  auto t = table_of("/lib/x86_64-linux-gnu/libc.so.6");
  ASSERT_TRUE(t);
  bool signal = false, ra_in_reg = false, end = false;
  for (const auto& r : t->rules()) {
    signal |= r.kind == UnwindRule::kSignal;
    ra_in_reg |= (r.flags & UnwindRule::kRaInRegister) != 0;
    end |= r.kind == UnwindRule::kEndOfStack;
  }
  EXPECT_TRUE(signal) << "__restore_rt's sigcontext rule";
  EXPECT_TRUE(ra_in_reg) << "vfork keeps the return address in rdi";
  EXPECT_TRUE(end) << "clone's child marks the end of the stack";
  // Every FDE's CFI was representable except what we count as unsupported.
  EXPECT_LT(t->stats().unsupported_rows, 10u);
}

TEST(Cfi, ExpressionDecoding) {
  std::vector<ExprOp> ops;
  // DW_OP_breg7 8; DW_OP_breg16 0; lit15; and; lit11; ge; lit3; shl; plus
  const char plt[] = {'\x77', '\x08', '\x80', '\x00', '\x3f', '\x1a', '\x3b', '\x2a', '\x33', '\x24', '\x22'};
  ASSERT_TRUE(decode_expression(std::string_view(plt, sizeof(plt)), &ops));
  ASSERT_EQ(ops.size(), 9u);
  EXPECT_EQ(ops[0].op, DW_OP_breg0 + 7);
  EXPECT_EQ(ops[0].operand, 8);
  EXPECT_EQ(ops[4].operand, 11);
  const char unknown[] = {'\x96'};  // DW_OP_nop is fine, but 0x96 followed by garbage
  const char branchy[] = {'\x2f', '\x01', '\x00'};  // DW_OP_skip: not a straight line
  EXPECT_FALSE(decode_expression(std::string_view(branchy, sizeof(branchy)), &ops));
  (void)unknown;
}

}  // namespace
}  // namespace ember::unwind
