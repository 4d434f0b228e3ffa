#include "agent/unwind/unwind_table.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "agent/unwind/cfi.h"
#include "symbolizer/debug_file.h"

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
  auto it = std::upper_bound(rows_.begin(), rows_.end(), vaddr,
                             [](uint64_t a, const UnwindRow& r) { return a < r.pc; });
  if (it == rows_.begin()) return rules_[0];
  return rules_[std::prev(it)->rule];
}

class TableBuilder {
 public:
  TableBuilder() {
    table_ = std::make_shared<UnwindTable>();
    intern(UnwindRule{});  // rules_[0]: kNone
  }

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

  std::shared_ptr<const UnwindTable> finish() {
    // Every FDE's end is a gap marker (kNone) unless a row starts exactly
    // there; at equal pcs the marker sorts first so a real row replaces it.
    std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
      return a.pc != b.pc ? a.pc < b.pc : a.is_end > b.is_end;
    });
    auto& rows = table_->rows_;
    auto& st = table_->stats_;
    for (const Entry& e : entries_) {
      if (!e.is_end) {
        const UnwindRule& r = table_->rules_[e.rule];
        if (r.kind == UnwindRule::kUnsupported) st.unsupported_rows++;
        if (r.kind == UnwindRule::kCfaPlt) st.plt_rows++;
      }
      if (!rows.empty() && rows.back().pc == e.pc) {
        if (!e.is_end) rows.back().rule = e.rule;
      } else if (rows.empty() || rows.back().rule != e.rule) {
        rows.push_back(UnwindRow{e.pc, e.rule});
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
                                                              const DebugFileOptions& debug) {
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
    std::string path = find_debug_file(elf, elf.name(), debug.root, debug.debug_dir);
    if (!path.empty()) {
      auto dbg = ElfFile::open(path);
      if (dbg) {
        Section ddf = find_section(**dbg, ".debug_frame");
        if (ddf.present) b.add_section(ddf, CfiSection::kDebugFrame, "debuglink:.debug_frame");
      }
    }
  }
  b.add_plt_fallback(elf);
  return b.finish();
}

}  // namespace ember::unwind
