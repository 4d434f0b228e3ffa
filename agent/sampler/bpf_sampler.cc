#include "agent/sampler/bpf_sampler.h"
#include "common/thread_name.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <mutex>
#include <sstream>

#include "agent/sampler/load_diagnosis.h"
#include "common/drops.h"
#include "common/files.h"
#include "common/log.h"
#include "profile.skel.h"

namespace ember {
namespace {

// While a load is in progress, everything libbpf prints is kept here (debug
// level included: it names the fields of CO-RE relocations) so that a failure
// can be explained in one message (explain_load_failure). Loads happen on one
// thread at start; the mutex only guards against a stray print from elsewhere.
std::mutex g_capture_mu;
std::string* g_capture = nullptr;
constexpr size_t kMaxCapture = 4 << 20;  // a verifier log is at most a few MiB

int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  int n = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return n;
  std::string text(size_t(n) + 1, '\0');
  std::vsnprintf(text.data(), text.size(), fmt, ap);
  text.resize(size_t(n));
  while (!text.empty() && text.back() == '\n') text.pop_back();
  bool captured = false;
  {
    std::lock_guard<std::mutex> lock(g_capture_mu);
    if (g_capture) {
      captured = true;
      if (g_capture->size() < kMaxCapture) g_capture->append(text).push_back('\n');
    }
  }
  // libbpf is chatty at debug level; surface warnings (they explain load
  // failures, verifier log included) and hide the rest unless debugging.
  // During a load the failure is explained as one error, so libbpf's own
  // lines are kept for --log-level=debug.
  log::Level as = (level == LIBBPF_WARN && !captured) ? log::Level::kWarn : log::Level::kDebug;
  if (as == log::Level::kDebug && log::level() > log::Level::kDebug) return n;
  // The verifier log comes as one long message; keep it whole.
  if (!text.empty()) log::write(as, "%s", text.c_str());
  return n;
}

// Captures libbpf's output for as long as it lives.
class LibbpfCapture {
 public:
  LibbpfCapture() {
    std::lock_guard<std::mutex> lock(g_capture_mu);
    g_capture = &text_;
  }
  ~LibbpfCapture() {
    std::lock_guard<std::mutex> lock(g_capture_mu);
    g_capture = nullptr;
  }
  LibbpfCapture(const LibbpfCapture&) = delete;
  LibbpfCapture& operator=(const LibbpfCapture&) = delete;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

std::string running_kernel_release() {
  utsname u{};
  return uname(&u) == 0 ? std::string(u.release) : std::string();
}

uint64_t round_up_pow2(uint64_t v) {
  uint64_t p = 4096;
  while (p < v) p <<= 1;
  return p;
}

const char* stop_name(int stop) {
  switch (stop) {
    case EMBER_STOP_END: return "complete";
    case EMBER_STOP_TRUNCATED: return "truncated";
    case EMBER_STOP_NO_MAPPING: return "no_mapping";
    case EMBER_STOP_UNSUPPORTED: return "unsupported_cfi";
    case EMBER_STOP_READ_ERROR: return "read_error";
    case EMBER_STOP_BAD_FRAME: return "bad_frame";
    case EMBER_STOP_FP_END: return "frame_pointer_end";
    case EMBER_STOP_NO_TABLES: return "no_tables";
    case EMBER_STOP_FP_ONLY: return "frame_pointers";
  }
  return "unknown";
}

const char* counter_metric(int idx, std::string* labels) {
  if (idx >= EMBER_CTR_STOP_BASE && idx < EMBER_CTR_MAX) {
    *labels = std::string("reason=\"") + stop_name(idx - EMBER_CTR_STOP_BASE) + "\"";
    return "ember_bpf_unwind_stops_total";
  }
  switch (idx) {
    case EMBER_CTR_SAMPLES: return "ember_bpf_samples_total";
    case EMBER_CTR_SAMPLES_SENT: return "ember_bpf_samples_sent_total";
    case EMBER_CTR_FILTERED: return "ember_bpf_samples_filtered_total";
    case EMBER_CTR_IDLE: return "ember_bpf_samples_idle_total";
    case EMBER_CTR_DROP_RINGBUF_FULL:
      *labels = drop_labels(Drop::kSampleRingBufferFull);
      return drop_info(Drop::kSampleRingBufferFull).metric;
    case EMBER_CTR_KSTACK_ERROR: *labels = "stack=\"kernel\""; return "ember_bpf_stack_errors_total";
    case EMBER_CTR_USTACK_ERROR: *labels = "stack=\"user\""; return "ember_bpf_stack_errors_total";
    case EMBER_CTR_USTACK_EMPTY: return "ember_bpf_user_stack_empty_total";
    case EMBER_CTR_EVENT_DROP_RINGBUF_FULL:
      *labels = drop_labels(Drop::kEventRingBufferFull);
      return drop_info(Drop::kEventRingBufferFull).metric;
    case EMBER_CTR_TARGETS_FULL: return "ember_bpf_targets_full_total";
    case EMBER_CTR_STACK_COPIES: return "ember_bpf_stack_copies_total";
    case EMBER_CTR_VERDICT_SKIPPED: *labels = "reason=\"relabel_drop\""; return "ember_bpf_samples_skipped_total";
    case EMBER_CTR_OFFCPU_INTERVALS: return "ember_bpf_offcpu_intervals_total";
    case EMBER_CTR_OFFCPU_UNDRAWN: return "ember_bpf_offcpu_intervals_undrawn_total";
    case EMBER_CTR_OFFCPU_NO_SLOT:
      *labels = "reason=\"waiting_threads_full\"";
      return "ember_bpf_offcpu_intervals_lost_total";
    case EMBER_CTR_OFFCPU_UNMATCHED:
      *labels = "reason=\"not_in_system_call\"";
      return "ember_bpf_offcpu_intervals_lost_total";
    case EMBER_CTR_OFFCPU_RUNNABLE: return "ember_bpf_offcpu_runnable_switches_total";
    case EMBER_CTR_OFFCPU_DROPPED:
      *labels = "reason=\"relabel_drop\"";
      return "ember_bpf_offcpu_intervals_skipped_total";
    case EMBER_CTR_OFFCPU_SHORT:
      *labels = "reason=\"shorter_than_min_wait\"";
      return "ember_bpf_offcpu_intervals_skipped_total";
    case EMBER_CTR_RUNQ_UNDRAWN: return "ember_bpf_offcpu_runqueue_undrawn_total";
    case EMBER_CTR_RUNQ_END_LOST:
      *labels = "reason=\"ring_buffer_full\"";
      return "ember_bpf_offcpu_runqueue_ends_lost_total";
    case EMBER_CTR_OFFCPU_LONG:
      *labels = "reason=\"longer_than_max_wait\"";
      return "ember_bpf_offcpu_intervals_skipped_total";
  }
  return "ember_bpf_unknown_total";
}

// The verdict maps' keys are what BpfVerdictMaps passes (ember_abi.h).
static_assert(sizeof(ember_verdict_tgid_key) == sizeof(uint32_t));
static_assert(sizeof(ember_verdict_cgroup_key) == sizeof(uint64_t));
static_assert(EMBER_CTR_RUNQ_END_LOST < EMBER_CTR_STOP_BASE);

// The label stage's verdicts, written straight into the sampler's maps.
// Pipeline thread only (see VerdictSink).
class BpfVerdictMaps final : public VerdictSink {
 public:
  explicit BpfVerdictMaps(profile_bpf* skel) : skel_(skel) {}
  Put drop_tgid(uint32_t tgid) override { return put(skel_->maps.drop_tgids, &tgid, sizeof(tgid)); }
  void forget_tgid(uint32_t tgid) override {
    bpf_map__delete_elem(skel_->maps.drop_tgids, &tgid, sizeof(tgid), 0);
  }
  Put drop_cgroup(uint64_t id) override { return put(skel_->maps.drop_cgroups, &id, sizeof(id)); }
  void forget_cgroup(uint64_t id) override {
    bpf_map__delete_elem(skel_->maps.drop_cgroups, &id, sizeof(id), 0);
  }
  void drop_kernel_threads(bool drop) override {
    if (skel_->bss) skel_->bss->drop_kernel_threads = drop;
  }

 private:
  static Put put(bpf_map* map, const void* key, size_t key_size) {
    uint8_t one = 1;
    if (bpf_map__update_elem(map, key, key_size, &one, sizeof(one), BPF_ANY) == 0) return Put::kOk;
    return errno == E2BIG ? Put::kFull : Put::kError;
  }
  profile_bpf* skel_;
};

}  // namespace

uint64_t auto_ring_buffer_bytes(size_t cpus, int frequency_hz) {
  // A sample with full stacks is about 2 KiB; stack copies (up to 20 KiB)
  // come only from processes whose tables are not loaded yet. Size for one
  // second of 4 KiB samples, and never less than 2 MiB: on a host with
  // hundreds of busy processes the drain thread can wait a long time for a
  // CPU while a burst of new processes sends stack copies, and bench/ship
  // sometimes lost samples to a full 512 KiB or 1 MiB ring that way. Not
  // more by default: the ring is mapped twice into the agent (for
  // wrap-around reads), so it counts double in its RSS.
  constexpr uint64_t kTypicalSample = 4096;
  uint64_t bytes = uint64_t(cpus) * uint64_t(std::max(frequency_hz, 1)) * kTypicalSample;
  return std::min<uint64_t>(round_up_pow2(std::max<uint64_t>(bytes, 2ull << 20)), 256ull << 20);
}

Result<std::vector<int>> parse_cpu_list(const std::string& text) {
  std::vector<int> cpus;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    while (!part.empty() && (part.back() == '\n' || part.back() == ' ')) part.pop_back();
    if (part.empty()) continue;
    int a = 0, b = 0;
    char dash = 0;
    std::stringstream ps(part);
    ps >> a;
    if (ps.fail()) return Errorf("bad CPU list '%s'", text.c_str());
    if (ps >> dash) {
      if (dash != '-' || !(ps >> b) || b < a) return Errorf("bad CPU list '%s'", text.c_str());
    } else {
      b = a;
    }
    for (int c = a; c <= b; ++c) cpus.push_back(c);
  }
  if (cpus.empty()) return Errorf("empty CPU list");
  return cpus;
}

Result<std::vector<int>> online_cpus(const std::string& sysfs_root) {
  auto text = read_file(sysfs_root + "/devices/system/cpu/online");
  if (!text) return text.error();
  return parse_cpu_list(*text);
}

void BpfSampler::SkelDeleter::operator()(profile_bpf* s) const { profile_bpf__destroy(s); }

void BpfSampler::LinkDeleter::operator()(bpf_link* l) const { bpf_link__destroy(l); }
void BpfSampler::RingDeleter::operator()(ring_buffer* r) const { ring_buffer__free(r); }

BpfSampler::BpfSampler(RecordFn on_record, DrainedFn on_drained, Metrics& metrics)
    : on_record_(std::move(on_record)), on_drained_(std::move(on_drained)), metrics_(metrics) {
  for (int i = 0; i < EMBER_CTR_MAX; ++i) {
    std::string labels;
    const char* name = counter_metric(i, &labels);
    // Counters mirror the kernel's monotonically growing sums.
    counters_[size_t(i)] = &metrics_.counter(name, labels);
  }
}

Result<BpfSampler::SkelPtr> BpfSampler::load_skeleton(const SamplerOptions& opts,
                                                      const LoadPlan& plan) {
  libbpf_set_print(libbpf_log);
  LIBBPF_OPTS(bpf_object_open_opts, open_opts);
  if (!plan.btf_path.empty()) open_opts.btf_custom_path = plan.btf_path.c_str();
  SkelPtr skel(profile_bpf__open_opts(&open_opts));
  if (!skel) return Errorf("cannot open the BPF object: %s", std::strerror(errno));

  const bool tables = plan.tables;
  bpf_program__set_autoload(skel->progs.ember_sample_dwarf, tables);
  bpf_program__set_autoload(skel->progs.ember_sample_fp, !tables || plan.check_only);
  // The fork tracker only matters when following a process tree.
  bpf_program__set_autoload(skel->progs.ember_fork, opts.filter_targets || plan.check_only);
  // Off-CPU programs as the sampling ones: the table variant where tables
  // are in use, the frame-pointer one otherwise, and a check loads both.
  const bool off_cpu = opts.off_cpu || plan.check_only;
  bpf_program__set_autoload(skel->progs.ember_switch_dwarf, off_cpu && tables);
  bpf_program__set_autoload(skel->progs.ember_switch_fp, off_cpu && (!tables || plan.check_only));
  bpf_program__set_autoload(skel->progs.ember_sys_exit_dwarf, off_cpu && tables);
  bpf_program__set_autoload(skel->progs.ember_sys_exit_fp, off_cpu && (!tables || plan.check_only));

  // Knobs and sizes are fixed before load. A check loads the programs with
  // every optional path on, and maps at their smallest.
  skel->rodata->filter_targets = opts.filter_targets || plan.check_only;
  skel->rodata->stack_copy_bytes = std::min<uint32_t>(opts.stack_copy_bytes, EMBER_STACK_COPY_MAX);
  skel->rodata->include_idle = opts.include_idle;
  skel->rodata->include_kernel = opts.kernel_stacks;
  skel->rodata->include_user = opts.user_stacks;
  skel->rodata->sample_period_ns = 1'000'000'000ull / uint64_t(std::max(opts.frequency_hz, 1));
  // Below 2^32 (the draw's arithmetic needs it): frequency is at least 1 Hz.
  skel->rodata->offcpu_period_ns = skel->rodata->sample_period_ns;
  skel->rodata->offcpu_min_wait_ns = opts.off_cpu_min_wait_ns;
  skel->rodata->offcpu_max_wait_ns = opts.off_cpu_max_wait_ns;
  skel->rodata->check_verdicts = opts.check_verdicts || plan.check_only;
  skel->rodata->have_task_pt_regs = plan.features.task_pt_regs;
  skel->rodata->ring_wake_bytes = plan.check_only ? 0 : plan.ring_bytes / 4;
  auto size = [&](uint32_t want, uint32_t smallest) { return plan.check_only ? smallest : std::max(want, smallest); };
  bpf_map__set_max_entries(skel->maps.drop_tgids, size(opts.verdict_tgid_entries, 16));
  bpf_map__set_max_entries(skel->maps.drop_cgroups, size(opts.verdict_cgroup_entries, 16));
  bpf_map__set_max_entries(skel->maps.events, plan.check_only ? 64 << 10 : uint32_t(plan.ring_bytes));
  bpf_map__set_max_entries(skel->maps.targets, size(opts.max_targets, 16));
  bpf_map__set_max_entries(skel->maps.seen_tgids, size(opts.max_processes, 16));
  bpf_map__set_max_entries(skel->maps.offcpu_start,
                           off_cpu ? size(opts.max_waiting_threads, 16) : 1);
  if (tables) {
    uint32_t pages = uint32_t(std::max<uint64_t>(opts.unwind_table_bytes / sizeof(ember_row_page), 1));
    if (plan.check_only) pages = 1;
    bpf_map__set_max_entries(skel->maps.unwind_rows, pages);
    // One index entry covers 64 KiB of text; real code has ~1000 rows there.
    bpf_map__set_max_entries(skel->maps.unwind_index, std::max<uint32_t>(pages * 64, 4096));
    bpf_map__set_max_entries(skel->maps.unwind_mappings, size(opts.unwind_mapping_entries, 1024));
    bpf_map__set_max_entries(skel->maps.unwind_procs, size(opts.max_processes, 16));
  }

  LibbpfCapture capture;
  if (int err = profile_bpf__load(skel.get()); err != 0)
    return Error{explain_load_failure(capture.text(), plan.kernel, err) +
                 "\n  (--log-level=debug prints libbpf's whole log)"};
  return skel;
}

Result<LoadCheck> BpfSampler::check_load(const SamplerOptions& opts, const std::string& btf_path) {
  libbpf_set_print(libbpf_log);
  LoadPlan plan;
  if (btf_path.empty()) {
    plan.features = probe_running_kernel();
    plan.kernel = running_kernel_release();
  } else {
    auto f = kernel_features_from_btf(btf_path);
    if (!f) return f.error();
    plan.features = *f;
    plan.btf_path = btf_path;
    plan.kernel = "the kernel of " + btf_path;
  }
  for (const auto& name : opts.disabled_features)
    if (auto st = disable_kernel_feature(&plan.features, name); !st) return st.error();
  plan.tables = plan.features.bpf_loop && opts.unwinder != UnwinderMode::kFramePointers;
  plan.check_only = true;
  auto skel = load_skeleton(opts, plan);
  if (!skel) return skel.error();
  LoadCheck check;
  check.features = plan.features;
  bpf_program* prog;
  bpf_object__for_each_program(prog, (*skel)->obj) {
    if (bpf_program__autoload(prog)) check.programs.emplace_back(bpf_program__name(prog));
  }
  return check;
}

Result<std::unique_ptr<BpfSampler>> BpfSampler::create(const SamplerOptions& opts,
                                                       RecordFn on_record, DrainedFn on_drained,
                                                       Metrics& metrics) {
  libbpf_set_print(libbpf_log);
  if (opts.frequency_hz <= 0) return Errorf("frequency must be positive");
  if (!opts.cpu && !opts.off_cpu) return Errorf("nothing to measure");
  auto cpus = online_cpus(opts.sysfs_root);
  if (!cpus) return cpus.error();

  std::unique_ptr<BpfSampler> s(new BpfSampler(std::move(on_record), std::move(on_drained), metrics));
  LoadPlan plan;
  plan.kernel = running_kernel_release();
  plan.features = probe_running_kernel();
  const KernelFeatures probed = plan.features;
  for (const auto& name : opts.disabled_features)
    if (auto st = disable_kernel_feature(&plan.features, name); !st) return st.error();
  s->features_ = plan.features;
  s->drain_poll_ms_ = int(std::clamp<int64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(opts.drain_period).count(), 1, 10'000));
  if (probed.task_pt_regs && !plan.features.task_pt_regs)
    EMBER_INFO("bpf_task_pt_regs is off (sampler.disable_kernel_features): user stacks of "
               "samples taken in the kernel come from the kernel's frame-pointer walk");

  // The table-driven unwinder needs bpf_loop (Linux 5.17).
  bool tables = opts.unwinder != UnwinderMode::kFramePointers;
  if (tables && !plan.features.bpf_loop) {
    const std::string why = probed.bpf_loop
                                ? std::string("bpf_loop is off (sampler.disable_kernel_features)")
                                : "this kernel (" + plan.kernel + ") lacks bpf_loop (Linux 5.17+)";
    if (opts.unwinder == UnwinderMode::kTables)
      return Errorf("%s, which the table-driven unwinder needs; use frame pointers instead",
                    why.c_str());
    EMBER_WARN("%s: unwinding user stacks with frame pointers only; code built without them "
               "will show truncated stacks",
               why.c_str());
    tables = false;
  }
  s->uses_tables_ = tables;
  plan.tables = tables;
  plan.ring_bytes = opts.ring_buffer_bytes ? round_up_pow2(opts.ring_buffer_bytes)
                                           : auto_ring_buffer_bytes(cpus->size(), opts.frequency_hz);
  auto loaded = load_skeleton(opts, plan);
  if (!loaded) return loaded.error();
  s->skel_ = std::move(*loaded);
  profile_bpf* skel = s->skel_.get();

  if (tables) {
    auto& um = s->unwind_maps_;
    um.rows = bpf_map__fd(skel->maps.unwind_rows);
    um.index = bpf_map__fd(skel->maps.unwind_index);
    um.rules = bpf_map__fd(skel->maps.unwind_rules);
    um.mappings = bpf_map__fd(skel->maps.unwind_mappings);
    um.procs = bpf_map__fd(skel->maps.unwind_procs);
    um.row_pages = bpf_map__max_entries(skel->maps.unwind_rows);
    um.index_entries = bpf_map__max_entries(skel->maps.unwind_index);
    um.rule_entries = bpf_map__max_entries(skel->maps.unwind_rules);
    um.mapping_entries = bpf_map__max_entries(skel->maps.unwind_mappings);
    // Array maps preallocate everything; the hash adds ~48 bytes per element.
    for (bpf_map* m : {skel->maps.unwind_rows, skel->maps.unwind_index, skel->maps.unwind_rules,
                       skel->maps.unwind_mappings})
      s->unwind_map_bytes_ += uint64_t((bpf_map__value_size(m) + 7) & ~7u) * bpf_map__max_entries(m);
    s->unwind_map_bytes_ += uint64_t(bpf_map__max_entries(skel->maps.unwind_procs)) *
                            (sizeof(ember_proc) + sizeof(uint32_t) + 48);
  }

  if (opts.check_verdicts) s->verdicts_ = std::make_unique<BpfVerdictMaps>(skel);

  if (opts.collect_bpf_stats) {
    int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (fd >= 0) s->stats_fd_.reset(fd);
    else EMBER_WARN("cannot enable BPF run-time stats: %s", std::strerror(errno));
  }

  // The ring buffer exists before anything is attached, so no record is
  // produced that nobody can read.
  s->ring_.reset(ring_buffer__new(bpf_map__fd(skel->maps.events), &BpfSampler::on_ring_record,
                                  s.get(), nullptr));
  if (!s->ring_) return Errorf("cannot set up the ring buffer: %s", std::strerror(errno));

  // Process lifecycle tracepoints first: an exec during attach must not be
  // missed by a sample that follows it.
  struct bpf_program* tps[] = {skel->progs.ember_exec, skel->progs.ember_exit,
                               opts.filter_targets ? skel->progs.ember_fork : nullptr};
  for (auto* prog : tps) {
    if (!prog) continue;
    bpf_link* link = bpf_program__attach(prog);
    if (!link)
      return Errorf("cannot attach %s: %s", bpf_program__name(prog), std::strerror(errno));
    s->links_.emplace_back(link);
  }

  if (opts.off_cpu) {
    // The system-call exit first, so no owed sample waits for a hook that
    // is not there yet.
    for (bpf_program* prog : {tables ? skel->progs.ember_sys_exit_dwarf : skel->progs.ember_sys_exit_fp,
                              tables ? skel->progs.ember_switch_dwarf : skel->progs.ember_switch_fp}) {
      bpf_link* link = bpf_program__attach(prog);
      if (!link) return Errorf("cannot attach %s: %s", bpf_program__name(prog), std::strerror(errno));
      s->links_.emplace_back(link);
    }
  }
  if (!opts.cpu) return s;  // off-CPU only: no timer

  perf_event_attr attr{};
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.size = sizeof(attr);
  attr.freq = 1;
  attr.sample_freq = uint64_t(opts.frequency_hz);
  for (int cpu : *cpus) {
    UniqueFd pfd(int(syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC)));
    if (!pfd.valid()) {
      if (errno == ENODEV) continue;  // went offline since we read the list
      return Errorf("perf_event_open on CPU %d failed: %s", cpu, std::strerror(errno));
    }
    bpf_program* prog = tables ? skel->progs.ember_sample_dwarf : skel->progs.ember_sample_fp;
    bpf_link* link = bpf_program__attach_perf_event(prog, pfd.get());
    if (!link)
      return Errorf("cannot attach the sampler to CPU %d: %s", cpu, std::strerror(errno));
    pfd.release();  // the link owns the perf event fd now
    s->links_.emplace_back(link);
    s->cpus_++;
  }
  if (s->cpus_ == 0) return Errorf("no online CPU could be sampled");
  return s;
}

BpfSampler::~BpfSampler() {
  stop();
  // Members are destroyed in reverse order: the ring buffer before the
  // links, the links (detaching every program) before the skeleton.
}

Status BpfSampler::add_target(uint32_t tgid) {
  uint8_t one = 1;
  if (bpf_map__update_elem(skel_->maps.targets, &tgid, sizeof(tgid), &one, sizeof(one), BPF_ANY) != 0)
    return Errorf("cannot add pid %u to the target set: %s", tgid, std::strerror(errno));
  return {};
}

int BpfSampler::on_ring_record(void* ctx, void* data, size_t size) {
  static_cast<BpfSampler*>(ctx)->on_record_(data, size);
  return 0;
}

void BpfSampler::drain_loop() {
  name_this_thread("ember-drain");
  // The ring only empties when this thread runs. On a host with hundreds of
  // busy processes at the agent's priority, a thread waking every 50 ms can
  // wait long enough for a CPU that the ring fills (bench/ship saw this), so
  // the drain thread asks for a slightly larger share than the rest of the
  // agent: 5 nice levels above it. It needs CAP_SYS_NICE; without it the
  // ring's size is the only cushion.
  pid_t tid = pid_t(syscall(SYS_gettid));
  errno = 0;
  int nice_now = getpriority(PRIO_PROCESS, id_t(tid));
  if (errno == 0 && setpriority(PRIO_PROCESS, id_t(tid), std::max(nice_now - 5, -20)) != 0)
    EMBER_DEBUG("drain thread keeps nice %d: %s", nice_now, std::strerror(errno));
  while (!stop_.load(std::memory_order_acquire)) {
    // Samples do not wake us (that would cost a wakeup per sample); exec
    // events, a new process's first samples and a quarter-full ring do. So
    // poll on a timer (SamplerOptions::drain_period), then consume everything.
    int rc = ring_buffer__poll(ring_.get(), drain_poll_ms_);
    if (rc < 0 && rc != -EINTR) {
      EMBER_WARN_LIMITED("ring buffer poll failed: %s", std::strerror(-rc));
    }
    ring_buffer__consume(ring_.get());
    if (on_drained_) on_drained_();
  }
  ring_buffer__consume(ring_.get());
  if (on_drained_) on_drained_();
}

void BpfSampler::start() {
  if (drain_thread_.joinable()) return;
  stop_.store(false);
  drain_thread_ = std::thread([this] { drain_loop(); });
}

void BpfSampler::stop() {
  stop_.store(true, std::memory_order_release);
  if (drain_thread_.joinable()) drain_thread_.join();
}

std::array<uint64_t, EMBER_CTR_MAX> BpfSampler::read_counters() {
  std::array<uint64_t, EMBER_CTR_MAX> sums{};
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return sums;
  std::vector<uint64_t> values(static_cast<size_t>(ncpu));
  for (uint32_t i = 0; i < EMBER_CTR_MAX; ++i) {
    if (bpf_map__lookup_elem(skel_->maps.counters, &i, sizeof(i), values.data(),
                             values.size() * sizeof(uint64_t), 0) != 0)
      continue;
    for (uint64_t v : values) sums[i] += v;
    counters_[i]->set(sums[i]);
  }
  return sums;
}

BpfSampler::ProgStats BpfSampler::sample_prog_stats() const {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  ProgStats st;
  bpf_program* prog = uses_tables_ ? skel_->progs.ember_sample_dwarf : skel_->progs.ember_sample_fp;
  if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) {
    st.run_time_ns = info.run_time_ns;
    st.run_count = info.run_cnt;
  }
  return st;
}

}  // namespace ember
