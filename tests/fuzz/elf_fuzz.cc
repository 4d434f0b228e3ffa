// ELF files from a workload: headers, symbol tables, MiniDebugInfo, DWARF
// (.debug_info, .debug_line, inlined calls), .gopclntab. Everything
// Binary::load() reads, then a lookup of every symbol's first address.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "symbolizer/binary.h"
#include "symbolizer/dwarf_info.h"
#include "symbolizer/elf_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // libelf reads the image in place; give it memory it may keep.
  std::vector<char> image(data, data + size);
  auto elf = ember::ElfFile::from_memory(image.data(), image.size(), "fuzz");
  if (!elf.ok()) return 0;
  ember::Binary::LoadOptions opts;
  opts.dwarf = true;
  opts.minidebuginfo = true;
  opts.debug.root = "/nonexistent-ember-fuzz-root";  // never a file on this machine
  opts.debug.debug_dirs = {};
  opts.frame_cache_addresses = 64;
  auto bin = ember::Binary::load(std::move(*elf), opts);
  if (!bin.ok()) return 0;
  std::vector<ember::SourceFrame> frames;
  size_t n = 0;
  for (const auto& sym : (*bin)->symbols()) {
    if (++n > 256) break;
    frames.clear();
    (*bin)->describe(sym.start, true, true, &frames);
    frames.clear();
    (*bin)->describe(sym.start + 1, true, false, &frames);
  }
  for (const auto& seg : (*bin)->segments()) {
    (void)(*bin)->file_offset_to_vaddr(seg.offset);
    frames.clear();
    (*bin)->describe(seg.vaddr, true, true, &frames);
  }
  return 0;
}
