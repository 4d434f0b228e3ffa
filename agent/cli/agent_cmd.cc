// `ember agent`: the daemon. Profiles the whole system continuously and
// writes one pprof per series per interval.
//
// Threads: the main thread loads config, waits for signals and logs a
// health line per interval; the session runs the drain and pipeline
// threads; the exporter writes files on its own thread.
#include <signal.h>

#include <cxxopts.hpp>
#include <iostream>

#include "agent/cli/commands.h"
#include "agent/cli/preflight.h"
#include "agent/cli/session.h"
#include "agent/export/file_exporter.h"
#include "common/log.h"

namespace ember {

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
  cxxopts::ParseResult args;
  try {
    args = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << "ember agent: " << e.what() << "\n" << options.help() << std::endl;
    return kExitUsage;
  }
  if (args.count("help")) {
    std::cout << options.help() << std::endl;
    return 0;
  }
  if (!args.unmatched().empty()) {
    std::cerr << "ember agent: unexpected argument '" << args.unmatched()[0] << "'" << std::endl;
    return kExitUsage;
  }

  Config config;
  if (args.count("config")) {
    auto loaded = load_config_file(args["config"].as<std::string>());
    if (!loaded) {
      std::cerr << "ember agent: invalid config:\n" << loaded.error().message << std::endl;
      return kExitUsage;
    }
    config = std::move(*loaded);
  }
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
  if (args.count("output-dir")) config.output.directory = args["output-dir"].as<std::string>();
  if (args.count("log-level")) config.log_level = args["log-level"].as<std::string>();
  if (auto st = validate_config(config); !st) {
    std::cerr << "ember agent: invalid config: " << st.error().message << std::endl;
    return kExitUsage;
  }
  log::Level level;
  if (!log::parse_level(config.log_level, &level)) {
    std::cerr << "ember agent: log_level must be debug, info, warn or error" << std::endl;
    return kExitUsage;
  }
  if (args.count("check")) {
    std::cout << render_config(config);
    std::cerr << "ember agent: config OK" << std::endl;
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
  DirectoryExporter::Options eo;
  eo.directory = config.output.directory;
  eo.max_bytes = config.output.max_bytes;
  auto exporter = DirectoryExporter::create(eo, exporter_metrics);
  if (!exporter) {
    EMBER_ERROR("%s", exporter.error().message.c_str());
    return kExitCannotRun;
  }
  SessionOptions so;
  so.config = config;
  so.interval = config.interval;
  auto session = Session::create(so, **exporter);
  if (!session) {
    EMBER_ERROR("%s", session.error().message.c_str());
    return kExitCannotRun;
  }
  Session& s = **session;
  s.start();
  EMBER_INFO("profiling %zu CPUs at %d Hz; writing profiles every %s to %s",
             s.sampler().cpu_count(), config.frequency_hz,
             format_duration(config.interval).c_str(), config.output.directory.c_str());

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
      EMBER_INFO("signal %d: flushing and exiting", sig);
      break;
    }
    // One health line per interval: what was sampled and what was lost.
    s.sampler().read_counters();
    Metrics& m = s.metrics();
    uint64_t sent = m.total("ember_bpf_samples_sent_total");
    uint64_t lost = m.total("ember_samples_lost_total");
    EMBER_INFO("interval: %llu samples, %llu lost, %zu processes tracked, %llu profiles written",
               (unsigned long long)(sent - last_sent), (unsigned long long)(lost - last_lost),
               s.processes().size(),
               (unsigned long long)exporter_metrics.total("ember_profiles_written_total"));
    if (lost > last_lost) {
      for (const auto& row : m.snapshot())
        if (row.name == "ember_samples_lost_total" && row.value)
          EMBER_WARN("samples lost {%s}: %llu in total", row.labels.c_str(),
                     (unsigned long long)row.value);
    }
    last_sent = sent;
    last_lost = lost;
  }
  s.stop();
  (*exporter)->flush();
  EMBER_INFO("stopped: %llu profiles written",
             (unsigned long long)exporter_metrics.total("ember_profiles_written_total"));
  return 0;
}

}  // namespace ember
