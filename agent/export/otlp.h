// OTLP profiles encoding: one interval's profiles as one
// ExportProfilesServiceRequest (profiles v1development of opentelemetry-proto
// v1.10.0, what Grafana Pyroscope accepts at POST /v1development/profiles,
// Content-Type application/x-protobuf), as a pure function so the wire
// format is unit-tested.
//
//  - One ResourceProfiles per series. Its labels become resource attributes
//    under their OpenTelemetry semantic-convention names where one exists
//    (otlp_attribute_name()), every other label under its own name; labels
//    starting with "__" are internal and left out.
//  - One ScopeProfiles (scope "ember") per resource, one Profile per event.
//  - CPU: sample type samples/count, period type cpu/nanoseconds, period
//    1e9/frequency, one value (the sample count) per sample: what the
//    OpenTelemetry eBPF profiler sends, and what Pyroscope files as
//    process_cpu. A measured event (off-CPU, wall): sample type
//    <event>/nanoseconds, the same period type, period 0, one value (the
//    nanoseconds) per sample.
//  - Sample attributes process.pid and thread.name; a location attribute
//    profile.frame.type (kernel, native, go, jit); a mapping attribute
//    process.executable.build_id.gnu when the build-id is known.
//  - One dictionary for the whole request, every table starting with its
//    empty entry, nothing in it twice.
#pragma once

#include <string>
#include <vector>

#include "agent/export/pyroscope.h"
#include "agent/model/types.h"
#include "common/result.h"

namespace ember {

inline constexpr const char* kOtlpProfilesPath = "/v1development/profiles";

struct OtlpOptions {
  std::string scope_version;  // the agent's version, on the instrumentation scope
};

// The serialized request (not compressed). Fails only if protobuf does.
Result<std::string> encode_otlp_request(const std::vector<const Profile*>& profiles,
                                        const OtlpOptions& opts = {});

// One interval as one upload item for `api: otlp` servers: the request,
// gzip-compressed, in otlp_request_gz, with the interval's bounds and total
// sample count for accounting. Null when the batch has no samples.
Result<EncodedProfileRef> encode_otlp_for_upload(const ProfileBatch& batch,
                                                 const OtlpOptions& opts = {});

// The attribute name a series label is sent under: service_name ->
// service.name, namespace -> k8s.namespace.name, pod -> k8s.pod.name,
// container -> k8s.container.name, node -> k8s.node.name, container_id ->
// container.id, pid -> process.pid, exe -> process.executable.name; any
// other label keeps its name.
std::string otlp_attribute_name(const std::string& label);

}  // namespace ember
