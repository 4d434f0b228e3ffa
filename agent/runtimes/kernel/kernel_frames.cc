#include "agent/runtimes/kernel/kernel_frames.h"
#include "common/drops.h"

namespace ember {

KernelFrameSymbolizer::KernelFrameSymbolizer(Symbolizer& symbolizer, Metrics& metrics)
    : symbolizer_(symbolizer),
      unresolved_(drop_counter(metrics, Drop::kFrameKernel)) {
  auto km = std::make_shared<Mapping>();
  km->file = "[kernel.kallsyms]";
  km->kernel = true;
  km->start = 0xffff800000000000ull;
  km->limit = ~0ull;
  mapping_ = std::move(km);
}

FrameSymbolizer::Symbolized KernelFrameSymbolizer::symbolize(
    const StackFrame& f, const std::shared_ptr<const ProcessSnapshot>&, uint64_t now_ns) {
  uint64_t lookup = f.return_address ? f.address - 1 : f.address;
  auto ks = symbolizer_.resolve_kernel(lookup, now_ns);
  auto loc = std::make_shared<Location>();
  loc->address = f.address;
  loc->origin = origin::kKernel;
  loc->mapping = mapping_;
  Line line;
  if (ks) {
    line.function = ks->module.empty() ? ks->function : ks->function + " [" + ks->module + "]";
    line.system_name = ks->function;
    line.offset = ks->offset + (f.return_address ? 1 : 0);
    loc->resolved = true;
  } else {
    line.function = "[unknown]";
    unresolved_.add();
  }
  loc->lines.push_back(std::move(line));
  Symbolized out;
  out.location = std::move(loc);
  return out;
}

}  // namespace ember
