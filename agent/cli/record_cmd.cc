// `ember record`: profile a command (and its descendants), a pid, or the
// whole system, then write one file whose format follows its extension, and,
// with --server or servers in --config, ship the profile with the agent's
// uploader (labels: service_name, --tag, and the CI run's, agent/config/ci_labels.h).
//
// Threads: the main thread forks/waits and handles signals (SIGINT, SIGTERM
// and SIGCHLD are blocked everywhere and taken synchronously with
// sigtimedwait); the session runs the drain and pipeline threads.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <cxxopts.hpp>
#include <fstream>
#include <iostream>
#include <set>

#include "agent/cli/command_line.h"
#include "agent/cli/commands.h"
#include "agent/cli/preflight.h"
#include "agent/cli/session.h"
#include "agent/config/ci_labels.h"
#include "agent/config/relabel_rule.h"
#include "agent/export/file_exporter.h"
#include "agent/export/upload_exporter.h"
#include "common/log.h"

namespace ember {
namespace {

// Keeps the batches the pipeline exports, for writing once recording ends.
class CollectingExporter final : public Exporter {
 public:
  void export_batch(ProfileBatch&& batch) override {
    for (auto& p : batch.profiles) profiles_.push_back(std::move(p));
  }
  // One profile of `event` covering everything recorded (the aggregator made
  // the wall-clock one from CPU samples and off-CPU intervals).
  Profile merged(EventKind event, int frequency_hz, uint64_t start_ns, uint64_t end_ns) {
    Profile out;
    out.event = event;
    if (event_type(event).periodic) {
      out.frequency_hz = frequency_hz;
      out.period_ns = 1'000'000'000ull / uint64_t(frequency_hz);
    }
    out.start_time_ns = start_ns;
    out.end_time_ns = end_ns;
    for (auto& p : profiles_) {
      if (p.event != event) continue;
      if (!out.labels) out.labels = p.labels;
      for (auto& s : p.samples) out.samples.push_back(std::move(s));
    }
    if (!out.labels) out.labels = std::make_shared<const LabelSet>();
    return out;
  }
  // Each interval's profile, as the agent would ship it (copies).
  const std::vector<Profile>& intervals() const { return profiles_; }

 private:
  std::vector<Profile> profiles_;
};

std::string join_args(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

std::string human_bytes(uint64_t n) {
  char buf[32];
  if (n >= (1u << 20)) std::snprintf(buf, sizeof(buf), "%.1f MiB", double(n) / (1 << 20));
  else if (n >= 1024) std::snprintf(buf, sizeof(buf), "%.1f KiB", double(n) / 1024);
  else std::snprintf(buf, sizeof(buf), "%llu B", (unsigned long long)n);
  return buf;
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// What shipping needs, from the command line and --config.
struct ShipPlan {
  std::vector<ServerConfig> servers;  // empty: nothing is shipped
  Labels labels;                      // service_name, CI labels, static labels and --tag
  Duration timeout{std::chrono::seconds(30)};
  bool required = false;
};

// The servers: --server URL (with --api), or the servers of --config; with
// both, the file's one server gets the URL (so tokens and TLS come from the
// file). Labels, later ones winning: the file's static labels, the CI run's,
// --tag, then service_name (--service-name, or the default given).
Result<ShipPlan> plan_shipping(const cxxopts::ParseResult& args, const Config& file,
                               const std::string& default_service) {
  ShipPlan plan;
  plan.servers = file.servers;
  std::optional<ServerConfig::Api> api;
  if (args.count("api")) {
    std::string a = args["api"].as<std::string>();
    if (a == "push") api = ServerConfig::Api::kPush;
    else if (a == "ingest") api = ServerConfig::Api::kIngest;
    else if (a == "otlp") api = ServerConfig::Api::kOtlp;
    else return Errorf("--api must be push, ingest or otlp");
  }
  if (args.count("server")) {
    if (plan.servers.size() > 1)
      return Errorf("--server: the config file names %zu servers; give the URL there, or keep one",
                    plan.servers.size());
    if (plan.servers.empty()) plan.servers.emplace_back();
    plan.servers[0].url = args["server"].as<std::string>();
    if (auto st = validate_server(plan.servers[0]); !st) return Errorf("--server: %s", st.error().message.c_str());
  }
  if (api)
    for (auto& srv : plan.servers) srv.api = *api;
  if (plan.servers.empty()) {
    for (const char* flag : {"api", "service-name", "tag", "upload-required"})
      if (args.count(flag)) return Errorf("--%s needs --server (or servers in --config)", flag);
    return plan;
  }
  plan.labels = file.labels;
  if (!args.count("no-ci-labels"))
    for (auto& [k, v] : ci_labels(process_env())) plan.labels[k] = v;
  if (args.count("tag")) {
    for (const auto& t : args["tag"].as<std::vector<std::string>>()) {
      size_t eq = t.find('=');
      std::string key = t.substr(0, eq);
      if (eq == std::string::npos || !valid_label_name(key) || key.rfind("__", 0) == 0)
        return Errorf("--tag %s: expected KEY=VALUE, KEY of letters, digits and '_', not starting with a "
                      "digit or '__'", t.c_str());
      plan.labels[key] = t.substr(eq + 1);
    }
  }
  std::string service = args.count("service-name") ? args["service-name"].as<std::string>() : default_service;
  if (service.empty()) return Errorf("--service-name: must not be empty");
  plan.labels["service_name"] = service;
  auto timeout = parse_duration(args["upload-timeout"].as<std::string>());
  if (!timeout || timeout->count() <= 0)
    return Errorf("--upload-timeout: %s", timeout ? "must be positive" : timeout.error().message.c_str());
  plan.timeout = *timeout;
  plan.required = args.count("upload-required") > 0;
  return plan;
}

// Ships each interval's profile to every server, with the agent's retries,
// until `plan.timeout`; reports each server on stderr. False if some server
// did not take every profile.
bool ship(const ShipPlan& plan, const std::vector<Profile>& intervals, bool quiet) {
  Metrics metrics;
  UploadExporter::Options uo;
  uo.servers = plan.servers;
  uo.shutdown_timeout = plan.timeout;
  // Every interval is handed over at once: none may be dropped for want of room.
  uo.max_queued_batches = std::max<size_t>(uo.max_queued_batches, intervals.size() + 1);
  auto up = UploadExporter::create(uo, metrics);
  if (!up) {
    std::cerr << "ember: upload: " << up.error().message << std::endl;
    return false;
  }
  auto labels = std::make_shared<const LabelSet>(plan.labels);
  size_t profiles = 0;
  for (const auto& p : intervals) {
    if (p.samples.empty()) continue;
    ProfileBatch batch;
    batch.profiles.push_back(p);
    batch.profiles.back().labels = labels;
    (*up)->export_batch(std::move(batch));
    ++profiles;
  }
  if (profiles == 0) {
    if (!quiet) std::cerr << "ember: nothing to ship: no samples" << std::endl;
    return true;
  }
  (*up)->begin_shutdown();  // the deadline runs from now
  (*up)->flush();
  bool all = true;
  for (const auto& u : (*up)->servers()) {
    uint64_t sent = metrics.counter("ember_upload_profiles_sent_total", u->metric_labels()).value();
    auto st = u->status();
    bool ok = sent == profiles;
    all = all && ok;
    if (!ok) {
      std::cerr << "ember: upload to " << u->name() << " (" << api_name(u->api()) << ") failed: " << sent << " of "
                << profiles << " profile" << (profiles == 1 ? "" : "s") << " sent"
                << (st.last_error.empty() ? "" : "; last error: " + st.last_error) << std::endl;
    } else if (!quiet) {
      std::cerr << "ember: sent " << profiles << " profile" << (profiles == 1 ? "" : "s") << " to " << u->name()
                << " (" << api_name(u->api()) << ") as " << labels->to_string() << std::endl;
    }
  }
  return all;
}

}  // namespace

int run_record(int argc, char** argv) {
  // Everything after "--" is the command; cxxopts sees only our flags.
  std::vector<std::string> command;
  int our_argc = argc;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) {
      for (int j = i + 1; j < argc; ++j) command.emplace_back(argv[j]);
      our_argc = i;
      break;
    }
  }

  cxxopts::Options options("ember record",
                           "Profile a command, a process or the whole system, then write a "
                           "profile file.\n\n  ember record [options] -- COMMAND [ARGS...]\n"
                           "  ember record [options] -p PID\n  ember record [options] -a -d 30s\n");
  options.add_options()
      ("F,frequency", "Samples per second per CPU", cxxopts::value<int>()->default_value("100"))
      ("d,duration", "Stop after this long (e.g. 500ms, 20s, 1m)", cxxopts::value<std::string>())
      ("p,pid", "Profile this process and its descendants", cxxopts::value<int>())
      ("a,all", "Profile the whole system")
      ("o,output", "Output file: .pb.gz (pprof), .folded/.txt (folded stacks), .svg/.html "
       "(flamegraph); repeat -o to write several", cxxopts::value<std::vector<std::string>>()->default_value("ember.pb.gz"))
      ("no-kernel", "Do not capture kernel stacks")
      ("unwinder", "User stacks: auto (unwind tables where the kernel allows, Linux 5.17+), "
                   "tables, or fp (frame pointers only)",
       cxxopts::value<std::string>()->default_value("auto"))
      ("disable-kernel-feature", "Do not use this kernel feature even if the kernel has it: "
       "bpf_loop or task_pt_regs (repeatable; tests older kernels' fallbacks)",
       cxxopts::value<std::vector<std::string>>())
      ("names-only", "Function names only: no file:line, no inlined frames")
      ("demangle", "C++ and Rust names: full, simplified (no parameters or template arguments) "
       "or none", cxxopts::value<std::string>()->default_value("full"))
      ("debug-dir", "Also look for separate debug files here, after /usr/lib/debug (repeatable)",
       cxxopts::value<std::vector<std::string>>())
      ("debuginfod", "Fetch missing debug files by build-id from this debuginfod server (repeatable)",
       cxxopts::value<std::vector<std::string>>())
      ("debuginfod-cache", "Cache directory for debuginfod downloads",
       cxxopts::value<std::string>()->default_value("/var/cache/ember/debuginfod"))
      ("server", "Also ship the profile to this Pyroscope (or OTLP) server, e.g. http://pyroscope:4040",
       cxxopts::value<std::string>())
      ("api", "How to ship: push (default), ingest or otlp", cxxopts::value<std::string>())
      ("c,config", "YAML file with the agent's server keys (servers: url, tokens, tenant, TLS, "
       "headers) and static labels", cxxopts::value<std::string>())
      ("service-name", "service_name of the shipped profile (default: the command's name, the "
       "process's, or 'system' with -a)", cxxopts::value<std::string>())
      ("tag", "Label KEY=VALUE on the shipped profile (repeatable)", cxxopts::value<std::vector<std::string>>())
      ("no-ci-labels", "Do not label the shipped profile with the CI run's commit, repository, "
       "branch, job and link")
      ("interval", "Ship one profile per interval of a longer run",
       cxxopts::value<std::string>()->default_value("1m"))
      ("upload-timeout", "How long to keep retrying the upload after the run",
       cxxopts::value<std::string>()->default_value("30s"))
      ("upload-required", "Exit non-zero (3) if the upload fails, even if the command succeeded")
      ("profile", "What to measure: cpu (where threads run), off-cpu (where they wait: sleeps, "
       "locks, I/O, by time switched out) or wall (per thread, both added up)",
       cxxopts::value<std::string>()->default_value("cpu"))
      ("min-wait", "off-cpu and wall: leave out waits shorter than this (e.g. 1ms)",
       cxxopts::value<std::string>())
      ("max-wait", "off-cpu and wall: leave out waits longer than this (e.g. 1s: idle threads "
       "parked until work came)", cxxopts::value<std::string>())
      ("idle", "With -a, also count idle CPU time")
      ("bpf-stats", "Report the kernel-measured cost of the BPF sampler")
      ("q,quiet", "Print nothing but errors")
      ("v,verbose", "Also print every non-zero counter (losses, unwind stops, caches)")
      ("log-level", "debug, info, warn or error", cxxopts::value<std::string>()->default_value("info"))
      ("h,help", "Show this help");

  int exit_code = 0;
  auto parsed = parse_command_line(options, "ember record", our_argc, argv, true, &exit_code);
  if (!parsed) return exit_code;
  const cxxopts::ParseResult& args = *parsed;
  auto level_opt = log_level_option(args, "ember record", log::Level::kInfo, &exit_code);
  if (!level_opt) return exit_code;
  const log::Level level = *level_opt;
  const bool quiet = args.count("quiet") > 0;
  log::set_level(quiet ? log::Level::kError : level);

  int modes = int(!command.empty()) + int(args.count("pid") > 0) + int(args.count("all") > 0);
  if (modes != 1) {
    std::cerr << "ember record: give exactly one of: -- COMMAND, -p PID, -a\n"
              << options.help() << std::endl;
    return kExitUsage;
  }
  Config config;
  config.frequency_hz = args["frequency"].as<int>();
  config.sampler.kernel_stacks = args.count("no-kernel") == 0;
  config.sampler.include_idle = args.count("idle") > 0;
  const auto kind = event_kind_from_name(args["profile"].as<std::string>());
  if (!kind) {
    std::cerr << "ember record: --profile must be cpu, off-cpu or wall" << std::endl;
    return kExitUsage;
  }
  const EventKind event = *kind;
  config.profiles.cpu = event == EventKind::kCpu;
  config.profiles.off_cpu = event == EventKind::kOffCpu;
  config.profiles.wall = event == EventKind::kWall;
  {
    std::string text = args["unwinder"].as<std::string>();
    auto u = parse_unwinder(text == "dwarf" ? "tables" : text);  // perf's word for it
    if (!u) {
      std::cerr << "ember record: --unwinder must be auto, tables or fp" << std::endl;
      return kExitUsage;
    }
    config.sampler.unwinder = *u;
  }
  {
    auto setting = parse_demangle(args["demangle"].as<std::string>());
    if (!setting) {
      std::cerr << "ember record: --demangle must be full, simplified or none" << std::endl;
      return kExitUsage;
    }
    config.symbolizer.demangle = *setting;
  }
  config.symbolizer.lines = args.count("names-only") == 0;
  if (args.count("disable-kernel-feature"))
    config.sampler.disable_kernel_features = args["disable-kernel-feature"].as<std::vector<std::string>>();
  if (args.count("debug-dir"))
    for (const auto& d : args["debug-dir"].as<std::vector<std::string>>()) add_debug_dir(&config, d);
  if (args.count("debuginfod")) config.symbolizer.debuginfod.urls = args["debuginfod"].as<std::vector<std::string>>();
  if (args.count("debuginfod-cache")) config.symbolizer.debuginfod.cache_dir = args["debuginfod-cache"].as<std::string>();
  for (auto [flag, out] : {std::pair{"min-wait", &config.off_cpu.min_wait},
                           std::pair{"max-wait", &config.off_cpu.max_wait}}) {
    if (!args.count(flag)) continue;
    auto d = parse_duration(args[flag].as<std::string>());
    if (!d) {
      std::cerr << "ember record: --" << flag << ": " << d.error().message << std::endl;
      return kExitUsage;
    }
    if (event == EventKind::kCpu) {
      std::cerr << "ember record: --" << flag << " needs --profile off-cpu or wall" << std::endl;
      return kExitUsage;
    }
    *out = *d;
  }
  if (auto st = validate_config(config); !st) {
    std::cerr << "ember record: " << st.error().message << std::endl;
    return kExitUsage;
  }
  Duration duration{0};
  if (args.count("duration")) {
    auto d = parse_duration(args["duration"].as<std::string>());
    if (!d || d->count() <= 0) {
      std::cerr << "ember record: --duration: "
                << (d ? std::string("must be positive") : d.error().message) << std::endl;
      return kExitUsage;
    }
    duration = *d;
  }
  const auto outputs = args["output"].as<std::vector<std::string>>();
  std::vector<OutputFormat> formats;
  for (const auto& o : outputs) {
    auto format = output_format_for(o);
    if (!format) {
      std::cerr << "ember record: " << format.error().message << std::endl;
      return kExitUsage;
    }
    formats.push_back(*format);
  }
  pid_t target_pid = args.count("pid") ? args["pid"].as<int>() : 0;
  if (target_pid < 0 || (target_pid > 0 && kill(target_pid, 0) != 0 && errno == ESRCH)) {
    std::cerr << "ember record: no process with pid " << target_pid << std::endl;
    return kExitUsage;
  }

  // Shipping is planned before anything runs, so a bad flag costs no profile.
  ShipPlan ship_plan;
  {
    auto file = load_config_option(args, "ember record", &exit_code);
    if (!file) return exit_code;
    std::string default_service = "system";
    if (!command.empty()) {
      default_service = command[0].substr(command[0].rfind('/') + 1);
    } else if (target_pid) {
      std::ifstream comm("/proc/" + std::to_string(target_pid) + "/comm");
      std::string name;
      if (std::getline(comm, name) && !name.empty()) default_service = name;
    }
    auto plan = plan_shipping(args, *file, default_service);
    if (!plan) {
      std::cerr << "ember record: " << plan.error().message << std::endl;
      return kExitUsage;
    }
    ship_plan = std::move(*plan);
    if (!ship_plan.servers.empty()) {
      auto interval = parse_duration(args["interval"].as<std::string>());
      if (!interval || *interval < std::chrono::seconds(1)) {
        std::cerr << "ember record: --interval: " << (interval ? "at least 1s" : interval.error().message)
                  << std::endl;
        return kExitUsage;
      }
      config.interval = *interval;
    }
  }

  auto pre = preflight(config.paths.sys);
  for (const auto& w : pre.warnings) EMBER_WARN("%s", w.c_str());
  if (!pre.ok()) {
    for (const auto& e : pre.errors) std::cerr << "ember: error: " << e << std::endl;
    return kExitCannotRun;
  }

  // Signals are taken synchronously by this thread; every thread started
  // from here on inherits the mask.
  sigset_t wait_set, old_mask;
  sigemptyset(&wait_set);
  sigaddset(&wait_set, SIGINT);
  sigaddset(&wait_set, SIGTERM);
  sigaddset(&wait_set, SIGCHLD);
  sigaddset(&wait_set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &wait_set, &old_mask);

  // A command is forked first but held before exec until the sampler is
  // attached, so its first instructions are profiled.
  pid_t child = 0;
  int release_fd = -1;
  if (!command.empty()) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      std::cerr << "ember: error: pipe: " << std::strerror(errno) << std::endl;
      return kExitCannotRun;
    }
    child = fork();
    if (child < 0) {
      std::cerr << "ember: error: fork: " << std::strerror(errno) << std::endl;
      return kExitCannotRun;
    }
    if (child == 0) {
      close(fds[1]);
      sigprocmask(SIG_SETMASK, &old_mask, nullptr);
      char go;
      if (read(fds[0], &go, 1) != 1) _exit(127);  // ember gave up
      std::vector<char*> cargv;
      for (auto& a : command) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execvp(cargv[0], cargv.data());
      std::fprintf(stderr, "ember: cannot run '%s': %s\n", cargv[0], std::strerror(errno));
      _exit(127);
    }
    close(fds[0]);
    release_fd = fds[1];
  }

  CollectingExporter collector;
  SessionOptions so;
  so.config = config;
  // One interval, ended by the run's end; when shipping, one per --interval
  // of a longer run (each is shipped as its own profile).
  if (!ship_plan.servers.empty()) so.interval = config.interval;
  so.single_series = true;
  so.filter_targets = child != 0 || target_pid != 0;
  so.collect_bpf_stats = args.count("bpf-stats") > 0;
  so.preload_processes = args.count("all") > 0;
  auto session = Session::create(so, collector);
  if (!session) {
    std::cerr << "ember: error: " << session.error().message << std::endl;
    if (child) {
      close(release_fd);  // the child sees EOF and exits
      waitpid(child, nullptr, 0);
    }
    return kExitCannotRun;
  }
  Session& s = **session;
  if (pid_t t = child ? child : target_pid) {
    if (auto st = s.sampler().add_target(uint32_t(t)); !st) {
      std::cerr << "ember: error: " << st.error().message << std::endl;
      if (child) {
        close(release_fd);
        waitpid(child, nullptr, 0);
      }
      return kExitCannotRun;
    }
  }
  const uint64_t start_mono = SystemClock::instance().monotonic_ns();
  const uint64_t start_real = SystemClock::instance().realtime_ns();
  s.start();
  if (child) {
    if (write(release_fd, "x", 1) != 1) EMBER_WARN("cannot release the command: %s", std::strerror(errno));
    close(release_fd);
  } else if (!quiet && duration.count() == 0) {
    std::cerr << "ember: recording " << (target_pid ? "pid " + std::to_string(target_pid) : "all CPUs")
              << "; press Ctrl-C to stop" << std::endl;
  }

  // Wait for the end: the command exits, the pid goes away, the duration
  // passes, or the user interrupts.
  exit_code = 0;
  bool child_done = child == 0;
  // The command's CPU time (and that of the descendants it waited for),
  // from wait4: what a sampler at F Hz should have seen of it, however
  // busy the machine was.
  struct rusage child_usage {};
  bool profiling = true;
  int interrupts = 0;
  const uint64_t deadline = duration.count() ? start_mono + uint64_t(duration.count()) : 0;
  auto stop_profiling = [&] {
    if (!profiling) return;
    profiling = false;
    s.stop();
  };
  for (;;) {
    uint64_t now = SystemClock::instance().monotonic_ns();
    if (deadline && now >= deadline) stop_profiling();
    if (child_done && (!profiling || child)) break;
    if (!profiling && child_done) break;
    if (target_pid && kill(target_pid, 0) != 0 && errno == ESRCH) {
      stop_profiling();
      break;
    }
    timespec ts{0, 100'000'000};
    if (deadline && profiling && deadline - now < 100'000'000ull)
      ts.tv_nsec = long(deadline - now);
    siginfo_t si{};
    int sig = sigtimedwait(&wait_set, &si, &ts);
    if (sig == SIGCHLD || (child && !child_done)) {
      int status = 0;
      if (child && wait4(child, &status, WNOHANG, &child_usage) == child) {
        child_done = true;
        exit_code = exit_code_of(status);
        stop_profiling();
      }
    }
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
      ++interrupts;
      if (!child) {
        stop_profiling();
        break;
      }
      // A Ctrl-C at the terminal reaches the command too (same process
      // group); a signal sent to ember alone is passed on. A second one
      // stops the profile; a third kills the command.
      if (si.si_code != SI_KERNEL) kill(child, sig);
      if (interrupts == 2) stop_profiling();
      if (interrupts >= 3) kill(child, SIGKILL);
    }
  }
  stop_profiling();
  const uint64_t end_mono = SystemClock::instance().monotonic_ns();

  // Shipped before the intervals are merged for the files (which moves them).
  bool upload_failed = false;
  if (!ship_plan.servers.empty()) upload_failed = !ship(ship_plan, collector.intervals(), quiet);

  Profile profile = collector.merged(event, config.frequency_hz, start_real,
                                     start_real + (end_mono - start_mono));
  WriteOptions wo;
  std::string what = child ? join_args(command)
                           : target_pid ? "pid " + std::to_string(target_pid) : "all CPUs";
  char when[64];
  time_t secs = time_t(start_real / 1000000000ull);
  tm t{};
  localtime_r(&secs, &t);
  std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &t);
  wo.subtitle = what + "  ·  " + std::to_string(config.frequency_hz) + " Hz  ·  " + when;
  wo.pprof.comments.push_back("ember record: " + what);
  bool write_failed = false;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (auto st = write_profile_file(profile, outputs[i], formats[i], wo); !st) {
      std::cerr << "ember: error: " << st.error().message << std::endl;
      write_failed = true;
    }
  }
  if (write_failed) return child ? exit_code : 1;

  if (!quiet) {
    s.publish_cache_stats();
    Metrics& m = s.metrics();
    std::set<uint32_t> pids;
    for (const auto& ps : profile.samples) pids.insert(ps.pid);
    std::string written;
    for (const auto& o : outputs) {
      struct stat st{};
      stat(o.c_str(), &st);
      written += (written.empty() ? "" : ", ") + o + " (" + human_bytes(uint64_t(st.st_size)) + ")";
    }
    double secs_recorded = double(end_mono - start_mono) / 1e9;
    std::fprintf(stderr, "ember: %llu samples from %zu process%s in %.1fs, lost %llu; wrote %s\n",
                 (unsigned long long)profile.total_count(), pids.size(), pids.size() == 1 ? "" : "es",
                 secs_recorded, (unsigned long long)m.total("ember_samples_lost_total"),
                 written.c_str());
    if (event != EventKind::kCpu)
      std::fprintf(stderr, "ember: %.3f s %s in all threads\n", double(profile.total_value()) / 1e9,
                   event == EventKind::kOffCpu ? "off CPU" : "on and off CPU");
    if (child && child_done) {
      auto secs_of = [](const timeval& tv) { return double(tv.tv_sec) + double(tv.tv_usec) / 1e6; };
      double user = secs_of(child_usage.ru_utime), sys = secs_of(child_usage.ru_stime);
      std::fprintf(stderr,
                   "ember: the command used %.2f s of CPU (%.2f user, %.2f system): about %.0f "
                   "samples at %d Hz\n",
                   user + sys, user, sys, (user + sys) * config.frequency_hz, config.frequency_hz);
    }
    bool verbose = args.count("verbose") > 0;
    for (const auto& row : m.snapshot()) {
      if (row.value == 0) continue;
      if (verbose || row.name == "ember_samples_lost_total" || row.name == "ember_events_lost_total" ||
          row.name == "ember_bpf_stack_errors_total")
        std::fprintf(stderr, "ember:   %s{%s} %llu\n", row.name.c_str(), row.labels.c_str(),
                     (unsigned long long)row.value);
    }
    if (so.collect_bpf_stats) {
      auto ps = s.sampler().sample_prog_stats();
      std::fprintf(stderr, "ember: BPF sampler: %llu runs, %.0f ns per run\n",
                   (unsigned long long)ps.run_count,
                   ps.run_count ? double(ps.run_time_ns) / double(ps.run_count) : 0.0);
    }
  }
  int result = child ? exit_code : 0;
  // A failed upload was reported; it changes the exit code only when asked.
  if (upload_failed && ship_plan.required && result == 0) result = kExitCannotRun;
  return result;
}

}  // namespace ember
