// GoPclntab: symbolization of Go binaries from the runtime's own symbol
// table, .gopclntab ("pclntab"), which Go keeps in every executable because
// its runtime needs it for tracebacks and garbage collection. It survives
// `go build -ldflags="-s -w"` and `strip`, which remove .symtab and DWARF.
//
// What is read, per function (see runtime/symtab.go of the Go release):
//   functab      sorted (entry, _func offset) pairs, plus an end sentinel
//   _func        name offset, pc-value tables (file, line, pcdata, and the
//                SP deltas, pcsp, that unwind tables are built from),
//                funcdata, funcID and flags
//   pc-value     (zig-zag varint value delta, varint pc delta) sequences
//   inline tree  FUNCDATA_InlTree + PCDATA_InlTreeIndex: for an address in
//                inlined code, which call it belongs to and where that call
//                sits in its caller (parentPc)
//
// Formats: Go 1.16/1.17 (magic 0xFFFFFFFA), 1.18/1.19 (0xFFFFFFF0) and 1.20
// onwards (0xFFFFFFF1), either byte order, 4- or 8-byte pointers.
//
// Since Go 1.18 the inline trees live in the go:func.* blob of .rodata and
// are addressed relative to moduledata.gofunc, a field of the runtime's
// moduledata; in a stripped binary that structure is found by looking for
// the word that points at the pclntab (in the file, or as the addend of a
// dynamic relocation for PIE) and checking the fields around it. Without it
// lookups still give the real function, file and line, only not the inlined
// frames (has_inline_tree() says which).
//
// Memory: the file is mapped read-only (page cache; nothing is decoded up
// front). The heap state is a few dozen bytes plus the PT_LOAD table, except
// for Go 1.16/1.17 PIE binaries, whose pclntab holds absolute pointers that
// the loader relocates: those keep the pclntab's relocations (16 bytes per
// function, roughly). A lookup binary-searches the functab and decodes only
// the pc-value tables of the one function it lands in. Lookups are const and
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "symbolizer/dwarf_info.h"
#include "symbolizer/elf_file.h"

namespace ember {

class GoPclntab {
 public:
  enum class Format { kGo116, kGo118, kGo120 };

  // Parses the pclntab of a Go ELF: the .gopclntab section (or the section
  // ending in ".gopclntab", as PIE binaries name it), else a scan of the
  // loaded segments for a header that validates. Fails if not a Go binary.
  // The result does not refer to `elf` afterwards (it maps the file itself).
  static Result<std::unique_ptr<GoPclntab>> open(const ElfFile& elf);
  ~GoPclntab();
  GoPclntab(const GoPclntab&) = delete;
  GoPclntab& operator=(const GoPclntab&) = delete;

  // Frames for an ELF virtual address, innermost first: the inlined function
  // (with the file:line of the pc), then each caller it was inlined into
  // (with the line of the call), the real function last (inlined=false).
  // False if no Go function covers vaddr (including the padding between
  // functions and non-Go code). Callers pass pc-1 for return addresses.
  bool lookup(uint64_t vaddr, std::vector<SourceFrame>* out) const;

  // --- Whole-table passes (unwind tables are built from the SP deltas) ---

  // _func.flag bits (runtime/symtab.go funcFlag, Go 1.17+; in Go 1.16 the
  // byte is padding and reads 0). Unlike funcID, whose numbering changes
  // between releases, these bits have kept their meaning.
  static constexpr uint8_t kFlagTopFrame = 1;  // outermost frame of its stack (goexit, mstart, rt0_go)
  static constexpr uint8_t kFlagSpWrite = 2;   // sets SP to a value the pcsp table cannot describe
  static constexpr uint8_t kFlagAsm = 4;       // written in assembly (Go 1.19+)

  // One entry of the function table.
  struct Function {
    uint64_t entry = 0;  // ELF virtual address
    uint64_t end = 0;    // the next function's entry: includes alignment padding
    std::string name;
    uint8_t func_id = 0;  // _func.funcID, raw: release-specific numbering
    uint8_t flag = 0;     // kFlag* bits
    uint32_t pcsp = 0;    // offset of the SP-delta table in pctab; 0: none
  };
  // Function i, for i < function_count() (in address order). False if its
  // entry is unreadable.
  bool function(size_t i, Function* out) const;

  // A pc-value table decoded into ranges: `value` holds for pcs in
  // [begin, end). Consecutive ranges are contiguous and start at the entry.
  struct PcRange {
    uint64_t begin, end;
    int32_t value;
  };
  // The pcsp table of `f`: how far SP is below its value at the entry
  // (bytes, the return address not counted), by pc. The last range ends
  // where the function's code ends. False (and `out` emptied) if `f` has no
  // table or it is corrupt (runs past the next function).
  bool sp_deltas(const Function& f, std::vector<PcRange>* out) const;

  // Heap bytes held (the file mapping is not counted: it is page cache).
  size_t memory_bytes() const;
  // "go1.19.8" from the build info blob, or "" when it is not recoverable.
  std::string go_version() const { return go_version_; }

  // Diagnostics.
  Format format() const { return format_; }
  size_t function_count() const { return size_t(nfunc_); }
  uint64_t text_start() const { return text_start_; }
  bool has_inline_tree() const { return format_ == Format::kGo116 || gofunc_ != 0; }
  // How the pclntab was found: "section" or "scan".
  const char* source() const { return source_; }

 private:
  struct Segment {
    uint64_t vaddr, filesz, offset;
  };
  struct Func;  // a decoded _func header
  GoPclntab() = default;

  // Raw readers. All bounds-checked against the image; false when out of range.
  bool u32_at(uint64_t file_off, uint32_t* v) const;
  bool ptr_at(uint64_t file_off, uint64_t* v) const;
  const uint8_t* at_vaddr(uint64_t vaddr, uint64_t len) const;
  // A pointer-sized word at `vaddr` as the loader leaves it (applies a
  // RELATIVE relocation if the pclntab has one there: Go 1.16 PIE).
  bool load_ptr(uint64_t vaddr, uint64_t* v) const;

  bool func_entry(uint64_t i, uint64_t* entry) const;  // functab[i].entry as an address
  bool func_at(uint64_t i, Func* f) const;
  // pc-value table at `table_off` (into pctab) for `target`; false if the
  // table does not cover it.
  bool pcvalue(const Func& f, uint32_t table_off, uint64_t target, int32_t* val) const;
  // Every range of the pc-value table at `table_off`; false past `limit`.
  bool pc_ranges(uint64_t entry, uint32_t table_off, uint64_t limit, std::vector<PcRange>* out) const;
  bool pcdata_off(const Func& f, uint32_t table, uint32_t* off) const;
  bool funcdata_addr(const Func& f, uint32_t index, uint64_t* addr) const;
  std::string name_at(int64_t nameoff) const;
  std::string file_of(const Func& f, int32_t fileno) const;

  // --- the mapped image ---
  const uint8_t* image_ = nullptr;
  size_t image_size_ = 0;
  bool unmap_ = false;
  std::vector<uint8_t> owned_;  // when the ElfFile has no fd (in-memory image)
  std::vector<Segment> segments_;
  bool big_endian_ = false;

  // --- the pclntab ---
  Format format_ = Format::kGo118;
  const char* source_ = "";
  uint64_t pcln_off_ = 0, pcln_size_ = 0, pcln_vaddr_ = 0;  // header, in the file
  uint32_t ptr_size_ = 8, quantum_ = 1;
  uint64_t nfunc_ = 0;
  uint64_t text_start_ = 0;
  // Sub-tables, as file offsets and sizes.
  uint64_t funcname_off_ = 0, funcname_size_ = 0;
  uint64_t cutab_off_ = 0, cutab_size_ = 0;
  uint64_t filetab_off_ = 0, filetab_size_ = 0;
  uint64_t pctab_off_ = 0, pctab_size_ = 0;
  uint64_t functab_off_ = 0;  // also the base of the _func offsets
  uint64_t functab_size_ = 0;
  uint64_t gofunc_ = 0;  // moduledata.gofunc (1.18+), 0 if not found
  // Go 1.16 PIE: RELATIVE relocations inside the pclntab (vaddr, addend), sorted.
  std::vector<std::pair<uint64_t, uint64_t>> relocs_;
  std::string go_version_;

  friend class GoPclntabBuilder;
};

}  // namespace ember
