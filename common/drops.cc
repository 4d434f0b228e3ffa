#include "common/drops.h"

#include <array>
#include <utility>

namespace ember {
namespace {

constexpr const char* kSamplesLost = "ember_samples_lost_total";
constexpr const char* kSamplesLostHelp = "Samples lost, by reason";
constexpr const char* kFrames = "ember_frames_unresolved_total";
constexpr const char* kFramesHelp = "Frames shown as module+offset or [unknown], by reason";
constexpr const char* kUpload = "ember_upload_profiles_dropped_total";
constexpr const char* kUploadHelp = "Profiles never delivered, by reason";
constexpr const char* kTables = "ember_unwind_load_failures_total";
constexpr const char* kTablesHelp = "Binaries or processes not published to BPF, by reason";

// In Drop's order (checked below).
constexpr std::array<std::pair<Drop, DropInfo>, kDropCount> kTable = {{
    {Drop::kSampleRingBufferFull, {kSamplesLost, "ring_buffer_full", kSamplesLostHelp}},
    {Drop::kSamplePipelineQueueFull, {kSamplesLost, "pipeline_queue_full", kSamplesLostHelp}},
    {Drop::kSampleTooManyStacks, {kSamplesLost, "too_many_stacks", kSamplesLostHelp}},
    {Drop::kSampleExportQueueFull, {kSamplesLost, "export_queue_full", kSamplesLostHelp}},
    {Drop::kSampleEncodeFailed, {kSamplesLost, "encode_failed", kSamplesLostHelp}},
    {Drop::kSampleWaitNeverEnded, {kSamplesLost, "wait_never_ended", kSamplesLostHelp}},
    {Drop::kEventRingBufferFull,
     {"ember_events_lost_total", "ring_buffer_full", "Exec and exit events lost, by reason"}},
    {Drop::kFrameNoMapping, {kFrames, "no_mapping", kFramesHelp}},
    {Drop::kFrameBinaryUnreadable, {kFrames, "binary_unreadable", kFramesHelp}},
    {Drop::kFrameNoSymbol, {kFrames, "no_symbol", kFramesHelp}},
    {Drop::kFrameKernel, {kFrames, "kernel", kFramesHelp}},
    {Drop::kFrameNoOriginHandler, {kFrames, "no_origin_handler", kFramesHelp}},
    {Drop::kUploadQueueFull, {kUpload, "queue_full", kUploadHelp}},
    {Drop::kUploadRejected, {kUpload, "rejected", kUploadHelp}},
    {Drop::kUploadShutdown, {kUpload, "shutdown", kUploadHelp}},
    {Drop::kTableMapsFull, {kTables, "maps_full", kTablesHelp}},
    {Drop::kTableMapWrite, {kTables, "map_write", kTablesHelp}},
    {Drop::kTableNoTable, {kTables, "no_table", kTablesHelp}},
    {Drop::kTableTooManyMappings, {kTables, "too_many_mappings", kTablesHelp}},
}};

constexpr bool in_order() {
  for (size_t i = 0; i < kTable.size(); ++i)
    if (size_t(kTable[i].first) != i) return false;
  return true;
}
static_assert(in_order(), "kTable rows must follow Drop's order");

}  // namespace

const DropInfo& drop_info(Drop d) { return kTable[size_t(d) < kDropCount ? size_t(d) : 0].second; }

std::string drop_labels(Drop d, const std::string& extra_labels) {
  std::string reason = std::string("reason=\"") + drop_info(d).reason + "\"";
  return extra_labels.empty() ? reason : extra_labels + "," + reason;
}

Counter& drop_counter(Metrics& metrics, Drop d, const std::string& extra_labels) {
  const DropInfo& info = drop_info(d);
  return metrics.counter(info.metric, drop_labels(d, extra_labels), info.help);
}

Counter& upload_samples_drop_counter(Metrics& metrics, Drop d, const std::string& extra_labels) {
  return metrics.counter("ember_upload_samples_dropped_total", drop_labels(d, extra_labels),
                         "Samples in profiles never delivered, by reason");
}

}  // namespace ember
