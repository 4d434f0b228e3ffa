#include "agent/export/upload_exporter.h"
#include "common/thread_name.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <random>

#include "agent/export/otlp.h"
#include "common/drops.h"
#include "common/log.h"

namespace ember {
namespace {

int64_t steady_ns(SteadyTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
SteadyTime steady_now() { return std::chrono::steady_clock::now(); }

double random01() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

std::string seconds_text(Duration d) {
  char buf[32];
  if (d < std::chrono::seconds(1))
    std::snprintf(buf, sizeof(buf), "%lldms", (long long)(d.count() / 1'000'000));
  else
    std::snprintf(buf, sizeof(buf), "%.1fs", double(d.count()) / 1e9);
  return buf;
}

// A server that asks for an absurd wait must not park the queue for hours.
constexpr Duration kMaxRetryAfter = std::chrono::minutes(10);

}  // namespace

std::string prometheus_label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string basic_auth_header(const std::string& user, const std::string& password) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string in = user + ":" + password;
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += tbl[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += '=';
  }
  return "Basic " + out;
}

// --- ServerUploader ------------------------------------------------------------

ServerUploader::ServerUploader(const ServerConfig& server, Metrics& m)
    : server_(server),
      name_(server.display_name()),
      labels_("server=\"" + prometheus_label_value(name_) + "\""),
      metrics_(m),
      enqueued_(m.counter("ember_upload_profiles_enqueued_total", labels_,
                          "Profiles queued for a server")),
      enqueued_samples_(m.counter("ember_upload_samples_enqueued_total", labels_,
                                  "Samples in the profiles queued for a server")),
      sent_profiles_(m.counter("ember_upload_profiles_sent_total", labels_,
                               "Profiles a server accepted")),
      sent_samples_(m.counter("ember_upload_samples_sent_total", labels_,
                              "Samples in the profiles a server accepted")),
      sent_bytes_(m.counter("ember_upload_bytes_sent_total", labels_,
                            "Request body bytes a server accepted")),
      sent_requests_(m.counter("ember_upload_requests_total", labels_,
                               "Upload requests a server accepted")),
      retries_(m.counter("ember_upload_retries_total", labels_,
                         "Uploads retried after a retryable failure")),
      dropped_full_profiles_(drop_counter(m, Drop::kUploadQueueFull, labels_)),
      dropped_full_samples_(upload_samples_drop_counter(m, Drop::kUploadQueueFull, labels_)),
      dropped_rejected_profiles_(drop_counter(m, Drop::kUploadRejected, labels_)),
      dropped_rejected_samples_(upload_samples_drop_counter(m, Drop::kUploadRejected, labels_)),
      dropped_shutdown_profiles_(drop_counter(m, Drop::kUploadShutdown, labels_)),
      dropped_shutdown_samples_(upload_samples_drop_counter(m, Drop::kUploadShutdown, labels_)),
      queue_bytes_gauge_(m.gauge("ember_upload_queue_bytes", labels_,
                                 "Bytes of profiles waiting to be sent")),
      queue_profiles_gauge_(m.gauge("ember_upload_queue_profiles", labels_,
                                    "Profiles waiting to be sent")),
      last_success_gauge_(m.gauge("ember_upload_last_success_timestamp_seconds", labels_,
                                  "Unix time of the last accepted upload")) {
  m.gauge("ember_upload_queue_max_bytes", labels_, "Bound of the upload queue")
      .set(server.queue_max_bytes);
  m.counter("ember_upload_failures_total", "", "Failed upload attempts, by HTTP status or "
            "transport error (connect, timeout, tls, connection)");
}

Result<std::unique_ptr<ServerUploader>> ServerUploader::create(const ServerConfig& server,
                                                               Metrics& metrics,
                                                               std::unique_ptr<Transport> transport) {
  if (auto st = validate_server(server); !st)
    return Errorf("server %s: %s", server.display_name().c_str(), st.error().message.c_str());
  auto url = parse_server_url(server.url);
  if (!url) return url.error();
  std::unique_ptr<ServerUploader> u(new ServerUploader(server, metrics));
  u->base_url_ = url->scheme + "://" + url->url_host() + ":" + std::to_string(url->port) + url->path;
  if (!server.bearer_token_file.empty()) {
    auto f = SecretFile::open(server.bearer_token_file);
    if (!f) return Errorf("server %s: bearer_token_file: %s", u->name_.c_str(), f.error().message.c_str());
    u->bearer_file_.emplace(std::move(*f));
  }
  if (server.has_basic_auth && !server.basic_auth.password_file.empty()) {
    auto f = SecretFile::open(server.basic_auth.password_file);
    if (!f)
      return Errorf("server %s: basic_auth.password_file: %s", u->name_.c_str(),
                    f.error().message.c_str());
    u->password_file_.emplace(std::move(*f));
  }
  for (const std::string* f : {&server.tls.ca_file, &server.tls.cert_file, &server.tls.key_file}) {
    if (f->empty()) continue;
    if (::access(f->c_str(), R_OK) != 0)
      return Errorf("server %s: cannot read %s: %s", u->name_.c_str(), f->c_str(), std::strerror(errno));
    u->tls_files_.emplace_back(*f);
  }
  if (!transport) {
    TlsOptions tls;
    tls.ca_file = server.tls.ca_file;
    tls.cert_file = server.tls.cert_file;
    tls.key_file = server.tls.key_file;
    tls.server_name = server.tls.server_name;
    tls.insecure_skip_verify = server.tls.insecure_skip_verify;
    auto client = HttpClient::create(tls);
    if (!client) return client.error();
    transport = std::move(*client);
  }
  if (server.tls.insecure_skip_verify)
    EMBER_WARN("server %s: tls.insecure_skip_verify is set: the server's certificate is NOT "
               "verified, so anyone on the path can read and alter uploads",
               u->name_.c_str());
  u->transport_ = std::move(transport);
  u->thread_ = std::thread([p = u.get()] { p->run(); });
  return u;
}

ServerUploader::~ServerUploader() {
  stop_.store(true);
  {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void ServerUploader::update_gauges_locked() {
  queue_bytes_gauge_.set(queue_bytes_);
  queue_profiles_gauge_.set(queue_.size());
}

void ServerUploader::pop_front_locked(size_t n, Counter* profiles, Counter* samples) {
  for (size_t i = 0; i < n && !queue_.empty(); ++i) {
    const auto& p = queue_.front();
    if (profiles) profiles->add();
    if (samples) samples->add(p->samples);
    queue_bytes_ -= p->bytes();
    queue_.pop_front();
  }
  update_gauges_locked();
}

void ServerUploader::enqueue(EncodedProfileRef p) { enqueue(std::vector<EncodedProfileRef>{std::move(p)}); }

void ServerUploader::enqueue(const std::vector<EncodedProfileRef>& profiles) {
  uint64_t dropped = 0, dropped_samples = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& p : profiles) enqueue_locked(p, &dropped, &dropped_samples);
    update_gauges_locked();
    cv_.notify_all();
  }
  if (dropped)
    log::write_limited(log::Level::kWarn, ("upload-full:" + name_).c_str(), 10.0,
                       "server %s: upload queue full (%s): dropped the %llu oldest profile(s), "
                       "%llu samples; %llu profiles dropped so far",
                       name_.c_str(), format_size(server_.queue_max_bytes).c_str(),
                       (unsigned long long)dropped, (unsigned long long)dropped_samples,
                       (unsigned long long)dropped_full_profiles_.value());
}

void ServerUploader::enqueue_locked(EncodedProfileRef p, uint64_t* dropped,
                                    uint64_t* dropped_samples) {
  enqueued_.add();
  enqueued_samples_.add(p->samples);
  if (finished_) {
    dropped_shutdown_profiles_.add();
    dropped_shutdown_samples_.add(p->samples);
    return;
  }
  queue_bytes_ += p->bytes();
  queue_.push_back(std::move(p));
  // Over the bound: drop the oldest profiles that are not being sent now
  // (a request in flight may finish; it is at most kMaxRequestBytes).
  while (queue_bytes_ > server_.queue_max_bytes && queue_.size() > in_flight_) {
    auto it = queue_.begin() + ptrdiff_t(in_flight_);
    dropped_full_profiles_.add();
    dropped_full_samples_.add((*it)->samples);
    *dropped_samples += (*it)->samples;
    ++*dropped;
    queue_bytes_ -= (*it)->bytes();
    queue_.erase(it);
  }
}

bool ServerUploader::past_deadline() const {
  int64_t d = deadline_ns_.load(std::memory_order_relaxed);
  return d != INT64_MAX && steady_ns(steady_now()) >= d;
}

HttpRequest ServerUploader::build_request(const std::vector<EncodedProfileRef>& chunk,
                                          std::string* body) {
  HttpRequest req;
  req.timeout = server_.timeout;
  // Shutdown: no request may outlive the deadline.
  int64_t d = deadline_ns_.load(std::memory_order_relaxed);
  if (d != INT64_MAX) {
    Duration left(std::max<int64_t>(d - steady_ns(steady_now()), 1'000'000));
    req.timeout = std::min(req.timeout, left);
  }
  if (server_.api == ServerConfig::Api::kPush) {
    *body = push_request_body(chunk);
    req.body = body;
    req.url = base_url_ + kPushPath;
    req.headers.push_back("Content-Type: application/proto");
    req.headers.push_back("Connect-Protocol-Version: 1");
    req.headers.push_back("Connect-Timeout-Ms: " + std::to_string(req.timeout.count() / 1'000'000));
  } else if (server_.api == ServerConfig::Api::kOtlp) {
    // One interval's request, encoded once for every OTLP server.
    req.body = &chunk.front()->otlp_request_gz;
    req.url = base_url_ + kOtlpProfilesPath;
    // Pyroscope accepts exactly this type, no parameters.
    req.headers.push_back("Content-Type: application/x-protobuf");
    req.headers.push_back("Content-Encoding: gzip");
  } else {
    // The shared encoded bytes themselves: `chunk` keeps them alive.
    req.body = &chunk.front()->pprof_gz;
    req.url = base_url_ + kIngestPath + "?" + ingest_query(*chunk.front());
    req.headers.push_back("Content-Type: application/octet-stream");
  }
  if (!server_.bearer_token.empty()) req.headers.push_back("Authorization: Bearer " + server_.bearer_token);
  if (bearer_file_) req.headers.push_back("Authorization: Bearer " + bearer_file_->value());
  if (server_.has_basic_auth) {
    const std::string& pw = password_file_ ? password_file_->value() : server_.basic_auth.password;
    req.headers.push_back("Authorization: " + basic_auth_header(server_.basic_auth.username, pw));
  }
  if (!server_.tenant_id.empty()) req.headers.push_back("X-Scope-OrgID: " + server_.tenant_id);
  for (const auto& [k, v] : server_.headers) req.headers.push_back(k + ": " + v);
  for (auto& f : tls_files_)
    if (f.changed()) req.fresh_connection = true;
  return req;
}

void ServerUploader::run() {
  name_this_thread("ember-upload");
  std::unique_lock<std::mutex> lock(mu_);
  auto abort = [this] { return stop_.load(std::memory_order_relaxed) || past_deadline(); };
  for (;;) {
    cv_.wait(lock, [&] { return stop_.load() || !queue_.empty(); });
    if (stop_.load() || past_deadline()) break;
    SteadyTime now = steady_now();
    if (now < next_attempt_) {
      // Back off; a new deadline or stop wakes us early.
      int64_t d = deadline_ns_.load();
      SteadyTime until = next_attempt_;
      if (d != INT64_MAX) until = std::min(until, SteadyTime(std::chrono::nanoseconds(d)));
      cv_.wait_until(lock, until, [&] { return stop_.load(); });
      continue;
    }
    // The chunk: one item for ingest (a profile) and otlp (an interval); for
    // push as many profiles as fit in one request (at least one), so a
    // backlog drains in few requests.
    std::vector<EncodedProfileRef> chunk;
    size_t bytes = 0;
    for (const auto& p : queue_) {
      if (!chunk.empty() && (server_.api != ServerConfig::Api::kPush ||
                             bytes + p->pprof_gz.size() > kMaxRequestBytes))
        break;
      chunk.push_back(p);
      bytes += p->pprof_gz.size();
    }
    in_flight_ = chunk.size();
    lock.unlock();

    std::string body;
    HttpRequest req = build_request(chunk, &body);
    HttpResponse resp = transport_->post(req, abort);

    lock.lock();
    in_flight_ = 0;
    if (resp.failure == TransportFailure::kAborted) continue;  // stopping: the loop ends
    std::string failure;  // metric label and log text of a failed attempt
    UploadOutcome outcome = UploadOutcome::kRetry;
    if (resp.failure != TransportFailure::kNone) {
      failure = transport_failure_name(resp.failure);
      last_error_ = failure + ": " + resp.error;
    } else {
      outcome = classify_status(resp.status);
      if (outcome != UploadOutcome::kSent) {
        failure = std::to_string(resp.status);
        std::string msg = server_message(resp.body);
        last_error_ = "HTTP " + failure + (msg.empty() ? "" : ": " + msg);
      }
    }
    if (!failure.empty())
      metrics_.counter("ember_upload_failures_total", labels_ + ",status=\"" + failure + "\"").add();

    if (outcome == UploadOutcome::kSent) {
      uint64_t samples = 0;
      for (const auto& p : chunk) samples += p->samples;
      if (consecutive_failures_)
        EMBER_INFO("server %s: uploads work again after %llu failed attempts", name_.c_str(),
                   (unsigned long long)consecutive_failures_);
      sent_profiles_.add(chunk.size());
      sent_samples_.add(samples);
      sent_bytes_.add(req.body->size());
      sent_requests_.add();
      last_success_gauge_.set(uint64_t(std::time(nullptr)));
      pop_front_locked(chunk.size(), nullptr, nullptr);
      consecutive_failures_ = 0;
      attempt_ = 0;
      last_error_.clear();
      next_attempt_ = SteadyTime{};
    } else if (outcome == UploadOutcome::kReject) {
      // No retry can fix it (bad request, auth, too large): drop, and say
      // why in the server's own words.
      uint64_t samples = 0;
      for (const auto& p : chunk) samples += p->samples;
      log::write_limited(log::Level::kError, ("upload-reject:" + name_).c_str(), 10.0,
                         "server %s rejected %zu profile(s) (%llu samples), not retrying: %s",
                         name_.c_str(), chunk.size(), (unsigned long long)samples,
                         last_error_.c_str());
      pop_front_locked(chunk.size(), &dropped_rejected_profiles_, &dropped_rejected_samples_);
      ++consecutive_failures_;
    } else {
      Duration delay = resp.retry_after
                           ? std::min<Duration>(*resp.retry_after, kMaxRetryAfter)
                           : backoff_delay(server_.min_backoff, server_.max_backoff, attempt_,
                                           random01());
      ++attempt_;
      ++consecutive_failures_;
      retries_.add();
      next_attempt_ = steady_now() + delay;
      log::write_limited(log::Level::kWarn, ("upload-retry:" + name_).c_str(), 10.0,
                         "server %s: upload failed (%s); retrying in %s; %zu profiles queued",
                         name_.c_str(), last_error_.c_str(), seconds_text(delay).c_str(),
                         queue_.size());
    }
    cv_.notify_all();
  }
  // Stopped: what is still queued will not be sent.
  if (!queue_.empty()) {
    uint64_t samples = 0;
    for (const auto& p : queue_) samples += p->samples;
    EMBER_WARN("server %s: shutting down with %zu profile(s) (%llu samples) unsent%s%s",
               name_.c_str(), queue_.size(), (unsigned long long)samples,
               last_error_.empty() ? "" : "; last error: ", last_error_.c_str());
    pop_front_locked(queue_.size(), &dropped_shutdown_profiles_, &dropped_shutdown_samples_);
    left_unsent_ = true;
  }
  finished_ = true;
  cv_.notify_all();
}

bool ServerUploader::drain(SteadyTime deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  deadline_ns_.store(std::min(deadline_ns_.load(), steady_ns(deadline)));
  // One prompt attempt rather than sitting out a long backoff.
  next_attempt_ = std::min(next_attempt_, steady_now() + server_.min_backoff);
  cv_.notify_all();
  cv_.wait_until(lock, deadline, [&] { return finished_ || (queue_.empty() && in_flight_ == 0); });
  stop_.store(true);
  cv_.notify_all();
  lock.unlock();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> relock(mu_);
  return !left_unsent_;
}

ServerUploader::Status ServerUploader::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  Status s;
  s.queued_profiles = queue_.size();
  s.queued_bytes = queue_bytes_;
  s.consecutive_failures = consecutive_failures_;
  s.last_error = last_error_;
  return s;
}

// --- UploadExporter ------------------------------------------------------------

UploadExporter::UploadExporter(Options opts, Metrics& metrics)
    : opts_(std::move(opts)),
      intervals_(metrics.counter("ember_upload_intervals_total", "",
                                 "Intervals (batches of profiles) handed to the uploaders")),
      batch_dropped_(drop_counter(metrics, Drop::kSampleExportQueueFull)),
      encode_failed_(drop_counter(metrics, Drop::kSampleEncodeFailed)) {}

Result<std::unique_ptr<UploadExporter>> UploadExporter::create(Options opts, Metrics& metrics,
                                                               TransportFactory transports) {
  if (opts.servers.empty()) return Errorf("no server configured");
  std::unique_ptr<UploadExporter> e(new UploadExporter(std::move(opts), metrics));
  for (const auto& s : e->opts_.servers) {
    auto u = ServerUploader::create(s, metrics, transports ? transports(s) : nullptr);
    if (!u) return u.error();
    e->servers_.push_back(std::move(*u));
  }
  UploadExporter* self = e.get();
  e->encoder_ = std::make_unique<WorkerQueue<ProfileBatch>>(
      e->opts_.max_queued_batches,
      [self](ProfileBatch&& b) { self->encode_and_enqueue(std::move(b)); },
      // Encoding cannot keep up (starved of CPU), or the shutdown deadline
      // passed first: the batch is lost, counted.
      [self](ProfileBatch&& b) {
        for (const auto& p : b.profiles) self->batch_dropped_.add(p.total_count());
      },
      "ember-encode");
  return e;
}

UploadExporter::~UploadExporter() {
  if (encoder_) encoder_->discard();
  encoder_.reset();  // joins the encode thread
  servers_.clear();  // each aborts and joins its thread
}

void UploadExporter::export_batch(ProfileBatch&& batch) {
  intervals_.add();
  encoder_->push(std::move(batch));
}

void UploadExporter::encode_and_enqueue(ProfileBatch&& batch) {
  // Each format is encoded once per interval, for every server that speaks it.
  bool want_pprof = false, want_otlp = false;
  for (const auto& s : servers_) (s->api() == ServerConfig::Api::kOtlp ? want_otlp : want_pprof) = true;
  std::vector<EncodedProfileRef> pprof_items, otlp_items;
  if (want_pprof) {
    pprof_items.reserve(batch.profiles.size());
    for (const auto& p : batch.profiles) {
      if (p.samples.empty()) continue;
      auto e = encode_for_upload(p);
      if (e.ok()) {
        pprof_items.push_back(std::move(*e));
      } else {
        encode_failed_.add(p.total_count());
        EMBER_WARN_LIMITED("cannot encode a profile for upload: %s", e.error().message.c_str());
      }
    }
  }
  if (want_otlp) {
    if (auto e = encode_otlp_for_upload(batch, OtlpOptions{EMBER_UPLOAD_VERSION}); e.ok()) {
      if (*e) otlp_items.push_back(std::move(*e));
    } else {
      uint64_t n = 0;
      for (const auto& p : batch.profiles) n += p.total_count();
      encode_failed_.add(n);
      EMBER_WARN_LIMITED("cannot encode an OTLP request: %s", e.error().message.c_str());
    }
  }
  batch = ProfileBatch{};  // the encoded copies are all that is kept
  for (auto& s : servers_) s->enqueue(s->api() == ServerConfig::Api::kOtlp ? otlp_items : pprof_items);
}

void UploadExporter::begin_shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!deadline_) deadline_ = steady_now() + opts_.shutdown_timeout;
}

void UploadExporter::flush() {
  begin_shutdown();
  SteadyTime deadline;
  {
    std::lock_guard<std::mutex> lock(mu_);
    deadline = *deadline_;
  }
  // Encoding is local work: wait for it, but not past the deadline.
  encoder_->wait_idle(deadline);
  for (auto& s : servers_) s->drain(deadline);
}

}  // namespace ember
