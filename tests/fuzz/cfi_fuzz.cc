// A raw .eh_frame or .debug_frame section (the first byte picks which).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/unwind/cfi.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  auto kind = (data[0] & 1) ? ember::unwind::CfiSection::kDebugFrame : ember::unwind::CfiSection::kEhFrame;
  std::string_view section(reinterpret_cast<const char*>(data + 1), size - 1);
  ember::unwind::CfiStats stats;
  size_t rows = 0;
  (void)ember::unwind::parse_cfi(section, 0x1000, kind, [&](const ember::unwind::CfiRow&) { ++rows; },
                                 &stats);
  return 0;
}
