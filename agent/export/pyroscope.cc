#include "agent/export/pyroscope.h"

#include <sys/random.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "agent/export/pprof.h"
#include "common/url.h"
#include "push.pb.h"

namespace ember {
namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Prometheus-style label names, which Grafana Pyroscope validates.
std::string push_label_name(const std::string& name) {
  std::string out = name;
  for (char& c : out)
    if (!is_alpha(c) && !is_digit(c) && c != '_') c = '_';
  if (out.empty() || is_digit(out[0])) out.insert(out.begin(), '_');
  return out;
}

std::string replace_not_allowed(std::string s, bool (*allowed)(char)) {
  for (char& c : s)
    if (!allowed(c)) c = '_';
  return s;
}

bool app_name_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '_' || c == '.' || c == '/' || c == '-';
}
bool ingest_label_char(char c) { return is_alpha(c) || is_digit(c) || c == '_' || c == '.'; }

std::string trim(std::string s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  while (!s.empty() && space(s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && space(s[i])) ++i;
  return s.substr(i);
}

}  // namespace

size_t EncodedProfile::bytes() const {
  size_t n = sizeof(*this) + pprof_gz.size() + otlp_request_gz.size() + id.size() + service_name.size();
  for (const auto& [k, v] : labels) n += k.size() + v.size() + 2 * sizeof(std::string);
  return n;
}

Labels upload_labels(const LabelSet* labels, EventKind event) {
  Labels out;
  out.emplace("__name__", std::string(event_type(event).profile_name));
  if (labels) {
    // In name order; the first of two names that sanitize alike wins.
    for (const auto& [k, v] : labels->labels()) {
      if (k.rfind("__", 0) == 0) continue;  // internal (target discovery) labels
      out.emplace(push_label_name(k), valid_utf8(v));
    }
  }
  out.emplace("service_name", "unspecified");  // only if no label gave one
  return out;
}

Result<EncodedProfileRef> encode_for_upload(const Profile& profile) {
  auto e = std::make_shared<EncodedProfile>();
  e->event = profile.event;
  e->labels = upload_labels(profile.labels.get(), profile.event);
  for (const auto& [k, v] : e->labels)
    if (k == "service_name") e->service_name = v;
  e->start_time_ns = profile.start_time_ns;
  e->end_time_ns = profile.end_time_ns;
  e->frequency_hz = profile.frequency_hz;
  e->samples = profile.total_count();
  // No per-sample pid/thread labels: Pyroscope turns pprof sample labels
  // into series labels, and a series per thread would explode cardinality.
  PprofOptions opts;
  opts.sample_labels = false;
  auto gz = encode_pprof_gz(profile, opts);
  if (!gz.ok()) return gz.error();
  e->pprof_gz = std::move(*gz);
  e->id = uuid_v4();
  return EncodedProfileRef(std::move(e));
}

std::string push_request_body(const std::vector<EncodedProfileRef>& profiles) {
  push::v1::PushRequest req;
  for (const auto& p : profiles) {
    auto* series = req.add_series();
    for (const auto& [k, v] : p->labels) {
      auto* l = series->add_labels();
      l->set_name(k);
      l->set_value(v);
    }
    auto* sample = series->add_samples();
    sample->set_raw_profile(p->pprof_gz);
    sample->set_id(p->id);
  }
  std::string out;
  req.SerializeToString(&out);
  return out;
}

std::string ingest_name(const EncodedProfile& p) {
  std::string app = replace_not_allowed(p.service_name.empty() ? "unspecified" : p.service_name,
                                        app_name_char);
  std::string out = app + "." + std::string(event_type(p.event).ingest_suffix) + "{";
  bool first = true;
  std::vector<std::pair<std::string, std::string>> inner;
  for (const auto& [k, v] : p.labels) {
    if (k == "__name__" || k == "service_name") continue;
    std::string value = trim(v);
    for (char& c : value)
      if (c == ',' || c == '}') c = '_';
    if (value.empty()) continue;
    inner.emplace_back(replace_not_allowed(k, ingest_label_char), std::move(value));
  }
  std::sort(inner.begin(), inner.end());
  for (const auto& [k, v] : inner) {
    if (!first) out += ',';
    first = false;
    out += k + "=" + v;
  }
  return out + "}";
}

std::pair<int64_t, int64_t> ingest_time_range(const EncodedProfile& p) {
  int64_t from = int64_t((p.start_time_ns + 500'000'000) / 1'000'000'000);
  int64_t until = int64_t((p.end_time_ns + 500'000'000) / 1'000'000'000);
  if (until <= from) until = from + 1;
  return {from, until};
}

std::string ingest_query(const EncodedProfile& p) {
  auto [from, until] = ingest_time_range(p);
  // A measured event (off-CPU) has no sampling rate to state.
  std::string rate = p.frequency_hz > 0 ? "&sampleRate=" + std::to_string(p.frequency_hz) : "";
  return "name=" + url_escape(ingest_name(p)) + "&from=" + std::to_string(from) +
         "&until=" + std::to_string(until) + "&format=pprof" + rate + "&spyName=ember" +
         "&units=" + std::string(event_type(p.event).ingest_units) + "&aggregationType=sum";
}

std::string uuid_v4() {
  uint8_t b[16];
  size_t got = 0;
  while (got < sizeof(b)) {
    ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
    if (n <= 0) break;
    got += size_t(n);
  }
  if (got < sizeof(b)) {
    // getrandom cannot fail on Linux >= 3.17 once the pool is ready; if it
    // ever does, a per-thread PRNG still gives unique ids in practice.
    thread_local std::mt19937_64 rng{std::random_device{}()};
    for (auto& x : b) x = uint8_t(rng());
  }
  b[6] = uint8_t((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = uint8_t((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  char out[37];
  std::snprintf(out, sizeof(out),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

UploadOutcome classify_status(int status) {
  if (status >= 200 && status < 300) return UploadOutcome::kSent;
  if (status == 408 || status == 429 || status >= 500) return UploadOutcome::kRetry;
  return UploadOutcome::kReject;
}

std::string server_message(const std::string& body) {
  // A Connect error is {"code": "...", "message": "..."}; anything else
  // (a proxy's HTML page, plain text) is shown as it came.
  std::string msg = body;
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_object()) {
    auto field = [&](const char* key) -> std::string {
      auto it = json.find(key);
      return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    std::string message = field("message");
    std::string code = field("code");
    if (!message.empty() || !code.empty()) msg = code.empty() ? message : code + ": " + message;
  }
  std::string out;
  for (char c : msg) {
    if (out.size() >= 300) {
      out += "...";
      break;
    }
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r' || c == '\t') out += ' ';
    else if (u >= 0x20 && u != 0x7f) out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return valid_utf8(out);
}

Duration backoff_delay(Duration min, Duration max, int attempt, double random01) {
  double base = double(min.count()) * std::pow(2.0, std::min(attempt, 40));
  base = std::min(base, double(max.count()));
  double d = base / 2 + random01 * base / 2;
  return Duration(int64_t(std::max(d, double(min.count()) / 2)));
}

}  // namespace ember
