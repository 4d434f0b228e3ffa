// What a sample measured: the event kinds Ember profiles, and everything an
// encoder needs to know about one (pprof sample and period types, the
// Pyroscope profile name, file names, metric labels).
//
// BPF writes the kind and the measured value into every sample record
// (ember_sample.event, .value); the kind travels in SampleMeta through every
// stage, the aggregator keeps one series per (labels, kind), and every encoder
// asks event_type() for names and units. Nothing after the sampler knows what
// "CPU" means; a new kind is one row in the table in event.cc plus its BPF
// program.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ember {

// Values match enum ember_event in bpf/ember_abi.h (static_asserted in the
// record decoder).
enum class EventKind : uint8_t {
  kCpu = 0,     // on-CPU, sampled by a timer: each sample stands for one period
  kOffCpu = 1,  // time a thread spent switched out, measured per interval
  kWall = 2,    // per thread, on-CPU and off-CPU time together
};
inline constexpr size_t kEventKinds = 3;

struct EventType {
  EventKind kind;
  // Short name: the pprof sample type, file-name part and metric label
  // ("cpu", "off_cpu", "wall").
  std::string_view name;
  std::string_view unit;  // of `value`: "nanoseconds"
  // Pyroscope's __name__ for series of this kind.
  std::string_view profile_name;
  // Legacy /ingest: the suffix after the application name and `units=`.
  std::string_view ingest_suffix;
  std::string_view ingest_units;
  // True when samples come from a sampling timer: each stands for one period
  // of `unit`, and a count of samples is meaningful next to the value (pprof
  // gets samples/count too). False when each value is measured (off-CPU
  // intervals): only the value is.
  bool periodic;
  // Shown as the flame graph's title.
  std::string_view title;
};

const EventType& event_type(EventKind kind);
// The kind for a ring record's event byte, or nullopt for an unknown one.
std::optional<EventKind> event_kind_from_u8(uint8_t v);
// The kind named `name` ("cpu", "off-cpu"/"off_cpu", "wall"), for options.
std::optional<EventKind> event_kind_from_name(std::string_view name);

}  // namespace ember
