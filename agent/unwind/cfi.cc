#include "agent/unwind/cfi.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <unordered_map>

namespace ember::unwind {
namespace {

// Pointer encodings of .eh_frame (DW_EH_PE_*).
constexpr uint8_t kPeOmit = 0xff;
constexpr uint8_t kPeFormatMask = 0x0f;
constexpr uint8_t kPeAppMask = 0x70;
constexpr uint8_t kPeIndirect = 0x80;
constexpr uint8_t kPeAbsptr = 0x00, kPeUleb = 0x01, kPeUdata2 = 0x02, kPeUdata4 = 0x03,
                  kPeUdata8 = 0x04, kPeSleb = 0x09, kPeSdata2 = 0x0a, kPeSdata4 = 0x0b,
                  kPeSdata8 = 0x0c;
constexpr uint8_t kPePcrel = 0x10;

// Bounds-checked little-endian reader over a section. Invariant:
// pos_ <= end_ <= d_.size(), so no check below can overflow; positions and
// lengths come from the file (found by cfi_fuzz: a CIE offset past the
// section wrapped `pos + 4`, and the read went out of bounds).
class Reader {
 public:
  Reader(std::string_view data, size_t pos, size_t end)
      : d_(data), pos_(pos), end_(std::min(end, data.size())) {
    if (pos_ > end_) {
      ok_ = false;
      pos_ = end_;
    }
  }
  bool ok() const { return ok_; }
  size_t pos() const { return pos_; }
  void seek(size_t p) {
    if (p > end_) ok_ = false;
    else pos_ = p;
  }
  // Moves `n` bytes on (n from the file: it may be anything).
  void skip(uint64_t n) {
    if (n > end_ - pos_) {
      ok_ = false;
      pos_ = end_;
    } else {
      pos_ += size_t(n);
    }
  }
  bool at_end() const { return pos_ >= end_; }

  template <class T>
  T fixed() {
    T v{};
    if (end_ - pos_ < sizeof(T)) {
      ok_ = false;
      pos_ = end_;
      return v;
    }
    std::memcpy(&v, d_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  uint8_t u8() { return fixed<uint8_t>(); }
  uint64_t uleb() {
    uint64_t v = 0;
    int shift = 0;
    for (;;) {
      if (pos_ >= end_) {
        ok_ = false;
        return v;
      }
      uint8_t b = uint8_t(d_[pos_++]);
      if (shift < 64) v |= uint64_t(b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) return v;
    }
  }
  int64_t sleb() {
    int64_t v = 0;
    int shift = 0;
    uint8_t b = 0;
    do {
      if (pos_ >= end_) {
        ok_ = false;
        return v;
      }
      b = uint8_t(d_[pos_++]);
      if (shift < 64) v |= int64_t(b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40)) v |= int64_t(~uint64_t(0) << shift);  // sign-extend
    return v;
  }
  std::string_view cstring() {
    size_t start = pos_;
    while (pos_ < end_ && d_[pos_] != '\0') ++pos_;
    if (pos_ >= end_) {
      ok_ = false;
      return {};
    }
    return d_.substr(start, pos_++ - start);
  }
  std::string_view bytes(uint64_t n) {
    if (n > end_ - pos_) {
      ok_ = false;
      pos_ = end_;
      return {};
    }
    auto s = d_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  // An encoded pointer; pc-relative ones are relative to where they are
  // stored, i.e. section_addr + position.
  uint64_t encoded(uint8_t enc, uint64_t section_addr) {
    if (enc == kPeOmit) return 0;
    uint64_t here = section_addr + pos_;
    uint64_t v = 0;
    switch (enc & kPeFormatMask) {
      case kPeAbsptr: v = fixed<uint64_t>(); break;
      case kPeUleb: v = uleb(); break;
      case kPeUdata2: v = fixed<uint16_t>(); break;
      case kPeUdata4: v = fixed<uint32_t>(); break;
      case kPeUdata8: v = fixed<uint64_t>(); break;
      case kPeSleb: v = uint64_t(sleb()); break;
      case kPeSdata2: v = uint64_t(int64_t(fixed<int16_t>())); break;
      case kPeSdata4: v = uint64_t(int64_t(fixed<int32_t>())); break;
      case kPeSdata8: v = fixed<uint64_t>(); break;
      default: ok_ = false; return 0;
    }
    switch (enc & kPeAppMask) {
      case 0: break;
      case kPePcrel: v += here; break;
      default: ok_ = false; return 0;  // textrel/datarel/funcrel: not used on x86-64
    }
    if (enc & kPeIndirect) ok_ = false;  // would need to read memory
    return v;
  }

 private:
  std::string_view d_;
  size_t pos_;
  size_t end_;
  bool ok_ = true;
};

struct Cie {
  uint64_t code_align = 1;
  int64_t data_align = -8;
  uint64_t ra_reg = kRip;
  uint8_t fde_encoding = kPeAbsptr;
  bool has_z = false;
  bool signal = false;
  uint8_t address_size = 8;
  size_t insns_begin = 0, insns_end = 0;
  bool valid = false;
};

constexpr size_t kNumRegs = 17;  // rax..r15, rip

struct State {
  CfaRule cfa;
  std::array<RegRule, kNumRegs> regs{};
};

// Executes CFA instructions. Used twice per FDE: the CIE's initial
// instructions (to build the initial state), then the FDE's own.
class Interpreter {
 public:
  Interpreter(std::string_view section, uint64_t section_addr, const Cie& cie)
      : sec_(section), sec_addr_(section_addr), cie_(cie) {}

  // Runs [begin, end). With `emit`, rows are produced from `loc`.
  bool run(size_t begin, size_t end, State& st, const State& initial, uint64_t& loc,
           uint64_t pc_end, const std::function<void(uint64_t, const State&)>* emit) {
    Reader r(sec_, begin, end);
    std::vector<State> stack;
    overflow_ = false;
    while (!r.at_end() && r.ok()) {
      uint8_t op = r.u8();
      uint8_t high = op & 0xc0, low = op & 0x3f;
      auto advance = [&](uint64_t delta) {
        uint64_t next = loc + delta * cie_.code_align;
        if (emit && next > loc) (*emit)(loc, st);
        loc = next;
      };
      if (high == 0x40) {  // DW_CFA_advance_loc
        advance(low);
        continue;
      }
      if (high == 0x80) {  // DW_CFA_offset
        set(low, RegRule{RegRule::kOffset, scaled(r.uleb()), 0, {}}, st);
        continue;
      }
      if (high == 0xc0) {  // DW_CFA_restore
        restore(low, st, initial);
        continue;
      }
      switch (op) {
        case 0x00: break;  // nop
        case 0x01: {       // set_loc
          uint64_t next = r.encoded(cie_.fde_encoding, sec_addr_);
          if (emit && next > loc) (*emit)(loc, st);
          loc = next;
          break;
        }
        case 0x02: advance(r.u8()); break;
        case 0x03: advance(r.fixed<uint16_t>()); break;
        case 0x04: advance(r.fixed<uint32_t>()); break;
        case 0x05: {  // offset_extended
          uint64_t reg = r.uleb();
          set(reg, RegRule{RegRule::kOffset, scaled(r.uleb()), 0, {}}, st);
          break;
        }
        case 0x06: restore(r.uleb(), st, initial); break;
        case 0x07: set(r.uleb(), RegRule{RegRule::kUndefined, 0, 0, {}}, st); break;
        case 0x08: set(r.uleb(), RegRule{RegRule::kSameValue, 0, 0, {}}, st); break;
        case 0x09: {  // register
          uint64_t reg = r.uleb();
          set(reg, RegRule{RegRule::kRegister, 0, uint16_t(r.uleb()), {}}, st);
          break;
        }
        case 0x0a: stack.push_back(st); break;  // remember_state
        case 0x0b:                                // restore_state
          if (stack.empty()) return false;
          st = stack.back();
          stack.pop_back();
          break;
        case 0x0c:  // def_cfa
          st.cfa.kind = CfaRule::kRegOffset;
          st.cfa.reg = uint16_t(r.uleb());
          st.cfa.offset = int64_t(r.uleb());
          st.cfa.expr = {};
          break;
        case 0x0d:  // def_cfa_register
          st.cfa.kind = CfaRule::kRegOffset;
          st.cfa.reg = uint16_t(r.uleb());
          st.cfa.expr = {};
          break;
        case 0x0e: st.cfa.offset = int64_t(r.uleb()); break;  // def_cfa_offset
        case 0x0f: {                                             // def_cfa_expression
          uint64_t len = r.uleb();
          st.cfa.kind = CfaRule::kExpression;
          st.cfa.expr = r.bytes(len);
          break;
        }
        case 0x10: {  // expression
          uint64_t reg = r.uleb();
          uint64_t len = r.uleb();
          set(reg, RegRule{RegRule::kExpression, 0, 0, r.bytes(len)}, st);
          break;
        }
        case 0x11: {  // offset_extended_sf
          uint64_t reg = r.uleb();
          set(reg, RegRule{RegRule::kOffset, scaled(r.sleb()), 0, {}}, st);
          break;
        }
        case 0x12:  // def_cfa_sf
          st.cfa.kind = CfaRule::kRegOffset;
          st.cfa.reg = uint16_t(r.uleb());
          st.cfa.offset = scaled(r.sleb());
          st.cfa.expr = {};
          break;
        case 0x13: st.cfa.offset = scaled(r.sleb()); break;  // def_cfa_offset_sf
        case 0x14: {                                                     // val_offset
          uint64_t reg = r.uleb();
          set(reg, RegRule{RegRule::kValOffset, scaled(r.uleb()), 0, {}}, st);
          break;
        }
        case 0x15: {  // val_offset_sf
          uint64_t reg = r.uleb();
          set(reg, RegRule{RegRule::kValOffset, scaled(r.sleb()), 0, {}}, st);
          break;
        }
        case 0x16: {  // val_expression
          uint64_t reg = r.uleb();
          uint64_t len = r.uleb();
          set(reg, RegRule{RegRule::kValExpression, 0, 0, r.bytes(len)}, st);
          break;
        }
        case 0x2d: break;            // GNU_window_save / AArch64 negate_ra_state
        case 0x2e: r.uleb(); break;  // GNU_args_size
        case 0x2f: {                 // GNU_negative_offset_extended
          uint64_t reg = r.uleb();
          set(reg, RegRule{RegRule::kOffset, scaled_negative(r.uleb()), 0, {}}, st);
          break;
        }
        default:
          return false;  // unknown opcode: the rest of this FDE cannot be trusted
      }
    }
    (void)pc_end;
    return r.ok() && !overflow_;
  }

 private:
  // A factored offset times the CIE's data alignment. Both come from the
  // file: a product that does not fit in 64 bits is no real rule, and the
  // FDE is rejected (found by cfi_fuzz; UB before).
  int64_t scaled(int64_t factored) {
    int64_t out = 0;
    if (__builtin_mul_overflow(factored, cie_.data_align, &out)) overflow_ = true;
    return out;
  }
  int64_t scaled(uint64_t factored) {
    if (factored > uint64_t(INT64_MAX)) {
      overflow_ = true;
      return 0;
    }
    return scaled(int64_t(factored));
  }
  int64_t scaled_negative(uint64_t factored) {
    int64_t v = scaled(factored);
    if (v == INT64_MIN) overflow_ = true;
    return overflow_ ? 0 : -v;
  }

  void set(uint64_t reg, RegRule rule, State& st) {
    if (reg < kNumRegs) st.regs[reg] = rule;
  }
  void restore(uint64_t reg, State& st, const State& initial) {
    if (reg < kNumRegs) st.regs[reg] = initial.regs[reg];
  }

  std::string_view sec_;
  uint64_t sec_addr_;
  const Cie& cie_;
  bool overflow_ = false;
};

Cie parse_cie(std::string_view sec, size_t begin, size_t end, CfiSection kind, bool is64,
              uint64_t section_addr) {
  Cie c;
  Reader r(sec, begin, end);
  uint8_t version = r.u8();
  if (version != 1 && version != 3 && version != 4) return c;
  std::string_view aug = r.cstring();
  if (aug.find("eh") != std::string_view::npos) r.fixed<uint64_t>();  // ancient GCC eh_ptr
  if (version >= 4) {
    c.address_size = r.u8();
    r.u8();  // segment selector size
  }
  c.code_align = r.uleb();
  c.data_align = r.sleb();
  c.ra_reg = version == 1 ? r.u8() : r.uleb();
  if (!aug.empty() && aug[0] == 'z') {
    c.has_z = true;
    uint64_t len = r.uleb();
    const size_t aug_start = r.pos();
    for (char ch : aug.substr(1)) {
      if (ch == 'R') c.fde_encoding = r.u8();
      else if (ch == 'L') r.u8();  // LSDA encoding, unused
      else if (ch == 'P') {
        uint8_t enc = r.u8();
        r.encoded(enc & ~kPeIndirect, section_addr);  // personality routine, unused
      } else if (ch == 'S') c.signal = true;
      // 'B' (AArch64 BTI), 'G' (MTE): no data.
    }
    r.seek(aug_start);
    r.skip(len);
  } else if (aug == "S") {
    c.signal = true;
  }
  if (kind == CfiSection::kDebugFrame) c.fde_encoding = kPeAbsptr;
  (void)is64;
  c.insns_begin = r.pos();
  c.insns_end = end;
  c.valid = r.ok();
  return c;
}

}  // namespace

Status parse_cfi(std::string_view sec, uint64_t section_addr, CfiSection kind,
                 const std::function<void(const CfiRow&)>& emit, CfiStats* stats) {
  CfiStats local;
  CfiStats& st = stats ? *stats : local;
  std::unordered_map<size_t, Cie> cies;

  auto cie_at = [&](size_t offset) -> const Cie* {
    auto it = cies.find(offset);
    if (it != cies.end()) return it->second.valid ? &it->second : nullptr;
    // A CIE referenced before we reached it (legal in .debug_frame).
    Reader r(sec, offset, sec.size());
    uint64_t len = r.fixed<uint32_t>();
    bool is64 = len == 0xffffffff;
    if (is64) len = r.fixed<uint64_t>();
    size_t content = r.pos();
    if (!r.ok() || len > sec.size() - content) return nullptr;
    if (is64) r.fixed<uint64_t>();
    else r.fixed<uint32_t>();
    Cie c = parse_cie(sec, r.pos(), content + len, kind, is64, section_addr);
    auto& slot = cies[offset] = c;
    if (c.valid) ++st.cies;
    return slot.valid ? &slot : nullptr;
  };

  size_t pos = 0;
  while (pos + 4 <= sec.size()) {
    size_t entry = pos;
    Reader r(sec, pos, sec.size());
    uint64_t len = r.fixed<uint32_t>();
    if (len == 0) {
      if (kind == CfiSection::kEhFrame) break;  // terminator
      pos += 4;
      continue;
    }
    bool is64 = len == 0xffffffff;
    if (is64) len = r.fixed<uint64_t>();
    size_t content = r.pos();
    if (!r.ok() || len > sec.size() - content || len < 4) {
      ++st.bad_entries;
      break;
    }
    size_t end = content + len;
    pos = end;
    size_t id_pos = r.pos();
    uint64_t id = is64 ? r.fixed<uint64_t>() : r.fixed<uint32_t>();
    bool is_cie = kind == CfiSection::kEhFrame
                      ? id == 0
                      : (is64 ? id == 0xffffffffffffffffull : id == 0xffffffffu);
    if (is_cie) {
      if (!cies.count(entry)) {
        Cie c = parse_cie(sec, r.pos(), end, kind, is64, section_addr);
        cies[entry] = c;
        if (c.valid) ++st.cies;
        else ++st.bad_entries;
      }
      continue;
    }

    size_t cie_offset = kind == CfiSection::kEhFrame ? id_pos - size_t(id) : size_t(id);
    if (kind == CfiSection::kEhFrame && id > id_pos) {
      ++st.bad_entries;
      continue;
    }
    const Cie* cie = cie_at(cie_offset);
    if (!cie) {
      ++st.bad_entries;
      continue;
    }
    uint64_t pc_begin, pc_range;
    if (kind == CfiSection::kEhFrame) {
      pc_begin = r.encoded(cie->fde_encoding, section_addr);
      pc_range = r.encoded(cie->fde_encoding & kPeFormatMask, section_addr);
    } else {
      pc_begin = cie->address_size == 4 ? r.fixed<uint32_t>() : r.fixed<uint64_t>();
      pc_range = cie->address_size == 4 ? r.fixed<uint32_t>() : r.fixed<uint64_t>();
    }
    if (cie->has_z) {
      uint64_t aug_len = r.uleb();
      r.skip(aug_len);
    }
    if (!r.ok()) {
      ++st.bad_entries;
      continue;
    }
    if (pc_range == 0) continue;  // discarded function (e.g. by --gc-sections)
    ++st.fdes;
    uint64_t pc_end = pc_begin + pc_range;

    // Initial state: the CIE's instructions from the architecture default.
    State initial;
    initial.cfa = CfaRule{CfaRule::kRegOffset, kRsp, 8, {}};
    Interpreter interp(sec, section_addr, *cie);
    uint64_t loc = pc_begin;
    if (!interp.run(cie->insns_begin, cie->insns_end, initial, initial, loc, pc_end, nullptr)) {
      ++st.bad_entries;
      continue;
    }
    State cur = initial;
    loc = pc_begin;
    uint16_t ra_reg = uint16_t(cie->ra_reg);
    auto emit_row = [&](uint64_t at, const State& s) {
      if (at >= pc_end) return;
      CfiRow row;
      row.pc = at;
      row.begin = pc_begin;
      row.end = pc_end;
      row.cfa = s.cfa;
      row.ra = ra_reg < kNumRegs ? s.regs[ra_reg] : RegRule{RegRule::kUndefined, 0, 0, {}};
      row.rbp = s.regs[kRbp];
      row.rsp = s.regs[kRsp];
      row.signal_frame = cie->signal;
      for (size_t i = 0; i < kNumRegs; ++i) {
        auto k = s.regs[i].kind;
        if ((k == RegRule::kExpression || k == RegRule::kValExpression) && i != kRbp && i != ra_reg &&
            i != kRsp)
          row.other_regs_by_expression = true;
      }
      ++st.rows;
      emit(row);
    };
    std::function<void(uint64_t, const State&)> emit_fn = emit_row;
    if (!interp.run(r.pos(), end, cur, initial, loc, pc_end, &emit_fn)) {
      // Emit what was valid up to the bad instruction, then stop this FDE.
      ++st.bad_entries;
    }
    emit_row(loc, cur);
  }
  return {};
}

bool decode_expression(std::string_view expr, std::vector<ExprOp>* out) {
  Reader r(expr, 0, expr.size());
  out->clear();
  while (!r.at_end()) {
    uint8_t op = r.u8();
    ExprOp e{op, 0};
    if (op >= DW_OP_breg0 && op <= DW_OP_breg31) e.operand = r.sleb();
    else if (op >= DW_OP_lit0 && op <= DW_OP_lit31) e.operand = op - DW_OP_lit0;
    else if (op == 0x08) e.operand = r.u8();                           // const1u
    else if (op == 0x09) e.operand = int8_t(r.u8());                   // const1s
    else if (op == 0x0a) e.operand = r.fixed<uint16_t>();              // const2u
    else if (op == 0x0b) e.operand = r.fixed<int16_t>();               // const2s
    else if (op == 0x0c) e.operand = r.fixed<uint32_t>();              // const4u
    else if (op == 0x0d) e.operand = r.fixed<int32_t>();               // const4s
    else if (op == 0x10) e.operand = int64_t(r.uleb());                // constu
    else if (op == 0x11) e.operand = r.sleb();                         // consts
    else if (op == 0x23) e.operand = int64_t(r.uleb());                // plus_uconst
    else if (op == DW_OP_deref || op == DW_OP_and || op == DW_OP_plus || op == DW_OP_shl ||
             op == DW_OP_ge || op == 0x1c /*minus*/ || op == 0x21 /*or*/ || op == 0x12 /*dup*/)
      ;
    else
      return false;
    if (!r.ok()) return false;
    out->push_back(e);
  }
  return true;
}

}  // namespace ember::unwind
