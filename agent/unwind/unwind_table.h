// UnwindTable: one binary's unwind information as a sorted list of
// (pc, rule) rows, where a rule says how to get from a frame to its caller
// in terms an unwinder without a DWARF interpreter can execute: the CFA is
// rsp or rbp plus an offset (or one of a few recognized special forms), the
// return address and the caller's rbp are at fixed offsets from it.
//
// Built once per binary by build_unwind_table() from .eh_frame, .debug_frame,
// or the .debug_frame of its separate debug file, and for Go code that none
// of those covers, from the SP deltas in the Go runtime's own .gopclntab.
// The result is shared by every process that maps the binary. The BPF
// unwinder and the user-space reference unwinder (unwinder.h) execute the
// same rules.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "symbolizer/elf_file.h"

namespace ember::unwind {

struct UnwindRule {
  enum Kind : uint8_t {
    kNone = 0,      // no CFI covers this pc: only frame pointers can help
    kCfaRsp,        // CFA = rsp + cfa_offset
    kCfaRbp,        // CFA = rbp + cfa_offset
    kCfaPlt,        // PLT entry: CFA = rsp + cfa_offset + ((rip & 15) >= aux ? 8 : 0)
    kCfaRbpDeref,   // realigned stack (DRAP): CFA = *(rbp + cfa_offset)
    kSignal,        // signal trampoline: rsp, rbp, rip restored from the
                    // sigcontext at rsp + cfa_offset / rbp_offset / ra_offset
    kEndOfStack,    // return address undefined: the outermost frame
    kUnsupported,   // CFI we do not execute: stop here, never guess
    kCfaReg,        // CFA = register `reg` + cfa_offset (only in the first frame,
                    // the one frame where every register is known)
  };
  enum Flags : uint8_t {
    kRaInRegister = 1,   // return address is in register `reg` (first frame only)
    kRbpUndefined = 2,   // caller's rbp cannot be recovered
    kRbpFromRbp = 4,     // caller's rbp is at *(rbp + rbp_offset) (DRAP)
  };

  int32_t cfa_offset = 0;
  int16_t rbp_offset = 0;  // 0: rbp unchanged; else saved at CFA + rbp_offset
  int16_t ra_offset = -8;  // return address at CFA + ra_offset
  uint8_t kind = kNone;
  uint8_t flags = 0;
  uint8_t reg = 0;
  uint8_t aux = 0;

  bool operator==(const UnwindRule& o) const {
    return cfa_offset == o.cfa_offset && rbp_offset == o.rbp_offset && ra_offset == o.ra_offset &&
           kind == o.kind && flags == o.flags && reg == o.reg && aux == o.aux;
  }
  std::string to_string() const;
};
static_assert(sizeof(UnwindRule) == 12);

// 8 bytes, not 16: a u64 pc padded the row to 16 bytes, and the agent keeps
// every table it loaded (7.8 MiB of rows for the 57 binaries mapped on this
// machine, heaptrack at the agent's peak; 3.6 MiB for 55 binaries since).
struct UnwindRow {
  uint32_t pc_off = 0;  // where the rule starts, from UnwindTable::base()
  uint32_t rule = 0;    // index into UnwindTable::rules()
};
static_assert(sizeof(UnwindRow) == 8);

struct UnwindTableStats {
  // ".eh_frame", ".debug_frame", "debuglink:.debug_frame", ".gopclntab",
  // joined with '+' when several contributed, or "none"
  std::string source;
  size_t fdes = 0;
  size_t go_functions = 0;     // Go functions whose rows came from .gopclntab
  size_t cfi_rows = 0;         // rows of the CFI table before compaction
  size_t rows = 0;             // rows after merging identical neighbours
  size_t unsupported_rows = 0;  // rows whose CFI we cannot execute
  size_t plt_rows = 0;
  size_t bad_entries = 0;
};

class UnwindTable {
 public:
  const std::vector<UnwindRow>& rows() const { return rows_; }
  // The ELF virtual address of the first row; rows count from it.
  uint64_t base() const { return base_; }
  // The ELF virtual address where `row` starts.
  uint64_t pc(const UnwindRow& row) const { return base_ + row.pc_off; }
  const std::vector<UnwindRule>& rules() const { return rules_; }
  const UnwindTableStats& stats() const { return stats_; }
  // The rule covering `vaddr`, or a kNone rule outside every FDE.
  const UnwindRule& find(uint64_t vaddr) const;
  // The load bias of a mapping of this binary that starts at `start` with
  // file offset `offset`: vaddr = address - bias. False if no PT_LOAD
  // segment holds that offset.
  bool bias_for(uint64_t start, uint64_t offset, uint64_t* bias) const;
  size_t memory_bytes() const {
    return sizeof(*this) + rows_.capacity() * sizeof(UnwindRow) + rules_.capacity() * sizeof(UnwindRule);
  }
  // The lookup of the debug file (for its .debug_frame) could not finish:
  // the process's root was gone (debug_file.h). Not a final table.
  bool debug_deferred() const { return debug_deferred_; }

 private:
  friend class TableBuilder;
  bool debug_deferred_ = false;
  uint64_t base_ = 0;
  std::vector<UnwindRow> rows_;
  std::vector<UnwindRule> rules_;  // rules_[0] is always the kNone rule
  std::vector<LoadSegment> segments_;
  UnwindTableStats stats_;
};

// Builds the table of `elf`. `debug`: where its separate debug file is looked
// for (inside a container's root), for code whose CFI is only in .debug_frame,
// which stripping moves there.
Result<std::shared_ptr<const UnwindTable>> build_unwind_table(const ElfFile& elf,
                                                              const DebugSearch& debug = {});

}  // namespace ember::unwind
