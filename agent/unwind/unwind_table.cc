#include "agent/unwind/unwind_table.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "agent/unwind/cfi.h"
#include "symbolizer/debug_file.h"
#include "symbolizer/go_pclntab.h"

namespace ember::unwind {
namespace {

struct RuleHash {
  size_t operator()(const UnwindRule& r) const {
    uint64_t a, b;
    static_assert(sizeof(UnwindRule) == 12);
    uint32_t c;
    std::memcpy(&a, &r, 8);
    std::memcpy(&c, reinterpret_cast<const char*>(&r) + 8, 4);
    b = c;
    return std::hash<uint64_t>()(a * 0x9E3779B97F4A7C15ull ^ b);
  }
};

bool single_breg(const std::vector<ExprOp>& ops, uint8_t reg, int64_t* off) {
  if (ops.size() != 1 || ops[0].op != DW_OP_breg0 + reg) return false;
  *off = ops[0].operand;
  return true;
}

bool fits16(int64_t v) { return v >= INT16_MIN && v <= INT16_MAX; }
bool fits32(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

// Translates one CFI row into a rule our unwinders execute, or kUnsupported.
UnwindRule rule_for(const CfiRow& row) {
  UnwindRule r;
  r.kind = UnwindRule::kUnsupported;
  std::vector<ExprOp> cfa_ops, ra_ops, rbp_ops;

  // Signal trampoline (__restore_rt): everything comes from the sigcontext
  // on the stack, addressed from rsp.
  if (row.cfa.kind == CfaRule::kExpression && decode_expression(row.cfa.expr, &cfa_ops) &&
      cfa_ops.size() == 2 && cfa_ops[0].op == DW_OP_breg0 + uint8_t(kRsp) && cfa_ops[1].op == DW_OP_deref &&
      row.ra.kind == RegRule::kExpression && decode_expression(row.ra.expr, &ra_ops)) {
    int64_t ra_off = 0, rbp_off = 0;
    bool rbp_ok = row.rbp.kind == RegRule::kExpression && decode_expression(row.rbp.expr, &rbp_ops) &&
                  single_breg(rbp_ops, kRsp, &rbp_off);
    if (single_breg(ra_ops, kRsp, &ra_off) && fits32(cfa_ops[0].operand) && fits16(ra_off) &&
        fits16(rbp_off)) {
      r.kind = UnwindRule::kSignal;
      r.cfa_offset = int32_t(cfa_ops[0].operand);
      r.ra_offset = int16_t(ra_off);
      r.rbp_offset = int16_t(rbp_off);
      if (!rbp_ok) r.flags |= UnwindRule::kRbpUndefined;
      return r;
    }
    return r;
  }

  // Return address.
  switch (row.ra.kind) {
    case RegRule::kUndefined:
      r.kind = UnwindRule::kEndOfStack;
      return r;
    case RegRule::kOffset:
      if (!fits16(row.ra.offset)) return r;
      r.ra_offset = int16_t(row.ra.offset);
      break;
    case RegRule::kRegister:
      r.flags |= UnwindRule::kRaInRegister;
      r.reg = uint8_t(row.ra.reg);
      break;
    default:
      return r;  // expressions other than the signal frame's
  }

  // Caller's rbp.
  switch (row.rbp.kind) {
    case RegRule::kSameValue: break;
    case RegRule::kOffset:
      if (!fits16(row.rbp.offset) || row.rbp.offset == 0) return r;
      r.rbp_offset = int16_t(row.rbp.offset);
      break;
    case RegRule::kExpression: {
      int64_t off = 0;
      if (decode_expression(row.rbp.expr, &rbp_ops) && single_breg(rbp_ops, kRbp, &off) && fits16(off)) {
        r.flags |= UnwindRule::kRbpFromRbp;
        r.rbp_offset = int16_t(off);
      } else {
        r.flags |= UnwindRule::kRbpUndefined;
      }
      break;
    }
    default:
      r.flags |= UnwindRule::kRbpUndefined;
  }

  // CFA.
  if (row.cfa.kind == CfaRule::kRegOffset) {
    if (!fits32(row.cfa.offset)) {
      r.kind = UnwindRule::kUnsupported;
      return r;
    }
    r.cfa_offset = int32_t(row.cfa.offset);
    if (row.cfa.reg == kRsp) r.kind = UnwindRule::kCfaRsp;
    else if (row.cfa.reg == kRbp) r.kind = UnwindRule::kCfaRbp;
    else if (row.cfa.reg < 16 && !(r.flags & UnwindRule::kRaInRegister)) {
      r.kind = UnwindRule::kCfaReg;
      r.reg = uint8_t(row.cfa.reg);
    } else {
      r.kind = UnwindRule::kUnsupported;
    }
    return r;
  }
  if (!decode_expression(row.cfa.expr, &cfa_ops)) {
    r.kind = UnwindRule::kUnsupported;
    return r;
  }
  // PLT entries (the linker's lazy-binding stubs):
  //   rsp + 8 + (((rip & 15) >= N) << 3)
  if (cfa_ops.size() == 9 && cfa_ops[0].op == DW_OP_breg0 + uint8_t(kRsp) &&
      cfa_ops[1].op == DW_OP_breg0 + uint8_t(kRip) && cfa_ops[1].operand == 0 &&
      cfa_ops[2].op == DW_OP_lit0 + 15 && cfa_ops[3].op == DW_OP_and &&
      cfa_ops[4].op >= DW_OP_lit0 && cfa_ops[4].op <= DW_OP_lit31 && cfa_ops[5].op == DW_OP_ge &&
      cfa_ops[6].op == DW_OP_lit0 + 3 && cfa_ops[7].op == DW_OP_shl && cfa_ops[8].op == DW_OP_plus &&
      fits32(cfa_ops[0].operand)) {
    r.kind = UnwindRule::kCfaPlt;
    r.cfa_offset = int32_t(cfa_ops[0].operand);
    r.aux = uint8_t(cfa_ops[4].operand);
    return r;
  }
  // Realigned stacks (GCC's DRAP): CFA = *(rbp + N).
  if (cfa_ops.size() == 2 && cfa_ops[0].op == DW_OP_breg0 + uint8_t(kRbp) && cfa_ops[1].op == DW_OP_deref &&
      fits32(cfa_ops[0].operand)) {
    r.kind = UnwindRule::kCfaRbpDeref;
    r.cfa_offset = int32_t(cfa_ops[0].operand);
    return r;
  }
  r.kind = UnwindRule::kUnsupported;
  return r;
}

struct Section {
  std::string_view data;
  uint64_t addr = 0;
  bool present = false;
};

Section find_section(const ElfFile& elf, const char* wanted) {
  Section s;
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf.elf(), &shstrndx) != 0) return s;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf.elf(), scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr)) continue;
    const char* name = elf_strptr(elf.elf(), shstrndx, shdr.sh_name);
    if (!name || std::strcmp(name, wanted) != 0) continue;
    if (shdr.sh_type == SHT_NOBITS) return s;  // stripped into a debug file
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || !data->d_buf) return s;
    s.data = std::string_view(static_cast<const char*>(data->d_buf), data->d_size);
    s.addr = shdr.sh_addr;
    s.present = true;
    return s;
  }
  return s;
}

struct Range {
  uint64_t begin, end;
};

// --- Go ---------------------------------------------------------------------
//
// The Go linker writes no .eh_frame, and `-ldflags=-s -w` or strip removes
// the .debug_frame it derives from the runtime's tables. What every Go binary
// keeps is .gopclntab, where the runtime looks up, for its own tracebacks,
// how far each pc has moved SP below its value at the function's entry (the
// pcsp table). On amd64 that is all a frame needs: CALL pushed the return
// address right above the entry SP, so at a pc with SP delta d
//   CFA = rsp + d + 8, return address at CFA - 8.
// The caller's rbp is not in pcsp: Go saves it just below the return
// address, at CFA - 16, in every function with a frame (go_bp_save finds
// from which instruction on), and frameless functions never touch it.

// Section names only the Go toolchain produces (PIE binaries call the
// pclntab ".data.rel.ro.gopclntab"). Checked before opening the pclntab so
// other binaries cost one pass over their section headers.
bool is_go_binary(const ElfFile& elf) {
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf.elf(), &shstrndx) != 0) return false;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf.elf(), scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr)) continue;
    const char* name = elf_strptr(elf.elf(), shstrndx, shdr.sh_name);
    if (!name) continue;
    std::string_view n(name);
    if (n == ".note.go.buildid" || n == ".go.buildinfo" ||
        (n.size() >= 10 && n.substr(n.size() - 10) == ".gopclntab"))
      return true;
  }
  return false;
}

// The binary's .text by address: Go functions' prologues are decoded from it.
struct TextBytes {
  Section text;
  const uint8_t* at(uint64_t vaddr, uint64_t n) const {
    if (!text.present || vaddr < text.addr) return nullptr;
    uint64_t off = vaddr - text.addr;
    if (off > text.data.size() || text.data.size() - off < n) return nullptr;
    return reinterpret_cast<const uint8_t*>(text.data.data()) + off;
  }
};

// `MOVQ BP, disp(SP)` (opcode 0x89) or `LEAQ disp(SP), BP` (0x8d) at `c`:
// REX.W, the opcode, ModRM with reg = BP and an SIB byte of base SP, and an
// 8- or 32-bit displacement. The Go assembler encodes nothing else for them.
bool bp_sp_insn(const uint8_t* c, uint8_t opcode, int64_t* disp, size_t* len) {
  if (c[0] != 0x48 || c[1] != opcode || c[3] != 0x24) return false;
  if (c[2] == 0x6c) {
    *disp = int8_t(c[4]);
    *len = 5;
    return true;
  }
  if (c[2] == 0xac) {
    *disp = int32_t(uint32_t(c[4]) | uint32_t(c[5]) << 8 | uint32_t(c[6]) << 16 | uint32_t(c[7]) << 24);
    *len = 8;
    return true;
  }
  return false;
}

// From which pcs a Go function's caller rbp is recoverable. The assembler
// (cmd/internal/obj/x86, preprocess) opens every frame it sizes in one of
// two ways, and the first instruction that moves SP is where pcsp first
// turns positive, at pc p with delta d:
//   Go <= 1.20:  SUBQ $d, SP; [p] MOVQ BP, d-8(SP); LEAQ d-8(SP), BP
//     At p SP has moved but rbp is not stored yet: it is still the
//     caller's, so that one instruction keeps "rbp unchanged".
//   Go >= 1.21, and assembly written that way:
//                PUSHQ BP; [p] MOVQ SP, BP; SUBQ $n, SP
//     Saved from p on (d = 8 there).
// After either, wherever d > 0 the slot at CFA - 16 holds the caller's rbp,
// even in the epilogue once rbp has been reloaded from it (the slot is only
// released by the ADDQ/POPQ that brings d back to 0). A function that moves
// SP any other way (assembly pushing other registers, NOFRAME code) is left
// at "rbp unchanged": Go code must not clobber rbp without saving it there.
struct GoBpSave {
  uint64_t saved_from = 0;  // rbp at CFA - 16 from here on where d > 0; 0: never
  uint64_t frame_from = 0;  // and rbp = CFA - 16 (the frame is set up); 0: unknown
};

GoBpSave go_bp_save(const TextBytes& text, uint64_t entry, const std::vector<GoPclntab::PcRange>& sp) {
  GoBpSave s;
  auto first = std::find_if(sp.begin(), sp.end(), [](const GoPclntab::PcRange& r) { return r.value > 0; });
  if (first == sp.end()) return s;
  const uint64_t p = first->begin;
  const int64_t d = first->value;
  int64_t disp = 0, disp2 = 0;
  size_t len = 0, len2 = 0;
  if (const uint8_t* c = text.at(p, 8); c && bp_sp_insn(c, 0x89, &disp, &len) && disp == d - 8) {
    s.saved_from = p + len;
    if (const uint8_t* l = text.at(p + len, 8); l && bp_sp_insn(l, 0x8d, &disp2, &len2) && disp2 == d - 8)
      s.frame_from = p + len + len2;
    return s;
  }
  // PUSHQ BP is the one byte 0x55; requiring MOVQ SP, BP after it (either
  // encoding) rules out a 0x55 that ends some other instruction.
  const uint8_t* c = p > entry ? text.at(p - 1, 4) : nullptr;
  if (c && d == 8 && c[0] == 0x55 && c[1] == 0x48 &&
      ((c[2] == 0x89 && c[3] == 0xe5) || (c[2] == 0x8b && c[3] == 0xec))) {
    s.saved_from = p;
    s.frame_from = p + 3;
  }
  return s;
}

// Runtime functions pcsp cannot describe, by name for Go 1.16 binaries,
// whose _func has no flag byte (later releases set the flags themselves).
// Stack tops: the first frame of every goroutine (goexit: its return
// address is what a goroutine's entry function returns to), of the main
// thread (rt0_go) and of every other thread (mstart).
constexpr const char* kGoTopFrames[] = {"runtime.goexit", "runtime.mstart", "runtime.rt0_go"};
// Stack switchers: they load SP from a goroutine or thread descriptor.
constexpr const char* kGoSpWriters[] = {"runtime.mcall",       "runtime.morestack", "runtime.gogo",
                                        "runtime.systemstack", "runtime.asmcgocall", "runtime.nanotime1",
                                        "time.now"};

uint8_t go_flags(const GoPclntab::Function& f) {
  uint8_t flag = f.flag;
  for (const char* n : kGoTopFrames)
    if (f.name == n) flag |= GoPclntab::kFlagTopFrame;
  for (const char* n : kGoSpWriters)
    if (f.name == n) flag |= GoPclntab::kFlagSpWrite;
  return flag;
}

UnwindRule go_sp_rule(int32_t d, bool rbp_saved) {
  UnwindRule r;
  r.kind = UnwindRule::kCfaRsp;
  r.cfa_offset = d + 8;
  r.ra_offset = -8;
  r.rbp_offset = rbp_saved ? -16 : 0;
  return r;
}

// The usual frame-pointer frame, written as a rule: CFA = rbp + 16, the
// return address and the caller's rbp right below it.
UnwindRule go_bp_frame_rule() {
  UnwindRule r;
  r.kind = UnwindRule::kCfaRbp;
  r.cfa_offset = 16;
  r.ra_offset = -8;
  r.rbp_offset = -16;
  return r;
}

UnwindRule end_of_stack_rule() {
  UnwindRule r;
  r.kind = UnwindRule::kEndOfStack;
  return r;
}

}  // namespace

std::string UnwindRule::to_string() const {
  std::ostringstream os;
  switch (kind) {
    case kNone: return "none";
    case kEndOfStack: return "end";
    case kUnsupported: return "unsupported";
    case kCfaRsp: os << "rsp+" << cfa_offset; break;
    case kCfaRbp: os << "rbp+" << cfa_offset; break;
    case kCfaPlt: os << "plt(rsp+" << cfa_offset << ",>=" << int(aux) << ")"; break;
    case kCfaRbpDeref: os << "*(rbp+" << cfa_offset << ")"; break;
    case kSignal:
      os << "signal(rsp@" << cfa_offset << ",rbp@" << rbp_offset << ",rip@" << ra_offset << ")";
      return os.str();
    case kCfaReg: os << "r" << int(reg) << "+" << cfa_offset; break;
  }
  if (flags & kRaInRegister) os << " ra=r" << int(reg);
  else os << " ra=c" << ra_offset;
  if (flags & kRbpUndefined) os << " rbp=u";
  else if (flags & kRbpFromRbp) os << " rbp=*(rbp+" << rbp_offset << ")";
  else if (rbp_offset) os << " rbp=c" << rbp_offset;
  return os.str();
}

bool UnwindTable::bias_for(uint64_t start, uint64_t offset, uint64_t* bias) const {
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& seg : segments_) {
      if (pass == 0 && !seg.executable) continue;
      if (offset >= (seg.offset & ~uint64_t(0xfff)) && offset < seg.offset + seg.filesz) {
        *bias = start - (offset - seg.offset + seg.vaddr);
        return true;
      }
    }
  }
  return false;
}

const UnwindRule& UnwindTable::find(uint64_t vaddr) const {
  if (vaddr < base_) return rules_[0];
  // Past 4 GiB from the base is past the last row (finish() ends the table
  // there), whose rule is the end marker kNone.
  uint32_t off = uint32_t(std::min<uint64_t>(vaddr - base_, UINT32_MAX));
  auto it = std::upper_bound(rows_.begin(), rows_.end(), off,
                             [](uint32_t a, const UnwindRow& r) { return a < r.pc_off; });
  if (it == rows_.begin()) return rules_[0];
  return rules_[std::prev(it)->rule];
}

class TableBuilder {
 public:
  TableBuilder() {
    table_ = std::make_shared<UnwindTable>();
    intern(UnwindRule{});  // rules_[0]: kNone
  }

  void set_debug_deferred(bool d) { table_->debug_deferred_ = d; }

  uint32_t intern(const UnwindRule& r) {
    auto [it, inserted] = ids_.try_emplace(r, uint32_t(table_->rules_.size()));
    if (inserted) table_->rules_.push_back(r);
    return it->second;
  }

  // Adds every FDE of `sec` whose range no earlier section covered (a
  // .debug_frame only fills what .eh_frame lacks).
  void add_section(const Section& sec, CfiSection kind, const char* name) {
    std::vector<Range> before = covered_;  // sorted, from earlier sections
    CfiStats st;
    (void)parse_cfi(
        sec.data, sec.addr, kind,
        [&](const CfiRow& row) {
          if (!before.empty() && overlaps(before, row.begin, row.end)) return;
          add_rule(row.pc, row.end, rule_for(row));
          if (covered_.empty() || covered_.back().begin != row.begin || covered_.back().end != row.end)
            covered_.push_back(Range{row.begin, row.end});
        },
        &st);
    std::sort(covered_.begin(), covered_.end(),
              [](const Range& a, const Range& b) { return a.begin < b.begin; });
    auto& s = table_->stats_;
    if (st.fdes) s.source += (s.source.empty() ? "" : "+") + std::string(name);
    s.fdes += st.fdes;
    s.cfi_rows += st.rows;
    s.bad_entries += st.bad_entries;
  }

  // PLT sections without CFI (.plt.sec, .plt.got with IBT, or linkers that
  // emit none): every stub there is a bare jump, so the CFA is rsp + 8.
  void add_plt_fallback(const ElfFile& elf) {
    size_t shstrndx = 0;
    if (elf_getshdrstrndx(elf.elf(), &shstrndx) != 0) return;
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(elf.elf(), scn)) != nullptr) {
      GElf_Shdr shdr;
      if (!gelf_getshdr(scn, &shdr)) continue;
      const char* name = elf_strptr(elf.elf(), shstrndx, shdr.sh_name);
      if (!name || !(shdr.sh_flags & SHF_EXECINSTR)) continue;
      std::string_view n(name);
      if (n != ".plt" && n != ".plt.sec" && n != ".plt.got" && n != ".iplt") continue;
      uint64_t b = shdr.sh_addr, e = shdr.sh_addr + shdr.sh_size;
      if (overlaps(covered_, b, e)) continue;
      UnwindRule r;
      r.kind = UnwindRule::kCfaRsp;
      r.cfa_offset = 8;
      if (n == ".plt") {  // PLT0 pushes once more: the linker's own formula
        r.kind = UnwindRule::kCfaPlt;
        r.aux = 11;
      }
      add_rule(b, e, r);
    }
  }

  // Go functions (see the Go section above). A function gets rows from its
  // pcsp table where no CFI covered it: all of a Go binary without
  // .debug_frame, the Go part of a cgo binary (whose .eh_frame covers only
  // the C code). The runtime's stack tops and stack switchers get their rule
  // even where CFI covers them: Go's .debug_frame describes them as ordinary
  // frames, and following that out of goexit or across a stack switch reads
  // whatever lies past the stack.
  //   stack tops (TOPFRAME): the end of the stack, as for Go's traceback.
  //   SPWRITE, with a frame-pointer frame (time.now, nanotime1, the cgo call
  //     helpers: they move SP to the g0 stack and call C): rbp still leads
  //     to the caller once the frame is set up, so CFA = rbp + 16 there.
  //   SPWRITE without one (systemstack, mcall, morestack, gogo, asmcgocall):
  //     the goroutine's SP is only in its g descriptor, which a rule cannot
  //     reach; the end of the stack rather than a guess.
  // Functions without a pcsp table are left to frame pointers.
  void add_go(const GoPclntab& go, const TextBytes& text) {
    struct Planned {
      uint64_t pc, end;
      UnwindRule rule;
    };
    std::vector<Planned> planned;
    std::vector<Range> replaced;  // CFI-covered functions whose rows are replaced
    std::vector<GoPclntab::PcRange> sp;
    size_t functions = 0;
    for (size_t i = 0; i < go.function_count(); ++i) {
      GoPclntab::Function f;
      if (!go.function(i, &f)) continue;
      // Deltas are never negative (a corrupt table) and fit the rule's
      // 32-bit offset with the return address added (reflectcall's
      // runtime.call1073741824 really has a 1 GiB frame).
      const bool have_sp =
          go.sp_deltas(f, &sp) && std::all_of(sp.begin(), sp.end(), [](const GoPclntab::PcRange& r) {
            return r.value >= 0 && r.value <= INT32_MAX - 8;
          });
      const uint64_t end = have_sp ? sp.back().end : f.end;
      const uint8_t flag = go_flags(f);
      const bool top = flag & GoPclntab::kFlagTopFrame;
      const bool spwrite = !top && (flag & GoPclntab::kFlagSpWrite);
      const bool cfi = overlaps(covered_, f.entry, end);
      if (!top && !spwrite && (cfi || !have_sp)) continue;
      const GoBpSave bp = have_sp ? go_bp_save(text, f.entry, sp) : GoBpSave{};
      if (top || (spwrite && bp.frame_from == 0)) {
        planned.push_back(Planned{f.entry, end, end_of_stack_rule()});
      } else {
        for (const GoPclntab::PcRange& r : sp) {
          auto rule_at = [&](uint64_t pc) {
            if (r.value == 0) return go_sp_rule(0, false);
            if (spwrite && pc >= bp.frame_from) return go_bp_frame_rule();
            return go_sp_rule(r.value, bp.saved_from != 0 && pc >= bp.saved_from);
          };
          planned.push_back(Planned{r.begin, end, rule_at(r.begin)});
          for (uint64_t cut : {bp.saved_from, bp.frame_from})
            if (cut > r.begin && cut < r.end) planned.push_back(Planned{cut, end, rule_at(cut)});
        }
      }
      if (cfi) replaced.push_back(Range{f.entry, end});
      ++functions;
    }
    if (!replaced.empty()) {
      std::sort(replaced.begin(), replaced.end(),
                [](const Range& a, const Range& b) { return a.begin < b.begin; });
      size_t kept = 0;
      for (const Entry& e : entries_) {
        if (overlaps(replaced, e.pc, e.pc + 1)) {
          if (e.is_end) end_markers_.erase(e.pc);
          continue;
        }
        entries_[kept++] = e;
      }
      entries_.resize(kept);
    }
    for (const Planned& p : planned) add_rule(p.pc, p.end, p.rule);
    auto& s = table_->stats_;
    s.go_functions += functions;
    if (functions) s.source += s.source.empty() ? ".gopclntab" : "+.gopclntab";
  }

  std::shared_ptr<const UnwindTable> finish() {
    // Every FDE's end is a gap marker (kNone) unless a row starts exactly
    // there; at equal pcs the marker sorts first so a real row replaces it.
    std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
      return a.pc != b.pc ? a.pc < b.pc : a.is_end > b.is_end;
    });
    auto& rows = table_->rows_;
    auto& st = table_->stats_;
    const uint64_t base = entries_.empty() ? 0 : entries_.front().pc;
    table_->base_ = base;
    for (const Entry& e : entries_) {
      // Rows hold 32-bit offsets. No ELF has code spread over 4 GiB; if one
      // did, what lies beyond is cut off with an end marker (kNone: no
      // rule, the stack ends there with a reason), never given a wrong rule.
      if (e.pc - base >= UINT32_MAX) {
        st.unsupported_rows++;
        rows.push_back(UnwindRow{UINT32_MAX, 0});
        break;
      }
      const uint32_t off = uint32_t(e.pc - base);
      if (!e.is_end) {
        const UnwindRule& r = table_->rules_[e.rule];
        if (r.kind == UnwindRule::kUnsupported) st.unsupported_rows++;
        if (r.kind == UnwindRule::kCfaPlt) st.plt_rows++;
      }
      if (!rows.empty() && rows.back().pc_off == off) {
        if (!e.is_end) rows.back().rule = e.rule;
      } else if (rows.empty() || rows.back().rule != e.rule) {
        rows.push_back(UnwindRow{off, e.rule});
      }
    }
    // Merging may leave neighbours with equal rules after replacements.
    rows.erase(std::unique(rows.begin(), rows.end(),
                           [](const UnwindRow& a, const UnwindRow& b) { return a.rule == b.rule; }),
               rows.end());
    rows.shrink_to_fit();
    table_->rules_.shrink_to_fit();
    st.rows = rows.size();
    if (st.source.empty()) st.source = "none";
    return table_;
  }

  bool has_fdes() const { return !covered_.empty(); }
  void set_segments(std::vector<LoadSegment> s) { table_->segments_ = std::move(s); }

 private:
  struct Entry {
    uint64_t pc;
    uint32_t rule;
    bool is_end;
  };
  void add_rule(uint64_t pc, uint64_t end, const UnwindRule& r) {
    entries_.push_back(Entry{pc, intern(r), false});
    if (end_markers_.insert(end).second) entries_.push_back(Entry{end, 0, true});
  }
  static bool overlaps(const std::vector<Range>& sorted, uint64_t b, uint64_t e) {
    auto it = std::upper_bound(sorted.begin(), sorted.end(), b,
                               [](uint64_t v, const Range& r) { return v < r.begin; });
    if (it != sorted.end() && it->begin < e) return true;
    return it != sorted.begin() && std::prev(it)->end > b;
  }

  std::shared_ptr<UnwindTable> table_;
  std::unordered_map<UnwindRule, uint32_t, RuleHash> ids_;
  std::vector<Entry> entries_;
  std::set<uint64_t> end_markers_;
  std::vector<Range> covered_;  // FDE ranges added so far
};

Result<std::shared_ptr<const UnwindTable>> build_unwind_table(const ElfFile& elf,
                                                              const DebugSearch& debug) {
  TableBuilder b;
  {
    std::vector<LoadSegment> segs;
    size_t phnum = 0;
    if (elf_getphdrnum(elf.elf(), &phnum) == 0) {
      for (size_t i = 0; i < phnum; ++i) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf.elf(), int(i), &ph) && ph.p_type == PT_LOAD)
          segs.push_back(LoadSegment{ph.p_vaddr, ph.p_memsz, ph.p_offset, ph.p_filesz,
                                     (ph.p_flags & PF_X) != 0});
      }
    }
    if (segs.empty()) return Errorf("%s: no loadable segments", elf.name().c_str());
    b.set_segments(std::move(segs));
  }
  Section eh = find_section(elf, ".eh_frame");
  if (eh.present) b.add_section(eh, CfiSection::kEhFrame, ".eh_frame");
  Section df = find_section(elf, ".debug_frame");
  if (df.present) {
    b.add_section(df, CfiSection::kDebugFrame, ".debug_frame");
  } else {
    // Code built without unwind tables keeps its CFI in .debug_frame, which
    // stripping moves to the separate debug file: fill the gaps from there.
    DebugLookup found = find_debug_file(elf, elf.name(), debug);
    b.set_debug_deferred(found.deferred);
    if (found.fd.valid()) {
      auto dbg = ElfFile::from_fd(std::move(found.fd), found.path);
      if (dbg) {
        Section ddf = find_section(**dbg, ".debug_frame");
        if (ddf.present) b.add_section(ddf, CfiSection::kDebugFrame, "debuglink:.debug_frame");
      }
    }
  }
  // Go code: the rules below are amd64's (like every rule of this table).
  GElf_Ehdr ehdr;
  if (gelf_getehdr(elf.elf(), &ehdr) && ehdr.e_machine == EM_X86_64 && is_go_binary(elf)) {
    auto go = GoPclntab::open(elf);
    if (go) b.add_go(**go, TextBytes{find_section(elf, ".text")});
  }
  b.add_plt_fallback(elf);
  return b.finish();
}

}  // namespace ember::unwind
