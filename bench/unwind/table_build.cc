// Times building unwind tables (cold, from the ELF each time) for a list of
// binaries, and prints rows, rules and the BPF bytes per row they would use.
// Usage: ember_bench_tables FILE...
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "agent/unwind/unwind_table.h"
#include "ember_abi.h"

using namespace ember;

int main(int argc, char** argv) {
  std::printf("%-52s %9s %8s %7s %7s %10s %9s\n", "binary", "build_ms", "rows", "rules", "fdes",
              "unsupported", "B/row");
  for (int i = 1; i < argc; ++i) {
    std::vector<double> ms;
    std::shared_ptr<const unwind::UnwindTable> t;
    for (int rep = 0; rep < 7; ++rep) {
      auto start = std::chrono::steady_clock::now();
      auto elf = ElfFile::open(argv[i]);
      if (!elf) {
        std::fprintf(stderr, "%s\n", elf.error().message.c_str());
        break;
      }
      auto built = unwind::build_unwind_table(**elf);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      if (built) t = *built;
    }
    if (!t) continue;
    std::sort(ms.begin(), ms.end());
    // Kernel bytes: 4 per row, 8 per 64 KiB of text in the index, rules shared.
    uint64_t pages = t->rows().empty() ? 0 : (t->pc(t->rows().back()) >> 16) - (t->pc(t->rows().front()) >> 16) + 1;
    double per_row = t->rows().empty() ? 0
                                       : double(t->rows().size() * sizeof(ember_unwind_row) +
                                                pages * sizeof(ember_text_page)) /
                                             double(t->rows().size());
    std::printf("%-52s %9.2f %8zu %7zu %7zu %10zu %9.2f\n", argv[i], ms[ms.size() / 2],
                t->rows().size(), t->rules().size(), t->stats().fdes, t->stats().unsupported_rows,
                per_row);
  }
  return 0;
}
