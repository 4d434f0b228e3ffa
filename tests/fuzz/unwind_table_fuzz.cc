// The unwind-table builder on a workload's ELF file: .eh_frame,
// .debug_frame, .gopclntab SP deltas, PLT fallbacks, then the built
// table's lookups.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "agent/unwind/unwind_table.h"
#include "symbolizer/elf_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<char> image(data, data + size);
  auto elf = ember::ElfFile::from_memory(image.data(), image.size(), "fuzz");
  if (!elf.ok()) return 0;
  ember::DebugSearch none;
  none.root = "/nonexistent-ember-fuzz-root";
  none.debug_dirs = {};
  auto table = ember::unwind::build_unwind_table(**elf, none);
  if (!table.ok()) return 0;
  (void)(*table)->rows();
  return 0;
}
