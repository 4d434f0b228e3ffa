// `ember agent`: the daemon. Profiles the whole system continuously and,
// every interval, sends one pprof per series to each configured server
// (Pyroscope push or ingest API, or OTLP), and/or writes it to output.directory when no
// server is configured.
//
// Threads: the main thread loads config, waits for signals and logs a
// health line per interval; the session runs the drain and pipeline
// threads; the exporter encodes on its own thread and each server uploads
// on its own (or the file exporter writes on its own); the metrics server
// answers /metrics and /healthz on its own.
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cxxopts.hpp>
#include <fstream>
#include <iostream>
#include <mutex>

#include "agent/cli/command_line.h"
#include "agent/cli/commands.h"
#include "agent/cli/preflight.h"
#include "agent/cli/session.h"
#include "agent/export/bpf_map_stats.h"
#include "agent/export/fanout_exporter.h"
#include "agent/export/file_exporter.h"
#include "agent/export/metrics_server.h"
#include "agent/export/upload_exporter.h"
#include "agent/cli/pod_source.h"
#include "common/drops.h"
#include "common/log.h"

namespace ember {
namespace {

// Resident and peak resident set of this process, from /proc/self/status.
void read_memory(uint64_t* rss, uint64_t* hwm) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    unsigned long long kb = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %llu kB", &kb) == 1) *rss = kb << 10;
    else if (std::sscanf(line.c_str(), "VmHWM: %llu kB", &kb) == 1) *hwm = kb << 10;
  }
}

// Publishes the gauges that are read rather than counted: BPF counters and
// map fill, symbolizer cache, the agent's own memory and CPU. Called by the
// metrics thread on a scrape (scrapes within a second reuse the last
// refresh); the mutex keeps it safe to call from any thread.
class StatsRefresher {
 public:
  StatsRefresher(Session& s, Metrics& m) : s_(s), m_(m) {}
  // The BPF counters alone (serialized with refresh, so two threads never
  // set a counter out of order).
  void read_counters() {
    std::lock_guard<std::mutex> lock(mu_);
    s_.sampler().read_counters();
  }
  void refresh(bool force) {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t now = SystemClock::instance().monotonic_ns();
    if (!force && now - last_ns_ < 1'000'000'000ull) return;
    last_ns_ = now;
    s_.sampler().read_counters();
    s_.publish_cache_stats();
    m_.gauge("ember_processes_tracked", "", "Processes in the process table").set(s_.processes().size());
    publish_bpf_map_fill(m_);
    uint64_t rss = 0, hwm = 0;
    read_memory(&rss, &hwm);
    m_.gauge("ember_agent_resident_bytes", "", "Resident memory of the agent").set(rss);
    m_.gauge("ember_agent_peak_resident_bytes", "", "Peak resident memory of the agent").set(hwm);
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    uint64_t cpu_ms = uint64_t(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                      uint64_t(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
    m_.counter("ember_agent_cpu_milliseconds_total", "", "CPU time the agent used (user + system)")
        .set(cpu_ms);
  }

 private:
  Session& s_;
  Metrics& m_;
  std::mutex mu_;
  uint64_t last_ns_ = 0;
};

}  // namespace

int run_agent(int argc, char** argv) {
  cxxopts::Options options("ember agent",
                           "Profile the whole system continuously.\n\n"
                           "  ember agent --config /etc/ember/ember.yaml\n");
  options.add_options()
      ("c,config", "YAML config file", cxxopts::value<std::string>())
      ("F,frequency", "Override `frequency` (Hz)", cxxopts::value<int>())
      ("interval", "Override `interval` (e.g. 10s)", cxxopts::value<std::string>())
      ("output-dir", "Override `output.directory`", cxxopts::value<std::string>())
      ("log-level", "Override `log_level`", cxxopts::value<std::string>())
      ("check", "Validate the config, print it, and exit")
      ("h,help", "Show this help");
  int exit_code = 0;
  auto parsed = parse_command_line(options, "ember agent", argc, argv, false, &exit_code);
  if (!parsed) return exit_code;
  const cxxopts::ParseResult& args = *parsed;
  auto loaded = load_config_option(args, "ember agent", &exit_code);
  if (!loaded) return exit_code;
  Config config = std::move(*loaded);
  // Flags override the file.
  if (args.count("frequency")) config.frequency_hz = args["frequency"].as<int>();
  if (args.count("interval")) {
    auto d = parse_duration(args["interval"].as<std::string>());
    if (!d) {
      std::cerr << "ember agent: --interval: " << d.error().message << std::endl;
      return kExitUsage;
    }
    config.interval = *d;
  }
  if (args.count("output-dir")) {
    config.output.directory = args["output-dir"].as<std::string>();
    config.output.directory_set = true;
  }
  auto level_flag = log_level_option(args, "ember agent", config.log_level, &exit_code);
  if (!level_flag) return exit_code;
  config.log_level = *level_flag;
  if (auto st = validate_config(config); !st) {
    std::cerr << "ember agent: invalid config: " << st.error().message << std::endl;
    return kExitUsage;
  }
  const log::Level level = config.log_level;
  if (args.count("check")) {
    std::cout << render_config(config);
    if (kubernetes_enabled(config)) {
      // Settings only: nothing talks to the API server here.
      KubeClientOptions ko;
      ko.api_server = config.kubernetes.api_server;
      ko.token_file = config.kubernetes.token_file;
      ko.ca_file = config.kubernetes.ca_file;
      ko.node_name = kubernetes_node_name(config);
      if (auto r = resolve_in_cluster(ko, process_env()); !r)
        std::cerr << "ember agent: warning: " << r.error().message
                  << " (the agent would not start like this)" << std::endl;
    }
    std::cerr << "ember agent: config OK (" << config.relabel_configs.size()
              << " relabel rules)" << std::endl;
    return 0;
  }
  log::set_level(level);
  log::set_style(log::Style::kLogfmt);

  auto pre = preflight(config.paths.sys);
  for (const auto& w : pre.warnings) EMBER_WARN("%s", w.c_str());
  if (!pre.ok()) {
    for (const auto& e : pre.errors) EMBER_ERROR("%s", e.c_str());
    return kExitCannotRun;
  }

  sigset_t wait_set;
  sigemptyset(&wait_set);
  sigaddset(&wait_set, SIGINT);
  sigaddset(&wait_set, SIGTERM);
  sigaddset(&wait_set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &wait_set, nullptr);

  Metrics exporter_metrics;  // outlives the session, which exports into it
  Metrics agent_metrics;     // read-side gauges (see StatsRefresher)
  // Every sink gets every interval: files (when no server is configured, or
  // when a directory was named) and each server.
  std::vector<std::unique_ptr<Exporter>> sinks;
  UploadExporter* uploader = nullptr;
  const bool write_files = config.servers.empty() || config.output.directory_set;
  if (write_files) {
    DirectoryExporter::Options eo;
    eo.directory = config.output.directory;
    eo.max_bytes = config.output.max_bytes;
    auto files = DirectoryExporter::create(eo, exporter_metrics);
    if (!files) {
      EMBER_ERROR("%s", files.error().message.c_str());
      return kExitCannotRun;
    }
    sinks.push_back(std::move(*files));
  }
  if (!config.servers.empty()) {
    UploadExporter::Options uo;
    uo.servers = config.servers;
    uo.shutdown_timeout = config.shutdown_timeout;
    auto up = UploadExporter::create(uo, exporter_metrics);
    if (!up) {
      EMBER_ERROR("%s", up.error().message.c_str());
      return kExitCannotRun;
    }
    uploader = up->get();
    sinks.push_back(std::move(*up));
  }
  auto exporter = std::make_unique<FanoutExporter>(std::move(sinks));
  // Pod labels: the watcher lists this node's pods in the background; the
  // label stage holds samples of not-yet-known pods until the interval ends.
  Metrics k8s_metrics;
  auto pods = make_pod_index(config, k8s_metrics);
  if (!pods) {
    EMBER_ERROR("%s", pods.error().message.c_str());
    return kExitCannotRun;
  }
  if (*pods) EMBER_INFO("kubernetes: watching pods on node %s", kubernetes_node_name(config).c_str());
  SessionOptions so;
  so.config = config;
  so.interval = config.interval;
  so.pods = pods->get();
  auto session = Session::create(so, *exporter);
  if (!session) {
    EMBER_ERROR("%s", session.error().message.c_str());
    return kExitCannotRun;
  }
  Session& s = **session;
  StatsRefresher stats(s, agent_metrics);
  std::atomic<bool> stopping{false};

  // The metrics endpoint exists before sampling starts, so a port clash
  // fails the start instead of going unnoticed.
  std::unique_ptr<MetricsServer> metrics_server;
  if (!config.metrics.listen.empty()) {
    MetricsServer::Options mo;
    mo.address = *parse_listen_address(config.metrics.listen);  // validated
    mo.metrics = &agent_metrics;
    mo.metrics_text = [&] {
      stats.refresh(false);
      return prometheus_text({&s.metrics(), &exporter_metrics, &agent_metrics, &k8s_metrics});
    };
    mo.health = [&]() -> std::pair<int, std::string> {
      std::string body = stopping.load() ? "stopping\n" : "ok\n";
      if (uploader)
        for (const auto& u : uploader->servers()) {
          auto st = u->status();
          body += "server " + u->name() + ": " + std::to_string(st.queued_profiles) +
                  " profiles queued (" + format_size(st.queued_bytes) + ")" +
                  (st.last_error.empty() ? "" : "; last error: " + st.last_error) + "\n";
        }
      return {stopping.load() ? 503 : 200, body};
    };
    auto ms = MetricsServer::create(std::move(mo));
    if (!ms) {
      EMBER_ERROR("%s", ms.error().message.c_str());
      return kExitCannotRun;
    }
    metrics_server = std::move(*ms);
  }

  s.start();
  std::string dest;
  if (uploader) {
    for (const auto& u : uploader->servers()) dest += (dest.empty() ? "" : ", ") + u->name();
    dest = "sending profiles every " + format_duration(config.interval) + " to " + dest;
  } else {
    dest = "writing profiles every " + format_duration(config.interval) + " to " +
           config.output.directory;
  }
  EMBER_INFO("profiling %zu CPUs at %d Hz; %s", s.sampler().cpu_count(), config.frequency_hz,
             dest.c_str());
  if (metrics_server) {
    auto a = *parse_listen_address(config.metrics.listen);
    std::string host = a.host.empty() ? "0.0.0.0" : a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host;
    EMBER_INFO("serving metrics on http://%s:%d/metrics", host.c_str(), metrics_server->port());
  }

  uint64_t last_sent = 0, last_lost = 0;
  for (;;) {
    timespec ts{};
    ts.tv_sec = time_t(config.interval.count() / 1'000'000'000);
    ts.tv_nsec = long(config.interval.count() % 1'000'000'000);
    int sig = sigtimedwait(&wait_set, nullptr, &ts);
    if (sig == SIGHUP) {
      EMBER_INFO("SIGHUP: config reload is not supported yet; restart to apply changes");
      continue;
    }
    if (sig == SIGINT || sig == SIGTERM) {
      // The shutdown deadline runs from the signal: draining the pipeline
      // and sending what is queued must both fit in it.
      if (uploader) uploader->begin_shutdown();
      stopping.store(true);
      EMBER_INFO("signal %d: flushing and exiting", sig);
      break;
    }
    // One health line per interval: what was sampled and what was lost. Only
    // the BPF counters it needs are read here; the rest of the gauges (map
    // fill, caches, memory) are refreshed when /metrics is scraped, since a
    // full refresh per interval was a tenth of the idle agent's CPU.
    stats.read_counters();
    Metrics& m = s.metrics();
    uint64_t sent = m.total("ember_bpf_samples_sent_total");
    uint64_t lost = m.total("ember_samples_lost_total") + exporter_metrics.total("ember_samples_lost_total");
    std::string out;
    if (uploader) {
      uint64_t queued = exporter_metrics.total("ember_upload_queue_profiles");
      out = std::to_string(exporter_metrics.total("ember_upload_profiles_sent_total")) +
            " profiles sent, " + std::to_string(queued) + " queued, " +
            std::to_string(exporter_metrics.total("ember_upload_profiles_dropped_total")) +
            " dropped";
    }
    if (write_files) {
      out += std::string(out.empty() ? "" : ", ") +
             std::to_string(exporter_metrics.total("ember_profiles_written_total")) +
             " profiles written";
    }
    EMBER_INFO("interval: %llu samples, %llu lost, %zu processes tracked, %s",
               (unsigned long long)(sent - last_sent), (unsigned long long)(lost - last_lost),
               s.processes().size(), out.c_str());
    if (lost > last_lost) {
      for (const auto& row : m.snapshot())
        if (row.name == "ember_samples_lost_total" && row.value)
          EMBER_WARN("samples lost {%s}: %llu in total", row.labels.c_str(),
                     (unsigned long long)row.value);
    }
    last_sent = sent;
    last_lost = lost;
  }
  stopping.store(true);
  s.stop();
  exporter->flush();
  if (uploader) {
    for (const auto& u : uploader->servers()) {
      const std::string& l = u->metric_labels();
      auto get = [&](const char* name, const std::string& extra = "") {
        return (unsigned long long)exporter_metrics.counter(name, extra.empty() ? l : l + "," + extra).value();
      };
      unsigned long long dropped[3], dropped_samples = 0, all = 0;
      const std::string reasons[3] = {drop_labels(Drop::kUploadQueueFull), drop_labels(Drop::kUploadRejected),
                                      drop_labels(Drop::kUploadShutdown)};
      for (int i = 0; i < 3; ++i) {
        dropped[i] = get("ember_upload_profiles_dropped_total", reasons[i]);
        dropped_samples += get("ember_upload_samples_dropped_total", reasons[i]);
        all += dropped[i];
      }
      EMBER_INFO("server %s: sent %llu of %llu profiles (%llu of %llu samples, %llu bytes); "
                 "dropped %llu profiles (%llu samples): %llu queue full, %llu rejected, "
                 "%llu at shutdown",
                 u->name().c_str(), get("ember_upload_profiles_sent_total"),
                 get("ember_upload_profiles_enqueued_total"), get("ember_upload_samples_sent_total"),
                 get("ember_upload_samples_enqueued_total"), get("ember_upload_bytes_sent_total"),
                 all, dropped_samples, dropped[0], dropped[1], dropped[2]);
    }
  }
  if (!config.relabel_configs.empty()) {
    Metrics& m = s.metrics();
    EMBER_INFO("relabel_configs: %llu processes labeled, %llu dropped; %llu samples skipped in "
               "the kernel and %llu off-CPU switch-outs (drop entries: %llu by cgroup, %llu by "
               "pid); %llu late-pod samples labeled at aggregation",
               (unsigned long long)m.counter("ember_label_processes_total", "result=\"labeled\"").value(),
               (unsigned long long)m.counter("ember_label_processes_total", "result=\"dropped\"").value(),
               (unsigned long long)m.total("ember_bpf_samples_skipped_total"),
               (unsigned long long)m.counter("ember_bpf_offcpu_intervals_skipped_total",
                                             "reason=\"relabel_drop\"").value(),
               (unsigned long long)m.counter("ember_label_kernel_verdicts_total", "key=\"cgroup\"").value(),
               (unsigned long long)m.counter("ember_label_kernel_verdicts_total", "key=\"tgid\"").value(),
               (unsigned long long)m.counter("ember_label_late_pod_samples_total", "result=\"labeled\"").value());
  }
  EMBER_INFO("stopped: %llu samples aggregated, %llu lost; %llu profiles written",
             (unsigned long long)s.metrics().total("ember_samples_aggregated_total"),
             (unsigned long long)(s.metrics().total("ember_samples_lost_total") +
                                  exporter_metrics.total("ember_samples_lost_total")),
             (unsigned long long)exporter_metrics.total("ember_profiles_written_total"));
  return 0;
}

}  // namespace ember
