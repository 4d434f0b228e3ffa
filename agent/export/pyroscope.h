// The wire side of shipping profiles to Pyroscope, as pure functions so the
// protocol is unit-tested byte for byte:
//
//  - push (Grafana Pyroscope): POST /push.v1.PusherService/Push, Connect
//    unary protocol, binary protobuf PushRequest: one series per profile,
//    each with its labels and one RawSample (gzip pprof + UUID).
//  - ingest (legacy, accepted by Pyroscope OSS, Cloud and Grafana
//    Pyroscope): POST /ingest?name=<app>.<event>{k=v,...}&from&until
//    &format=pprof&sampleRate&spyName=ember&units=<event's>&aggregationType=sum,
//    gzip pprof as the body.
//
// A profile is encoded once (EncodedProfile, immutable, shared) and the same
// bytes go to every server and every retry.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/model/types.h"
#include "common/duration.h"
#include "common/labels.h"
#include "common/utf8.h"
#include "common/result.h"

namespace ember {


struct EncodedProfile {
  EventKind event = EventKind::kCpu;
  Labels labels;  // as pushed: __name__, service_name and the rest, sorted by name
  std::string service_name;
  uint64_t start_time_ns = 0;  // wall clock
  uint64_t end_time_ns = 0;
  int frequency_hz = 0;
  uint64_t samples = 0;  // total sample count, for drop accounting
  std::string pprof_gz;
  // For `api: otlp`: a whole interval's profiles as one gzip-compressed
  // ExportProfilesServiceRequest (labels, service_name and pprof_gz empty).
  std::string otlp_request_gz;
  std::string id;  // UUID; retries and every server reuse it

  // What the profile costs to keep queued (payload and labels).
  size_t bytes() const;
};
using EncodedProfileRef = std::shared_ptr<const EncodedProfile>;

// Encodes one interval's profile of one series for upload.
Result<EncodedProfileRef> encode_for_upload(const Profile& profile);

// The labels a series is pushed with: every label of the set except names
// starting with "__", names made valid ([a-zA-Z_][a-zA-Z0-9_]*), values made
// valid UTF-8, plus __name__ from the event (process_cpu for CPU);
// service_name defaults to "unspecified" (as Pyroscope does). Sorted by name,
// names unique.
Labels upload_labels(const LabelSet* labels, EventKind event = EventKind::kCpu);

// --- push ---------------------------------------------------------------------
inline constexpr const char* kPushPath = "/push.v1.PusherService/Push";
// Serialized push.v1.PushRequest with one series per profile.
std::string push_request_body(const std::vector<EncodedProfileRef>& profiles);

// --- ingest -------------------------------------------------------------------
inline constexpr const char* kIngestPath = "/ingest";
// The name= value before URL encoding: "<service>.<event>{k=v,...}" (".cpu"
// for CPU). The
// legacy parser has no escape sequences: it splits label pairs at ',' and
// '}' and trims spaces, and allows only [a-zA-Z0-9_./-] in the application
// name and [a-zA-Z0-9_.] in label names. So those characters are replaced
// by '_' and values trimmed; service_name is the application name and not
// repeated inside the braces; empty values are left out.
std::string ingest_name(const EncodedProfile& p);
// The whole query string (after '?'), every value percent-encoded.
std::string ingest_query(const EncodedProfile& p);
// from/until: Unix seconds, rounded to the nearest second so consecutive
// intervals share their boundary; until is at least from + 1.
std::pair<int64_t, int64_t> ingest_time_range(const EncodedProfile& p);

// --- helpers ------------------------------------------------------------------
std::string uuid_v4();

// What to do after an HTTP answer: 2xx sent; 408, 429 and 5xx retried;
// any other status rejected (no retry can fix it).
enum class UploadOutcome { kSent, kRetry, kReject };
UploadOutcome classify_status(int status);

// The server's explanation, for logs: the "message" of a Connect error
// ({"code":"...","message":"..."}), else the body's text; one line of
// printable characters, at most 300 bytes.
std::string server_message(const std::string& body);

// Exponential backoff with jitter: min * 2^attempt, capped at max, then a
// random point in its upper half (so many agents do not retry in step).
// `random01` is in [0, 1).
Duration backoff_delay(Duration min, Duration max, int attempt, double random01);

}  // namespace ember
