// Kallsyms: the kernel's text symbols from /proc/kallsyms, modules and BPF
// programs included, sorted for binary search. Immutable once loaded; the
// symbolizer swaps in a fresh instance when it sees addresses it cannot place
// (a module or BPF program loaded after startup).
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
  struct Sym {
    uint64_t start;
    uint32_t name;    // offset into pool_
    uint32_t module;  // offset into pool_, pointing at "" for the core kernel
  };
  std::vector<Sym> syms_;
  std::string pool_;
};

}  // namespace ember
