// Every way Ember loses or degrades data, in one table ("drops are data"):
// each reason is counted under one metric with one `reason` label, and
// README's self-metrics section lists the same names. Call sites ask for the
// counter of a Drop; none spells a metric or reason string of its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/metrics.h"

namespace ember {

enum class Drop : uint8_t {
  // Samples lost whole (ember_samples_lost_total).
  kSampleRingBufferFull,   // BPF found no room in the ring buffer
  kSamplePipelineQueueFull,  // the pipeline thread fell behind the drain thread
  kSampleTooManyStacks,    // the interval's distinct-stack bound was reached
  kSampleExportQueueFull,  // a sink (disk, encoder) fell behind by whole intervals
  kSampleEncodeFailed,     // protobuf or zlib failed (out of memory)
  kSampleWaitNeverEnded,   // a run-queue wait's sample whose end (its value) never came
  // Exec and exit events lost (ember_events_lost_total).
  kEventRingBufferFull,
  // Frames shown as a placeholder, not a name (ember_frames_unresolved_total).
  kFrameNoMapping,         // the address is in no known mapping: [unknown]
  kFrameBinaryUnreadable,  // its file could not be opened or parsed: module+0x...
  kFrameNoSymbol,          // no symbol covers it: module+0x...
  kFrameKernel,            // not in kallsyms: [unknown]
  kFrameNoOriginHandler,   // an origin with no symbolizer: [<origin>]
  // Profiles a server never got (ember_upload_profiles_dropped_total and
  // ember_upload_samples_dropped_total, with a server label).
  kUploadQueueFull,
  kUploadRejected,
  kUploadShutdown,
  // Unwind tables not published to BPF (ember_unwind_load_failures_total).
  kTableMapsFull,
  kTableMapWrite,
  kTableNoTable,
  kTableTooManyMappings,
};
inline constexpr size_t kDropCount = size_t(Drop::kTableTooManyMappings) + 1;

struct DropInfo {
  const char* metric;  // e.g. "ember_samples_lost_total"
  const char* reason;  // the reason label's value, e.g. "ring_buffer_full"
  const char* help;    // the metric's HELP text
};
const DropInfo& drop_info(Drop d);

// The counter of `d`, with `extra_labels` (preformatted, e.g.
// server="http://p:4040") before the reason.
Counter& drop_counter(Metrics& metrics, Drop d, const std::string& extra_labels = "");
// For uploads, the samples counterpart of a profile drop
// (ember_upload_samples_dropped_total).
Counter& upload_samples_drop_counter(Metrics& metrics, Drop d, const std::string& extra_labels);
// The label list drop_counter() uses, e.g. `reason="queue_full"`.
std::string drop_labels(Drop d, const std::string& extra_labels = "");

}  // namespace ember
