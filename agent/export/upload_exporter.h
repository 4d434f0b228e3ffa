// Shipping profiles to profiling servers (Pyroscope), reliably.
//
//   pipeline thread --export_batch--> UploadExporter (encode thread)
//        encode each profile once (gzip pprof, labels, UUID)
//        --enqueue--> ServerUploader per server (own thread, own connection)
//             bounded queue (bytes) -> HTTP POST with timeout -> retry/backoff
//
// Sampling never waits on the network: export_batch only hands the batch
// over, and each server has its own thread, queue and connection, so a slow
// or dead server delays nobody else.
//
// Delivery: a profile stays queued until its server accepts it (2xx) or
// rejects it for good (a 4xx no retry can fix). Connection errors,
// timeouts, 408, 429 (after its Retry-After) and 5xx are retried with
// exponential backoff and jitter. The queue is bounded by bytes: past the
// bound the oldest profiles not being sent right now are dropped. Every
// profile that is not delivered is counted by server and reason in Metrics
// (profiles and samples), so for each server
//   enqueued = sent + dropped + queued.
//
// Shutdown: flush() encodes what is pending and lets every server drain its
// queue until the shutdown deadline (begin_shutdown() + shutdown_timeout);
// whatever is left then is dropped with reason "shutdown".
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/config/config.h"
#include "common/http_client.h"
#include "agent/export/pyroscope.h"
#include "agent/export/secret_file.h"
#include "common/metrics.h"
#include "agent/model/stages.h"
#include "common/worker_queue.h"

namespace ember {

using SteadyTime = std::chrono::steady_clock::time_point;

// One server: its queue, its connection and the thread that sends.
// enqueue() and the accessors may be called from any thread; everything
// else in the object (the transport, secrets, backoff state) belongs to the
// sending thread.
class ServerUploader {
 public:
  struct Status {
    size_t queued_profiles = 0;
    uint64_t queued_bytes = 0;
    uint64_t consecutive_failures = 0;
    std::string last_error;  // "" when the last attempt succeeded
  };

  // `transport` null: an HttpClient with the server's TLS options. Fails if
  // a secret file cannot be read now.
  static Result<std::unique_ptr<ServerUploader>> create(const ServerConfig& server,
                                                        Metrics& metrics,
                                                        std::unique_ptr<Transport> transport = nullptr);
  ~ServerUploader();  // aborts anything in flight and joins the thread
  ServerUploader(const ServerUploader&) = delete;
  ServerUploader& operator=(const ServerUploader&) = delete;

  void enqueue(EncodedProfileRef profile);
  // Queues one interval's profiles at once, so they leave in one request.
  void enqueue(const std::vector<EncodedProfileRef>& profiles);

  // Keeps sending until the queue is empty or `deadline` passes, then stops
  // the thread; what is left is dropped ("shutdown"). True if all was sent.
  bool drain(SteadyTime deadline);

  Status status() const;
  const std::string& name() const { return name_; }
  ServerConfig::Api api() const { return server_.api; }
  // The Prometheus label list for this server, e.g. server="http://p:4040".
  const std::string& metric_labels() const { return labels_; }

  // Largest request body for the push API (a long outage is caught up in
  // requests of at most this size).
  static constexpr size_t kMaxRequestBytes = 4 << 20;

 private:
  ServerUploader(const ServerConfig& server, Metrics& metrics);
  void run();
  // Builds the request for `chunk`, the first queued profiles (sending
  // thread). The body is `*body` (push) or the profile's own bytes (ingest).
  HttpRequest build_request(const std::vector<EncodedProfileRef>& chunk, std::string* body);
  void enqueue_locked(EncodedProfileRef p, uint64_t* dropped, uint64_t* dropped_samples);
  // Removes the first `n` queued profiles, counting them in the counters
  // given (null: delivered, not a drop).
  void pop_front_locked(size_t n, Counter* profiles, Counter* samples);
  void update_gauges_locked();
  bool past_deadline() const;

  const ServerConfig server_;
  const std::string name_;
  const std::string labels_;
  std::string base_url_;  // origin + path prefix
  std::unique_ptr<Transport> transport_;
  std::optional<SecretFile> bearer_file_;
  std::optional<SecretFile> password_file_;
  std::vector<WatchedFile> tls_files_;  // a change forces a new connection

  Metrics& metrics_;
  Counter& enqueued_;
  Counter& enqueued_samples_;
  Counter& sent_profiles_;
  Counter& sent_samples_;
  Counter& sent_bytes_;
  Counter& sent_requests_;
  Counter& retries_;
  Counter& dropped_full_profiles_;
  Counter& dropped_full_samples_;
  Counter& dropped_rejected_profiles_;
  Counter& dropped_rejected_samples_;
  Counter& dropped_shutdown_profiles_;
  Counter& dropped_shutdown_samples_;
  Counter& queue_bytes_gauge_;
  Counter& queue_profiles_gauge_;
  Counter& last_success_gauge_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<EncodedProfileRef> queue_;
  uint64_t queue_bytes_ = 0;
  size_t in_flight_ = 0;  // the first in_flight_ queued profiles are being sent
  SteadyTime next_attempt_{};
  int attempt_ = 0;
  uint64_t consecutive_failures_ = 0;
  std::string last_error_;
  bool finished_ = false;  // the thread has exited
  bool left_unsent_ = false;  // it exited with profiles still queued
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> deadline_ns_{INT64_MAX};  // steady clock; INT64_MAX: none
  std::thread thread_;  // last: starts once everything above exists
};

// The exporter the agent uses when servers are configured. export_batch()
// runs on the pipeline thread and only queues the batch; the exporter's own
// thread encodes each profile once and hands the same bytes to every
// server's uploader. flush() runs on the main thread at shutdown.
class UploadExporter final : public Exporter {
 public:
  using TransportFactory = std::function<std::unique_ptr<Transport>(const ServerConfig&)>;
  struct Options {
    std::vector<ServerConfig> servers;
    Duration shutdown_timeout = std::chrono::seconds(10);
    size_t max_queued_batches = 16;  // batches waiting to be encoded
  };

  static Result<std::unique_ptr<UploadExporter>> create(Options opts, Metrics& metrics,
                                                        TransportFactory transports = nullptr);
  ~UploadExporter() override;

  // Pipeline thread: hands the batch to the encode thread.
  void export_batch(ProfileBatch&& batch) override;
  // Encodes what is pending and drains every server until the shutdown
  // deadline; afterwards nothing more is sent.
  void flush() override;
  // Starts the shutdown clock (on SIGTERM), if not started yet.
  void begin_shutdown();

  const std::vector<std::unique_ptr<ServerUploader>>& servers() const { return servers_; }

 private:
  UploadExporter(Options opts, Metrics& metrics);
  void encode_and_enqueue(ProfileBatch&& batch);  // the encode thread

  Options opts_;
  Counter& intervals_;      // batches handed over by the pipeline
  Counter& batch_dropped_;  // samples of batches dropped before encoding
  Counter& encode_failed_;  // samples of profiles protobuf or zlib could not encode
  std::vector<std::unique_ptr<ServerUploader>> servers_;
  std::mutex mu_;
  std::optional<SteadyTime> deadline_;  // mu_
  // The encode thread; made last in create(), after the servers it feeds.
  std::unique_ptr<WorkerQueue<ProfileBatch>> encoder_;
};

// A Prometheus label value with \, " and newlines escaped.
std::string prometheus_label_value(const std::string& v);
// "Basic " credentials (RFC 7617), exposed for tests.
std::string basic_auth_header(const std::string& user, const std::string& password);

}  // namespace ember
