#include "agent/frames/origin.h"

#include "ember_abi.h"

namespace ember {

static_assert(origin::kNative == EMBER_ORIGIN_NATIVE && origin::kKernel == EMBER_ORIGIN_KERNEL &&
                  origin::kGo == EMBER_ORIGIN_GO && origin::kJit == EMBER_ORIGIN_JIT &&
                  origin::kFirstRuntime == EMBER_ORIGIN_FIRST_RUNTIME &&
                  origin::kMax == EMBER_ORIGIN_MAX,
              "origin ids must match enum ember_origin");
static_assert(kOriginShift == EMBER_ORIGIN_SHIFT && kOriginMask == EMBER_ORIGIN_MASK &&
              kSlotNotReturn == EMBER_FRAME_NOT_RETURN);
static_assert(origin::kMax - 1 <= kOriginMask);

FrameOrigins::FrameOrigins() {
  entries_[origin::kNative].name = "native";
  entries_[origin::kKernel].name = "kernel";
  entries_[origin::kGo].name = "go";
  entries_[origin::kJit].name = "jit";
}

Status FrameOrigins::add(OriginId id, std::string name, std::unique_ptr<FrameDecoder> decoder,
                         std::unique_ptr<FrameSymbolizer> symbolizer) {
  if (id >= origin::kMax) return Errorf("frame origin %u is out of range", unsigned(id));
  Entry& e = entries_[id];
  if ((decoder && e.decoder) || (symbolizer && e.symbolizer))
    return Errorf("frame origin %u (%s) is already registered", unsigned(id), e.name.c_str());
  if (!e.name.empty() && e.name != name)
    return Errorf("frame origin %u is '%s', not '%s'", unsigned(id), e.name.c_str(), name.c_str());
  e.name = std::move(name);
  if (decoder) e.decoder = std::move(decoder);
  if (symbolizer) e.symbolizer = std::move(symbolizer);
  return {};
}

std::string FrameOrigins::name(OriginId id) const {
  if (id < origin::kMax && !entries_[id].name.empty()) return entries_[id].name;
  return "origin_" + std::to_string(unsigned(id));
}

void FrameOrigins::end_interval() {
  for (auto& e : entries_)
    if (e.symbolizer) e.symbolizer->end_interval();
}

}  // namespace ember
