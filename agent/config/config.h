// Config: everything a user can set, parsed once at the edge (YAML file,
// then command-line overrides) into one validated, immutable value.
//
// Errors name the file, line and key, e.g.
//   ember.yaml:4: sampler.ring_buffer_size: expected a size like 8MiB, got 'big'
// Every error in the file is reported at once, not just the first.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

#include "agent/config/relabel_rule.h"
#include "common/duration.h"
#include "common/log.h"
#include "symbolizer/demangle.h"
#include "common/labels.h"
#include "common/result.h"

namespace ember {

// The self-metrics endpoint's default: loopback only, so nothing is exposed
// off the host unless asked for.
inline constexpr const char* kDefaultMetricsListen = "127.0.0.1:9799";

// An endpoint URL, split. Only http and https; no user info (credentials go
// in basic_auth, where they are masked), no query, no fragment.
struct ServerUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // without brackets for IPv6 literals
  int port = 0;        // explicit or the scheme's default
  bool explicit_port = false;
  std::string path;    // prefix without a trailing '/', e.g. "" or "/pyroscope"
  // scheme://host[:port], for logs and the `server` metric label.
  std::string origin() const;
  // Host part as it goes in a URL (IPv6 literals in brackets).
  std::string url_host() const;
};
Result<ServerUrl> parse_server_url(const std::string& url);

// One profiling server (an element of `servers:`). Secrets may be given
// inline or as files; render_config() never prints them.
struct ServerConfig {
  // push and ingest: Pyroscope's APIs (pprof bodies); otlp: OpenTelemetry
  // profiles over HTTP (POST /v1development/profiles, protobuf).
  enum class Api { kPush, kIngest, kOtlp };
  std::string url;   // e.g. http://pyroscope:4040
  std::string name;  // for logs and metrics; default: the URL's origin
  Api api = Api::kPush;

  std::string bearer_token;
  std::string bearer_token_file;  // re-read when it changes
  struct BasicAuth {
    std::string username;
    std::string password;
    std::string password_file;  // re-read when it changes
  };
  bool has_basic_auth = false;
  BasicAuth basic_auth;
  std::string tenant_id;  // sent as X-Scope-OrgID
  std::vector<std::pair<std::string, std::string>> headers;

  struct Tls {
    std::string ca_file;
    std::string cert_file;  // client certificate (mTLS), with key_file
    std::string key_file;
    std::string server_name;  // name to verify (and send as SNI) instead of the URL's host
    bool insecure_skip_verify = false;
  } tls;

  Duration timeout = std::chrono::seconds(10);  // per request, connecting included
  uint64_t queue_max_bytes = uint64_t(64) << 20;  // unsent profiles kept
  Duration min_backoff = std::chrono::milliseconds(500);
  Duration max_backoff = std::chrono::seconds(30);

  std::string display_name() const;  // name, or the URL's origin
};
const char* api_name(ServerConfig::Api api);

// Cross-field rules for one server. On failure the message starts with the
// offending key relative to the server ("basic_auth.password: ...").
Status validate_server(const ServerConfig& s);

// How user stacks are walked (sampler.unwinder, --unwinder).
enum class UnwinderMode {
  kAuto,           // unwind tables when the kernel has bpf_loop (5.17), else frame pointers
  kTables,         // unwind tables, or fail
  kFramePointers,  // frame pointers only
};
// "auto", "tables", "fp"; nullopt otherwise.
std::optional<UnwinderMode> parse_unwinder(std::string_view text);
const char* unwinder_name(UnwinderMode m);

// How names are demangled (symbolizer.demangle, --demangle).
struct DemangleSetting {
  bool demangle = true;
  DemangleStyle style = DemangleStyle::kFull;
  bool operator==(const DemangleSetting&) const = default;
};
// "full" or "true", "simplified", "none" or "false"; nullopt otherwise.
std::optional<DemangleSetting> parse_demangle(std::string_view text);
const char* demangle_name(const DemangleSetting& d);  // "full", "simplified", "none"

// The kernel features sampler.disable_kernel_features may name; the same
// names as agent/sampler/kernel_features.h (a unit test keeps them equal).
inline const char* const kKernelFeatureNames[] = {"bpf_loop", "task_pt_regs"};

struct Config {
  int frequency_hz = 100;
  // Which profiles to take. cpu: where threads run (timer samples). off_cpu:
  // where they wait, by time switched out. wall: per thread, both added up.
  // `profiles: [cpu, off_cpu, wall]`; each is shipped as its own profile.
  struct Profiles {
    bool cpu = true;
    bool off_cpu = false;
    bool wall = false;
    bool operator==(const Profiles&) const = default;
  } profiles;
  // Off-CPU measurement (off_cpu and wall profiles). Waits shorter than
  // min_wait or longer than max_wait are left out in BPF and counted
  // (ember_bpf_offcpu_intervals_skipped_total); zero: no bound. A long
  // max_wait bound is how idle waits (pool threads parked until work comes)
  // are left out.
  struct OffCpu {
    Duration min_wait{0};
    Duration max_wait{0};
    // Threads switched out at once whose wait can be measured.
    uint64_t max_waiting_threads = 65536;
  } off_cpu;
  Duration interval = std::chrono::seconds(10);
  log::Level log_level = log::Level::kInfo;
  // Static labels added to every profile.
  Labels labels;

  struct Output {
    std::string directory = "/var/lib/ember/profiles";
    uint64_t max_bytes = uint64_t(1) << 30;
    // Set when the user named a directory (output.directory, --output-dir).
    // Files are written when no server is configured, or when this is set:
    // then to the directory and every server at once.
    bool directory_set = false;
  } output;

  struct Sampler {
    uint64_t ring_buffer_bytes = 0;  // 0: sized from CPUs and frequency
    bool kernel_stacks = true;
    bool user_stacks = true;
    bool include_idle = false;
    uint64_t max_processes = 65536;
    // User stacks: unwind tables where the kernel has bpf_loop, else frame
    // pointers (auto); tables only; frame pointers only.
    UnwinderMode unwinder = UnwinderMode::kAuto;
    // Kernel memory for unwind-table rows, preallocated at start.
    uint64_t unwind_table_bytes = uint64_t(32) << 20;
    // Share of unwind_table_bytes that binaries no process maps any more may
    // keep in the BPF maps (least recently released go first), 0 to 0.9.
    double unwind_table_retention = 0.25;
    // Kernel features not to use even where the kernel has them (names in
    // kKernelFeatureNames): to test older kernels' fallbacks on a newer one,
    // or to step around a kernel bug.
    std::vector<std::string> disable_kernel_features;
  } sampler;

  struct Symbolizer {
    DemangleSetting demangle;  // simplified: no parameters, template arguments
    bool lines = true;       // file:line and inlined frames (DWARF); false: names only
    // Where separate debug files live, searched in order (inside each
    // process's root). symbolizer.debug_dir and --debug-dir add to the
    // default, as gdb's debug-file-directory list does, so setting one does
    // not hide the system's debug files.
    std::vector<std::string> debug_dirs = {"/usr/lib/debug"};
    bool perf_maps = true;   // JIT symbols from /tmp/perf-PID.map
    uint64_t cache_max_binaries = 4096;
    uint64_t cache_max_bytes = uint64_t(512) << 20;
    // Debug files fetched by build-id when not on the host; off when empty.
    struct Debuginfod {
      std::vector<std::string> urls;
      std::string cache_dir = "/var/cache/ember/debuginfod";
      Duration timeout = std::chrono::seconds(10);
    } debuginfod;
  } symbolizer;

  // Roots of the host's pseudo-filesystems; in a container these are often
  // mounted elsewhere (e.g. /host/proc).
  struct Paths {
    std::string proc = "/proc";
    std::string sys = "/sys";
  } paths;

  // Profiling servers every profile is sent to (`servers:`, or the single
  // `server:` form). Empty: profiles go to output.directory instead.
  std::vector<ServerConfig> servers;
  // On SIGTERM/SIGINT, how long the agent may spend sending what it still
  // holds before it exits anyway (what is left is counted as dropped).
  Duration shutdown_timeout = std::chrono::seconds(10);

  // The self-metrics endpoint: Prometheus text at /metrics, health at
  // /healthz. "host:port"; empty disables it.
  struct MetricsEndpoint {
    std::string listen = kDefaultMetricsListen;
  } metrics;

  // Pod metadata for labels: one watch of this node's pods on the API
  // server (k8s/pod_watch.h). Blank fields take their in-cluster defaults
  // (k8s/kube_api.h resolve_in_cluster). The token is read from token_file;
  // it is never part of the config.
  struct Kubernetes {
    enum class Mode { kAuto, kOn, kOff };
    // auto: on inside a pod (KUBERNETES_SERVICE_HOST is set) or when
    // api_server is set; see kubernetes_enabled().
    Mode enabled = Mode::kAuto;
    std::string api_server;  // https://host:port; default from the in-cluster env
    std::string token_file;  // default: the service account token
    std::string ca_file;     // default: the service account CA bundle
    std::string node_name;   // default: $NODE_NAME; see kubernetes_node_name()
  } kubernetes;

  // Prometheus-style relabeling of every series (agent/label/relabel.h):
  // applied over the discovered __meta_* labels plus the default and static
  // labels; keep/drop rules decide which processes are profiled at all.
  std::vector<RelabelRule> relabel_configs;
};

// Looks up an environment variable (null when unset); ::getenv by default,
// a fake in tests.
using GetEnv = const char* (*)(const char*);

// Whether the agent watches pods: kubernetes.enabled, with auto meaning "in a
// pod (KUBERNETES_SERVICE_HOST set) or api_server configured".
bool kubernetes_enabled(const Config& c, GetEnv env = nullptr);
// kubernetes.node_name, else $NODE_NAME, else "".
std::string kubernetes_node_name(const Config& c, GetEnv env = nullptr);
const char* kubernetes_mode_name(Config::Kubernetes::Mode m);

// Parses "host:port" for a listening socket: an IPv4 or bracketed IPv6
// literal, "localhost", or nothing (":9799", every interface). Port 0 picks
// a free port.
struct ListenAddress {
  std::string host;  // IP literal; "" for every interface
  int port = 0;
};
Result<ListenAddress> parse_listen_address(const std::string& text);

// Parses YAML text; `source` names it in errors (usually the file path).
Result<Config> parse_config(const std::string& yaml, const std::string& source);
Result<Config> load_config_file(const std::string& path);

// Checks cross-field rules and ranges; called after overrides are applied.
Status validate_config(const Config& c);

// sampler.disable_kernel_features: a known name? And the names, for errors.
bool is_kernel_feature(const std::string& name);
// Adds a debug directory after those already listed (no duplicates).
void add_debug_dir(Config* c, const std::string& dir);
std::string kernel_feature_list();

// Parses sizes as users write them: 4096, 64KiB, 8MiB, 1GiB (K/M/G also
// mean binary multiples).
Result<uint64_t> parse_size(const std::string& text);
std::string format_size(uint64_t bytes);

// A commented YAML rendering of `c` (for --print-config and the packaged
// default file).
std::string render_config(const Config& c);

}  // namespace ember
