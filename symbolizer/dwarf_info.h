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
  std::atomic<size_t> bytes_{0};
};

}  // namespace ember
