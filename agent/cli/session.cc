#include "agent/cli/session.h"

#include "agent/label/labeler.h"
#include "agent/runtimes/register.h"
#include "common/in_root.h"

namespace ember {

Result<std::unique_ptr<Session>> Session::create(const SessionOptions& opts, Exporter& exporter) {
  const Config& c = opts.config;
  const Clock& clock = SystemClock::instance();
  std::unique_ptr<Session> s(new Session());
  s->proc_root_ = c.paths.proc;

  SymbolizerOptions so;
  so.proc_root = c.paths.proc;
  so.demangle = c.symbolizer.demangle.demangle;
  so.cache.max_entries = size_t(c.symbolizer.cache_max_binaries);
  so.cache.max_bytes = size_t(c.symbolizer.cache_max_bytes);
  so.demangle_style = c.symbolizer.demangle.style;
  so.lines = c.symbolizer.lines;
  so.debug_dirs = c.symbolizer.debug_dirs;
  so.perf_maps = c.symbolizer.perf_maps;
  so.clock = &clock;
  if (!c.symbolizer.debuginfod.urls.empty()) {
    DebuginfodClient::Options d;
    d.urls = c.symbolizer.debuginfod.urls;
    d.cache_dir = c.symbolizer.debuginfod.cache_dir;
    d.timeout_s = int(std::chrono::duration_cast<std::chrono::seconds>(c.symbolizer.debuginfod.timeout).count());
    auto client = DebuginfodClient::create(d);
    if (!client) return client.error();  // asked for and unusable: a setup failure
    so.debuginfod = std::move(*client);
  }
  s->symbolizer_ = std::make_unique<Symbolizer>(so);

  unwind::UnwindTableCache::Options uo;
  uo.max_bytes = size_t(opts.unwind_cache_bytes);
  uo.debug_dirs = c.symbolizer.debug_dirs;
  s->unwind_cache_ = std::make_unique<unwind::UnwindTableCache>(uo);

  ProcessTable::Options pt;
  pt.proc_root = c.paths.proc;
  pt.max_processes = size_t(c.sampler.max_processes);
  Symbolizer* sym = s->symbolizer_.get();
  pt.file_known = [sym](uint64_t dev, uint64_t ino) { return sym->knows_file(dev, ino); };
  const UnwinderMode unwinder = c.sampler.unwinder;
  bool may_use_tables = unwinder != UnwinderMode::kFramePointers;
  pt.pin_consumers = may_use_tables ? (kPinSymbolizer | kPinUnwinder) : kPinSymbolizer;
  Session* self = s.get();
  pt.on_snapshot = [self](std::shared_ptr<const ProcessSnapshot> snap) {
    if (self->tables_hook_) self->tables_hook_->process_seen(std::move(snap));
  };
  pt.on_exit = [self](uint32_t pid) {
    if (self->tables_hook_) self->tables_hook_->process_exited(pid);
  };
  s->processes_ = std::make_unique<ProcessTable>(pt, clock, s->metrics_);

  s->origins_ = std::make_unique<FrameOrigins>(
      make_origins(OriginDeps{s->metrics_, s->symbolizer_.get()}));
  s->unwinder_ = std::make_unique<StackUnwinder>(s->metrics_, s->unwind_cache_.get(), *s->origins_);
  s->symbolize_ = std::make_unique<DefaultSymbolizeStage>(*s->origins_, s->processes_.get(),
                                                          clock, s->metrics_);
  ProcessLabeler::Options lo;
  lo.single_series = opts.single_series;
  lo.static_labels = c.labels;
  if (!opts.single_series) {
    // Whole-system series: discovered labels, defaults, relabel_configs.
    lo.proc_root = c.paths.proc;
    lo.sys_root = c.paths.sys;
    lo.relabel_configs = c.relabel_configs;
    lo.kubernetes = kubernetes_enabled(c);
    lo.node_name = kubernetes_node_name(c);
    lo.pods = opts.pods;
    lo.max_processes = size_t(c.sampler.max_processes);
    lo.metrics = &s->metrics_;
  }
  s->labeler_ = std::make_unique<ProcessLabeler>(lo);
  StackAggregator::Options ao;
  ao.frequency_hz = c.frequency_hz;
  ao.profiles = {c.profiles.cpu, c.profiles.off_cpu, c.profiles.wall};
  ProcessLabeler* labeler = s->labeler_.get();
  ao.resolve_pending = [labeler](const PendingLabels& p) { return labeler->resolve_pending(p); };
  s->aggregator_ = std::make_unique<StackAggregator>(ao, s->metrics_);

  Pipeline::Options po;
  po.interval = opts.interval;
  s->pipeline_ = std::make_unique<Pipeline>(
      po, Pipeline::Stages{*s->unwinder_, *s->symbolize_, *s->labeler_, *s->aggregator_, exporter},
      s->processes_.get(), clock, s->metrics_);

  SamplerOptions sa;
  sa.frequency_hz = c.frequency_hz;
  // A wall-clock profile is made of both kinds of sample.
  sa.cpu = c.profiles.cpu || c.profiles.wall;
  sa.off_cpu = c.profiles.off_cpu || c.profiles.wall;
  sa.max_waiting_threads = uint32_t(c.off_cpu.max_waiting_threads);
  sa.off_cpu_min_wait_ns = uint64_t(c.off_cpu.min_wait.count());
  sa.off_cpu_max_wait_ns = uint64_t(c.off_cpu.max_wait.count());
  // A tenth of the interval, between 100 ms and 1 s: samples of long-lived
  // processes reach their interval's profile however late in it they come,
  // and the agent at its default 10 s drains once a second (a quarter of
  // the CPU it spent draining every 250 ms). One-shot recordings keep 250 ms.
  if (opts.interval.count() > 0)
    sa.drain_period = std::clamp<Duration>(opts.interval / 10, std::chrono::milliseconds(100),
                                           std::chrono::seconds(1));
  sa.ring_buffer_bytes = c.sampler.ring_buffer_bytes;
  sa.filter_targets = opts.filter_targets;
  sa.max_processes = uint32_t(c.sampler.max_processes);
  sa.include_idle = c.sampler.include_idle;
  sa.kernel_stacks = c.sampler.kernel_stacks;
  sa.user_stacks = c.sampler.user_stacks;
  sa.sysfs_root = c.paths.sys;
  sa.collect_bpf_stats = opts.collect_bpf_stats;
  sa.unwinder = unwinder;
  sa.unwind_table_bytes = c.sampler.unwind_table_bytes;
  sa.disabled_features = c.sampler.disable_kernel_features;
  // Drop verdicts reach the kernel only when the rules can drop anything.
  sa.check_verdicts = !opts.single_series && s->labeler_->can_drop();
  sa.verdict_tgid_entries = uint32_t(c.sampler.max_processes);
  Pipeline* pipeline = s->pipeline_.get();
  auto sampler = BpfSampler::create(
      sa, [pipeline](const void* data, size_t size) { pipeline->on_record(data, size); },
      [pipeline] { pipeline->on_drained(); }, s->metrics_);
  if (!sampler) return sampler.error();
  s->sampler_ = std::move(*sampler);
  s->labeler_->set_verdict_sink(s->sampler_->verdicts());
  if (s->sampler_->uses_tables()) {
    unwind::BpfUnwindTables::Options to;
    to.retention = c.sampler.unwind_table_retention;
    s->unwind_tables_ = std::make_unique<unwind::BpfUnwindTables>(
        unwind::make_bpf_map_writer(s->sampler_->unwind_maps()), *s->unwind_cache_, clock,
        s->metrics_, to);
    s->tables_hook_ = s->unwind_tables_.get();
    s->metrics_.gauge("ember_unwind_map_bytes", "", "Kernel memory of the unwind maps (preallocated)")
        .set(s->sampler_->unwind_map_bytes());
    s->preload_ = opts.preload_processes;
  } else {
    s->processes_->set_pin_consumers(kPinSymbolizer);  // no table loader will read pins
  }
  return s;
}

Session::~Session() { stop(); }

void Session::publish_cache_stats() {
  Metrics& m = metrics_;
  auto cs = symbolizer_->cache_stats();
  m.counter("ember_symbolizer_cache_hits_total", "", "Binary cache lookups that hit").set(cs.hits);
  m.counter("ember_symbolizer_cache_misses_total", "", "Binary cache lookups that missed (a binary was parsed)")
      .set(cs.misses);
  m.counter("ember_symbolizer_cache_evictions_total", "", "Binaries evicted from the cache").set(cs.evictions);
  m.counter("ember_symbolizer_cache_errors_total", "", "Binaries that could not be parsed").set(cs.errors);
  m.gauge("ember_symbolizer_binaries", "", "Parsed binaries held in the cache").set(cs.entries);
  m.gauge("ember_symbolizer_cache_bytes", "", "Memory held by parsed symbol tables").set(cs.bytes);
  // A process gone before its binary was parsed (and whose root nothing
  // held) defers the debug-file lookup; the next live process retries it.
  const char* deferred_help = "Debug-file lookups deferred because the process's root was gone, by cache";
  m.counter("ember_debug_lookups_deferred_total", "cache=\"symbols\"", deferred_help).set(cs.debug_deferred);
  const char* retry_help = "Deferred debug-file lookups made again for a live process, by cache and result";
  m.counter("ember_debug_lookup_retries_total", "cache=\"symbols\",result=\"found\"", retry_help)
      .set(cs.debug_retries_found);
  m.counter("ember_debug_lookup_retries_total", "cache=\"symbols\",result=\"not_found\"", retry_help)
      .set(cs.debug_retries - cs.debug_retries_found);
  auto us = unwind_cache_->stats();
  m.counter("ember_debug_lookups_deferred_total", "cache=\"unwind\"", deferred_help).set(us.debug_deferred);
  m.counter("ember_debug_lookup_retries_total", "cache=\"unwind\",result=\"rebuilt\"", retry_help)
      .set(us.debug_retries);
  m.counter("ember_unwind_table_builds_total", "", "Unwind tables built from CFI").set(us.misses + us.debug_retries);
  m.counter("ember_unwind_table_cache_hits_total", "", "Unwind tables found already built").set(us.hits);
  auto pm = symbolizer_->perf_map_stats();
  m.counter("ember_jit_map_lookups_total", "result=\"hit\"", "JIT addresses looked up in perf maps").set(pm.hits);
  m.counter("ember_jit_map_lookups_total", "result=\"miss\"", "JIT addresses looked up in perf maps")
      .set(pm.misses);
  m.gauge("ember_jit_map_processes", "", "Processes whose perf map is held").set(pm.processes);
  m.gauge("ember_jit_map_bytes", "", "Memory held by perf maps").set(pm.bytes);
  // A perf map is written by the workload: its bounds are counted, so a
  // hostile or runaway map shows up here rather than in the agent's RSS.
  const char* jit_bound_help = "Perf map lines or maps cut by a bound, by reason";
  m.counter("ember_jit_map_bounded_total", "reason=\"map_full\"", jit_bound_help).set(pm.filled);
  m.counter("ember_jit_map_bounded_total", "reason=\"evicted_for_bytes\"", jit_bound_help)
      .set(pm.evicted_for_bytes);
  m.counter("ember_jit_map_bounded_total", "reason=\"name_truncated\"", jit_bound_help).set(pm.truncated);
  m.counter("ember_jit_map_bounded_total", "reason=\"malformed_line\"", jit_bound_help).set(pm.malformed);
  // Every file a workload names is opened inside its root; kept_in_root is
  // a path that leads out of it the host's way (an absolute symlink or a
  // ".." above the root), which a hostile container would use.
  const char* paths_help =
      "Files named by a workload (mapped files, debug files, perf maps), opened inside its root, by result";
  for (size_t i = 0; i < kInRootResultCount; ++i) {
    auto r = InRootResult(i);
    m.counter("ember_workload_paths_total", std::string("result=\"") + in_root_result_name(r) + "\"",
              paths_help)
        .set(in_root_count(r));
  }
  if (const DebuginfodClient* d = symbolizer_->debuginfod()) {
    auto ds = d->stats();
    const char* help = "Debug files asked of debuginfod servers, by result";
    m.counter("ember_debuginfod_requests_total", "result=\"found\"", help).set(ds.fetched);
    m.counter("ember_debuginfod_requests_total", "result=\"not_found\"", help).set(ds.not_found);
    m.counter("ember_debuginfod_requests_total", "result=\"skipped_recent_miss\"", help).set(ds.skipped);
  }
}

void Session::start() {
  if (unwind_tables_) {
    unwind_tables_->start();
    if (preload_) unwind_tables_->preload_all(proc_root_);
  }
  pipeline_->start();
  sampler_->start();
}

void Session::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (sampler_) {
    sampler_->stop();  // final drain happens here, in ring order
    sampler_->read_counters();
  }
  if (pipeline_) pipeline_->stop();
  tables_hook_ = nullptr;
  unwind_tables_.reset();
}

}  // namespace ember
