// Kallsyms: the kernel's text symbols from /proc/kallsyms, modules and BPF
// programs included, sorted for binary search. Immutable once loaded; the
// symbolizer swaps in a fresh instance when it sees addresses it cannot place
// (a module or BPF program loaded after startup).
//
// Memory: the file is parsed as it is read, 64 KiB at a time, and names go
// into fixed 64 KiB blocks that are never reallocated. On this machine's
// 6.18 kernel (121,867 lines, 5.4 MB of text) reading the whole file into a
// string and appending names to one growing pool held 16.4 MiB at the
// agent's peak (heaptrack); streamed into blocks, with the names of Linux
// 6.2+'s __pfx_ padding symbols shared (kallsyms.cc), it holds 3.8 MiB.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ember {

struct KernelSymbol {
  std::string_view name;
  std::string_view module;  // "" for the core kernel, e.g. "nf_tables", "bpf"
  uint64_t start = 0;
  uint64_t offset = 0;  // of the looked-up address from start
};

class Kallsyms {
 public:
  static Result<std::shared_ptr<const Kallsyms>> load(const std::string& proc_root);
  static Result<std::shared_ptr<const Kallsyms>> parse(std::string_view text);

  std::optional<KernelSymbol> lookup(uint64_t addr) const;
  size_t size() const { return syms_.size(); }
  // False when every address reads as zero (kptr_restrict without privilege).
  bool addresses_visible() const { return !syms_.empty(); }

 private:
  class Parser;
  static constexpr uint32_t kBlockBits = 16;  // 64 KiB name blocks
  struct Sym {
    uint64_t start;
    uint32_t name;    // (block << kBlockBits) | offset of a NUL-terminated name
    uint32_t module;  // the same, or 0: the empty name of the core kernel
  };
  std::string_view str(uint32_t ref) const;

  std::vector<Sym> syms_;
  std::vector<std::unique_ptr<char[]>> blocks_;
};

}  // namespace ember
