// Binary: what Ember keeps of an ELF once parsed: its identity (build-id),
// where its segments load, and an address-sorted function table, with its
// DWARF or Go pclntab for lines and inlined frames. A Binary holds no fd or
// Elf*, so caching thousands of them costs memory only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "symbolizer/elf_file.h"

namespace ember {

// A function symbol. Names live in the owning Binary's string pool.
struct Symbol {
  uint64_t start = 0;
  uint64_t size = 0;  // never 0 after loading: zero-sized symbols extend to the next
  uint32_t name = 0;  // offset into the pool
  uint8_t binding = 0;
};

class DwarfInfo;
class DebuginfodClient;
class GoPclntab;
class FrameCache;
struct SourceFrame;

class Binary {
 public:
  // Where symbols and source lines may come from besides the file itself.
  struct LoadOptions {
    bool dwarf = false;          // open DWARF for lines and inlined frames
    DebugSearch debug;           // where debug files are (a container's root, dirs)
    bool minidebuginfo = true;   // .gnu_debugdata (xz) when .symtab is gone
    // Addresses whose describe() answers are remembered (FrameCache); 0
    // turns the cache off.
    size_t frame_cache_addresses = size_t(1) << 18;
    // Last resort for a missing debug file: ask debuginfod servers by
    // build-id (null: never). `now_ns` feeds its miss memory.
    DebuginfodClient* debuginfod = nullptr;
    uint64_t now_ns = 0;
  };

  // Parses headers, build-id and the function table of `file` alone.
  static Result<std::shared_ptr<Binary>> load(const ElfFile& file);
  // The full load: symbols from the best source (.symtab, the debug file's
  // .symtab, MiniDebugInfo, .dynsym), and DWARF from the file or its debug
  // file when asked. Keeps the file that holds DWARF open.
  static Result<std::shared_ptr<Binary>> load(std::unique_ptr<ElfFile> file,
                                              const LoadOptions& opts);
  ~Binary();

  const std::string& path() const { return path_; }
  const std::string& build_id() const { return build_id_; }
  bool is_shared_object() const { return type_ == ET_DYN; }
  uint64_t entry() const { return entry_; }
  const std::vector<LoadSegment>& segments() const { return segments_; }
  size_t symbol_count() const { return symbols_.size(); }
  // Approximate heap bytes held, for cache accounting.
  size_t memory_bytes() const;

  // Maps a file offset (as computed from a /proc/PID/maps entry) to the ELF
  // virtual address the symbol table uses. Correct for PIE, non-PIE and
  // shared objects alike, since it goes through the PT_LOAD headers.
  std::optional<uint64_t> file_offset_to_vaddr(uint64_t offset) const;

  // The function containing `vaddr`, or null.
  const Symbol* lookup(uint64_t vaddr) const;
  std::string_view name_of(const Symbol& s) const;
  const std::vector<Symbol>& symbols() const { return symbols_; }

  // Source frames for `vaddr` (innermost first) from DWARF; false when the
  // binary has no DWARF for it.
  bool source_frames(uint64_t vaddr, std::vector<SourceFrame>* out, bool demangle = true) const;
  bool has_dwarf() const { return dwarf_ != nullptr; }
  // A Go binary without DWARF: names, lines and inlined frames come from the
  // runtime's .gopclntab, which survives stripping.
  bool has_go_pclntab() const { return go_ != nullptr; }
  // Built by the Go toolchain (its sections or build-id note), stripped or not.
  bool go_binary() const { return go_binary_; }
  // Everything known about `vaddr`: DWARF frames (inlined calls expanded)
  // when `lines` and DWARF cover it, else one frame named from the symbol
  // table (no file). Empty when neither knows the address.
  // Answers are cached per address (for the first `lines`/`demangle`
  // combination asked), so repeated addresses cost a hash probe.
  void describe(uint64_t vaddr, bool lines, bool demangle, std::vector<SourceFrame>* out) const;
  // Addresses whose answers describe() currently remembers.
  size_t cached_addresses() const;
  // Where symbols and DWARF came from, for diagnostics and tests.
  const std::string& symbol_source() const { return symbol_source_; }
  // The debug-file lookup could not finish: the process's root was gone
  // (DebugLookup::deferred). Caches look again when a live process maps it.
  bool debug_deferred() const { return debug_deferred_; }
  // The separate debug file symbols or lines came from ("" if none).
  const std::string& debug_file() const { return debug_file_; }
  const std::string& dwarf_source() const { return dwarf_source_; }

 private:
  Binary() = default;
  std::string path_;
  std::string build_id_;
  uint16_t type_ = 0;
  uint64_t entry_ = 0;
  std::vector<LoadSegment> segments_;
  std::vector<Symbol> symbols_;  // sorted by start, no exact duplicates
  std::string pool_;             // NUL-separated symbol names
  std::string symbol_source_;
  bool debug_deferred_ = false;
  std::string debug_file_;
  std::string dwarf_source_;
  std::unique_ptr<DwarfInfo> dwarf_;
  std::unique_ptr<GoPclntab> go_;  // only when dwarf_ is null
  bool go_binary_ = false;
  // describe()'s answers by address. Binary is shared and const, so the
  // cache is mutable behind its own lock. cache_mode_: the (lines, demangle)
  // combination cached, -1 before the first call.
  mutable std::mutex cache_mu_;
  mutable std::unique_ptr<FrameCache> frame_cache_;
  mutable int cache_mode_ = -1;
  size_t frame_cache_max_ = size_t(1) << 18;  // LoadOptions::frame_cache_addresses
  mutable std::atomic<size_t> cache_bytes_{0};

  void describe_uncached(uint64_t vaddr, bool lines, bool demangle,
                         std::vector<SourceFrame>* out) const;
  void load_symbols(const ElfFile& file, bool dynsym_only);
};

}  // namespace ember
