#include "agent/runtimes/register.h"

#include "agent/runtimes/kernel/kernel_frames.h"
#include "agent/runtimes/native/native_frames.h"
#include <cstdlib>

#include "common/log.h"

namespace ember {
namespace {

// Built-in ids are distinct by construction; a clash is a programming error
// caught by the first test that builds the registry.
void must(Status st) {
  if (!st) {
    EMBER_ERROR("frame origin registry: %s", st.error().message.c_str());
    std::abort();
  }
}

}  // namespace

FrameOrigins make_origins(const OriginDeps& deps) {
  FrameOrigins o;
  Symbolizer* sym = deps.symbolizer;
  must(o.add(origin::kNative, "native", std::make_unique<NativeFrameDecoder>(),
             sym ? std::make_unique<NativeFrameSymbolizer>(*sym, deps.metrics) : nullptr));
  must(o.add(origin::kKernel, "kernel", nullptr,
             sym ? std::make_unique<KernelFrameSymbolizer>(*sym, deps.metrics) : nullptr));
  // Go and JIT frames are native frames the native symbolizer names; they
  // have no handlers of their own.
  return o;
}

}  // namespace ember
