// Symbolizer: turns a user address in a process snapshot, or a kernel
// address, into (module, offset, function). It owns the binary cache and the
// kernel symbol table; it knows nothing about samples or profiles.
//
// Threading: any thread may call it; the binary cache and the kallsyms swap
// are internally locked.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "symbolizer/binary_cache.h"
#include "symbolizer/debuginfod.h"
#include "symbolizer/demangle.h"
#include "symbolizer/dwarf_info.h"
#include "symbolizer/kallsyms.h"
#include "symbolizer/perf_map.h"
#include "symbolizer/process_maps.h"

namespace ember {

struct SymbolizerOptions {
  std::string proc_root = "/proc";
  BinaryCache::Options cache;
  bool demangle = true;
  // kSimplified: no parameters, template arguments or return types.
  DemangleStyle demangle_style = DemangleStyle::kFull;
  // File and line for every frame, with inlined calls as frames of their
  // own (DWARF); false: function names only.
  bool lines = true;
  // Where separate debug files live, each inside the process's root, in
  // order (gdb's debug-file-directory).
  std::vector<std::string> debug_dirs = {"/usr/lib/debug"};
  // Debug files from debuginfod servers when not on the host (null: off).
  std::shared_ptr<DebuginfodClient> debuginfod;
  const Clock* clock = &SystemClock::instance();
  // JIT code: names from /tmp/perf-PID.map for anonymous executable memory.
  bool perf_maps = true;
  PerfMapCache::Options perf_map;
  // Reload /proc/kallsyms at most this often when an address misses it.
  uint64_t kallsyms_reload_interval_ns = 10'000'000'000ull;
};

struct UserSymbol {
  // Where the address lies. `module` is empty when no mapping contains it.
  std::string module;          // path of the mapped file, or "[vdso]"
  uint64_t module_offset = 0;  // file offset of the address
  std::shared_ptr<const Binary> binary;  // null when the file could not be read
  std::string function;     // display name (demangled); empty if unknown
  std::string system_name;  // name as in the symbol table
  uint64_t function_offset = 0;
  bool via_exec_hint = false;  // placed from the exec event, not from maps
  bool jit = false;            // named by the process's perf map
  // With lines enabled and DWARF present: the source frames at this address,
  // innermost (inlined) first; the last one is `function`'s.
  std::vector<SourceFrame> frames;
};

struct KernelSymbolInfo {
  std::string function;
  std::string module;  // "" for the core kernel
  uint64_t offset = 0;
};

class Symbolizer {
 public:
  explicit Symbolizer(SymbolizerOptions opts);

  // Resolves `addr` in `proc`. For a return address the lookup uses addr-1,
  // the call instruction, so a call at the very end of a function is not
  // attributed to the next one.
  //
  // `memo`, when given, is the caller's slot for the binary of the mapping
  // that contains `addr`: filled on first use and read after, so later
  // addresses in that mapping skip opening the file to find its identity
  // (one openat per distinct frame was a tenth of the agent's CPU).
  struct BinaryMemo {
    bool known = false;
    std::shared_ptr<const Binary> binary;  // null: the file could not be read
  };
  UserSymbol resolve_user(const ProcessSnapshot& proc, uint64_t addr, bool return_address,
                          BinaryMemo* memo = nullptr);

  // The binary mapped at `m` in `proc`, or null if it cannot be read.
  std::shared_ptr<const Binary> binary_for(const ProcessSnapshot& proc, const MapEntry& m);

  std::optional<KernelSymbolInfo> resolve_kernel(uint64_t addr, uint64_t now_ns);

  // Whether the binary cache already knows this file (see ProcessTable).
  bool knows_file(uint64_t dev, uint64_t ino) const { return cache_.contains_inode(dev, ino); }

  BinaryCache::Stats cache_stats() const { return cache_.stats(); }
  PerfMapCache::Stats perf_map_stats() const { return perf_maps_.stats(); }
  // Null when debuginfod is off.
  const DebuginfodClient* debuginfod() const { return opts_.debuginfod.get(); }
  const SymbolizerOptions& options() const { return opts_; }

 private:
  std::shared_ptr<const Binary> exe_from_hint(const ProcessSnapshot& proc);
  std::shared_ptr<const Binary> vdso();
  void fill_function(const Binary& bin, uint64_t vaddr, UserSymbol* out);
  bool fill_jit(const ProcessSnapshot& proc, uint64_t addr, UserSymbol* out);
  Binary::LoadOptions load_options(const ProcessSnapshot& proc) const;

  SymbolizerOptions opts_;
  BinaryCache cache_;
  PerfMapCache perf_maps_;

  std::mutex kallsyms_mu_;
  std::shared_ptr<const Kallsyms> kallsyms_;
  uint64_t kallsyms_loaded_ns_ = 0;
  bool kallsyms_tried_ = false;

  std::once_flag vdso_once_;
  std::shared_ptr<const Binary> vdso_;
};

}  // namespace ember
