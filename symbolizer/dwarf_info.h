// DwarfInfo: source locations and inlined frames from a binary's DWARF, as a
// debugger shows them. Owns the libdw handle of one ELF file (the binary
// itself or its separate debug file).
//
// Nothing is parsed up front: the first lookup in a compile unit reads that
// unit's line table and walks its DIE tree once, into two sorted arrays (line
// rows; subprogram and inlined-call scopes in preorder). Later lookups in the
// unit are binary searches. Memory grows with the units actually touched and
// is reported by memory_bytes() so the owning cache can bound it.
//
// Thread-safe: one mutex per file.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "symbolizer/elf_file.h"

typedef struct Dwarf Dwarf;

namespace ember {

// One source frame. For an address inside inlined code there are several:
// the inlined function itself first, then each caller it was inlined into,
// the real (outermost) function last.
struct SourceFrame {
  std::string function;  // demangled linkage name, or the plain name (C)
  std::string system_name;  // linkage name as in DWARF ("" for C)
  std::string file;      // absolute when DWARF says where it was compiled
  int line = 0;
  bool inlined = false;  // true for every frame but the outermost
};

// The sections a line table refers to. Views into an open ElfFile.
struct LineSections {
  std::string_view line, line_str, str;
  // From `file`, once libdw has opened it (libdw decompresses compressed
  // sections in place). False when .debug_line is missing or still
  // compressed, or the file is not a little-endian linked ELF (relocatable
  // objects need relocations applied): then only libdw can read it.
  static bool from(const ElfFile& file, LineSections* out);
};

// One compile unit's line table (DWARF 2 to 5), decoded by Ember instead of
// libdw's dwarf_getsrclines(): several times faster, and libdw would keep
// its own copy of every row for the life of the handle. Rows and file names
// are exactly what libdw reports (tests/unit/line_table_test.cc checks).
struct LineTable {
  struct Row {
    uint64_t addr;
    int line;
    uint32_t file;  // index into files
    bool end;       // DW_LNE_end_sequence
  };
  // By the table's file index, joined with their directory as libdw does
  // ("???" for index 0 before DWARF 5, which numbers files from 1).
  std::vector<std::string> files;
  std::vector<Row> rows;  // in program order

  // Decodes the table at `offset` (the unit's DW_AT_stmt_list); `comp_dir`
  // (DW_AT_comp_dir, may be null) is directory 0 before DWARF 5. False on
  // anything malformed or not understood (a form it does not know).
  bool decode(const LineSections& sections, uint64_t offset, const char* comp_dir);
};

class DwarfInfo {
 public:
  // Takes the ELF file that holds .debug_info. Fails if it has none.
  static Result<std::unique_ptr<DwarfInfo>> open(std::unique_ptr<ElfFile> elf);
  ~DwarfInfo();
  DwarfInfo(const DwarfInfo&) = delete;
  DwarfInfo& operator=(const DwarfInfo&) = delete;

  // Frames for an ELF address, innermost first; false if no unit covers it.
  bool lookup(uint64_t vaddr, std::vector<SourceFrame>* out, bool demangle = true);
  // Only the line of `vaddr` (no inline expansion); false if unknown.
  bool line_of(uint64_t vaddr, std::string* file, int* line);

  size_t memory_bytes() const { return bytes_.load(std::memory_order_relaxed); }
  size_t units_parsed() const;
  const std::string& path() const { return elf_->name(); }

 private:
  struct Unit;
  DwarfInfo(std::unique_ptr<ElfFile> elf, Dwarf* dw);
  Unit* unit_for(uint64_t vaddr);  // caller holds mu_
  Unit* parse_unit(uint64_t cu_offset);

  std::unique_ptr<ElfFile> elf_;
  Dwarf* dw_;
  std::mutex mu_;
  std::unordered_map<uint64_t, std::unique_ptr<Unit>> units_;  // by CU DIE offset
  // Address ranges of every unit, from .debug_aranges or the units' own
  // ranges, sorted: built on first use.
  struct UnitRange {
    uint64_t lo, hi, cu_offset;
  };
  std::vector<UnitRange> unit_ranges_;
  bool ranges_built_ = false;
  // Ember's own line-table decoder is used when `has_line_sections_`;
  // otherwise, or if it fails on a unit, libdw's.
  LineSections line_sections_;
  bool has_line_sections_ = false;
  std::atomic<size_t> bytes_{0};
};

}  // namespace ember
