// DWARF call frame information (CFI): parses .eh_frame and .debug_frame and
// runs every FDE's instructions once, linearly, producing the rows of the
// CFI table: for each PC range, how to find the caller's frame.
//
// This is the only place that understands CFI encoding. Its output (CfiRow)
// still speaks DWARF (registers, rules, expressions); unwind_table.h turns it
// into the compact rules Ember's unwinders execute. Written for x86-64 (the
// register numbers below); the encoding itself is architecture-neutral.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ember::unwind {

// DWARF register numbers on x86-64.
enum DwarfReg : uint16_t {
  kRax = 0, kRdx = 1, kRcx = 2, kRbx = 3, kRsi = 4, kRdi = 5, kRbp = 6, kRsp = 7,
  kR8 = 8, kR9, kR10, kR11, kR12, kR13, kR14, kR15, kRip = 16,
};

// How a register's caller value is found.
struct RegRule {
  enum Kind : uint8_t {
    kSameValue,    // unchanged (also "unspecified": callee-saved by convention)
    kUndefined,    // not recoverable (for the return address: end of stack)
    kOffset,       // saved at CFA + offset
    kValOffset,    // value is CFA + offset
    kRegister,     // held in register `reg`
    kExpression,   // saved at the address computed by `expr`
    kValExpression,
  };
  Kind kind = kSameValue;
  int64_t offset = 0;
  uint16_t reg = 0;
  std::string_view expr;  // DWARF expression bytes (points into the section)
  bool operator==(const RegRule& o) const {
    return kind == o.kind && offset == o.offset && reg == o.reg && expr == o.expr;
  }
};

struct CfaRule {
  enum Kind : uint8_t { kRegOffset, kExpression };
  Kind kind = kRegOffset;
  uint16_t reg = kRsp;
  int64_t offset = 8;
  std::string_view expr;
  bool operator==(const CfaRule& o) const {
    return kind == o.kind && reg == o.reg && offset == o.offset && expr == o.expr;
  }
};

// One row: the rules in force from `pc` until the next row (or `end`).
struct CfiRow {
  uint64_t pc = 0;
  uint64_t begin = 0;  // the FDE this row belongs to covers [begin, end)
  uint64_t end = 0;
  CfaRule cfa;
  RegRule ra;   // return address column
  RegRule rbp;
  RegRule rsp;  // normally "value is CFA"; signal frames restore it from memory
  bool signal_frame = false;  // CIE augmentation 'S': the pc is not a return address
  bool other_regs_by_expression = false;  // some register uses an expression we ignore
};

struct CfiStats {
  size_t cies = 0;
  size_t fdes = 0;
  size_t rows = 0;
  size_t bad_entries = 0;  // malformed CIEs/FDEs skipped
};

enum class CfiSection { kEhFrame, kDebugFrame };

// Runs every FDE of one section, calling `emit` with each row in order of
// the section (rows of one FDE are sorted; FDEs are not). `section_addr` is
// the section's virtual address, needed for pc-relative pointers.
Status parse_cfi(std::string_view section, uint64_t section_addr, CfiSection kind,
                 const std::function<void(const CfiRow&)>& emit, CfiStats* stats);

// DWARF expression helpers used to recognize the few expressions real
// code uses (PLT entries, signal trampolines, realigned stacks).
struct ExprOp {
  uint8_t op = 0;
  int64_t operand = 0;
};
// Decodes a simple expression (no branches); false if it uses ops we do not
// decode.
bool decode_expression(std::string_view expr, std::vector<ExprOp>* out);

// DWARF opcodes referenced by unwind_table.cc.
enum : uint8_t {
  DW_OP_deref = 0x06,
  DW_OP_and = 0x1a,
  DW_OP_plus = 0x22,
  DW_OP_shl = 0x24,
  DW_OP_ge = 0x2a,
  DW_OP_lit0 = 0x30,
  DW_OP_lit31 = 0x4f,
  DW_OP_breg0 = 0x70,
  DW_OP_breg31 = 0x8f,
};

}  // namespace ember::unwind
