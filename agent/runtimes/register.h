// The one place frame origins get their handlers (see agent/frames/origin.h).
// A new runtime adds one line to make_origins(), nothing elsewhere.
#pragma once

#include "agent/frames/origin.h"
#include "common/metrics.h"
#include "symbolizer/symbolizer.h"

namespace ember {

struct OriginDeps {
  Metrics& metrics;
  // Null: decoders only, for unwind-only uses (tests).
  Symbolizer* symbolizer = nullptr;
};

// Every built-in origin with its handlers. Callers (tests) may add more.
FrameOrigins make_origins(const OriginDeps& deps);

}  // namespace ember
