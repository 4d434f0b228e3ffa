#include "agent/model/event.h"

#include <array>

namespace ember {
namespace {

// One row per EventKind, in enum order. Pyroscope names: process_cpu is what
// its own eBPF agents and Go SDKs use for CPU; off_cpu and wall are the names
// its UI shows for async-profiler's off-CPU and wall-clock profiles.
constexpr std::array<EventType, kEventKinds> kTypes = {{
    {EventKind::kCpu, "cpu", "nanoseconds", "process_cpu", "cpu", "samples", true,
     "Ember CPU profile"},
    {EventKind::kOffCpu, "off_cpu", "nanoseconds", "off_cpu", "off_cpu", "nanoseconds", false,
     "Ember off-CPU profile"},
    {EventKind::kWall, "wall", "nanoseconds", "wall", "wall", "nanoseconds", false,
     "Ember wall-clock profile"},
}};

constexpr bool table_in_enum_order() {
  for (size_t i = 0; i < kTypes.size(); ++i)
    if (size_t(kTypes[i].kind) != i) return false;
  return true;
}
static_assert(table_in_enum_order(), "kTypes rows must follow EventKind's order");

}  // namespace

const EventType& event_type(EventKind kind) {
  size_t i = size_t(kind);
  return kTypes[i < kTypes.size() ? i : 0];
}

std::optional<EventKind> event_kind_from_u8(uint8_t v) {
  if (v >= kEventKinds) return std::nullopt;
  return EventKind(v);
}

std::optional<EventKind> event_kind_from_name(std::string_view name) {
  for (const auto& t : kTypes) {
    if (name == t.name) return t.kind;
  }
  if (name == "off-cpu") return EventKind::kOffCpu;
  return std::nullopt;
}

}  // namespace ember
