#include "agent/export/pyroscope.h"

#include <sys/random.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "agent/export/pprof.h"
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

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// Reads a JSON string starting at s[i] == '"'; returns false if malformed.
bool json_string(const std::string& s, size_t& i, std::string* out) {
  if (i >= s.size() || s[i] != '"') return false;
  ++i;
  while (i < s.size()) {
    char c = s[i++];
    if (c == '"') return true;
    if (c != '\\') {
      *out += c;
      continue;
    }
    if (i >= s.size()) return false;
    char e = s[i++];
    switch (e) {
      case 'n': *out += '\n'; break;
      case 't': *out += '\t'; break;
      case 'r': *out += '\r'; break;
      case 'b': *out += '\b'; break;
      case 'f': *out += '\f'; break;
      case 'u': {
        if (i + 4 > s.size()) return false;
        uint32_t cp = uint32_t(std::strtoul(s.substr(i, 4).c_str(), nullptr, 16));
        i += 4;
        append_utf8(*out, cp);
        break;
      }
      default: *out += e;
    }
  }
  return false;
}

// The value of a top-level string field of a small JSON object.
bool json_field(const std::string& body, const std::string& key, std::string* out) {
  std::string quoted = "\"" + key + "\"";
  size_t pos = 0;
  while ((pos = body.find(quoted, pos)) != std::string::npos) {
    size_t i = pos + quoted.size();
    while (i < body.size() && (body[i] == ' ' || body[i] == '\n' || body[i] == '\t')) ++i;
    if (i < body.size() && body[i] == ':') {
      ++i;
      while (i < body.size() && (body[i] == ' ' || body[i] == '\n' || body[i] == '\t')) ++i;
      out->clear();
      return json_string(body, i, out);
    }
    pos += quoted.size();
  }
  return false;
}

}  // namespace

size_t EncodedProfile::bytes() const {
  size_t n = sizeof(*this) + pprof_gz.size() + id.size() + service_name.size();
  for (const auto& [k, v] : labels) n += k.size() + v.size() + 2 * sizeof(std::string);
  return n;
}

Labels upload_labels(const LabelSet* labels) {
  Labels out;
  out.emplace_back("__name__", kPyroscopeProfileName);
  bool have_service = false;
  if (labels) {
    for (const auto& [k, v] : labels->labels()) {
      if (k.rfind("__", 0) == 0) continue;  // internal (target discovery) labels
      std::string name = push_label_name(k);
      if (name == "service_name") have_service = true;
      out.emplace_back(std::move(name), valid_utf8(v));
    }
  }
  if (!have_service) out.emplace_back("service_name", "unspecified");
  // Sorted by name; the first of two names that sanitize alike wins.
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const auto& a, const auto& b) { return a.first == b.first; }),
            out.end());
  return out;
}

EncodedProfileRef encode_for_upload(const Profile& profile) {
  auto e = std::make_shared<EncodedProfile>();
  e->labels = upload_labels(profile.labels.get());
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
  e->pprof_gz = encode_pprof_gz(profile, opts);
  e->id = uuid_v4();
  return e;
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
  std::string out = app + ".cpu{";
  bool first = true;
  Labels inner;
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
  return "name=" + percent_encode(ingest_name(p)) + "&from=" + std::to_string(from) +
         "&until=" + std::to_string(until) + "&format=pprof" +
         "&sampleRate=" + std::to_string(p.frequency_hz) + "&spyName=ember" +
         "&units=samples&aggregationType=sum";
}

std::string percent_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if (is_alpha(char(c)) || is_digit(char(c)) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t j = 1; ok && j < len; ++j) {
      unsigned char cc = static_cast<unsigned char>(s[i + j]);
      if ((cc >> 6) != 2) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and out-of-range code points are invalid.
    if (ok && ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
               (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF))
      ok = false;
    if (ok) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
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
  std::string msg;
  std::string code;
  if (!json_field(body, "message", &msg)) msg = body;
  if (json_field(body, "code", &code) && !code.empty()) msg = code + ": " + msg;
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
