// SPDX-License-Identifier: GPL-2.0
/* Ember's sampler: a perf_event program that fires on a CPU-clock software
 * event on every online CPU, plus three scheduler tracepoints that keep user
 * space's view of processes right (exec, exit, and fork for target sets).
 * For off-CPU and wall-clock profiles, sched_switch measures how long each
 * thread was switched out, and sys_exit sends the waits drawn (see the
 * off-CPU section below).
 *
 * Every sample goes to user space through one ring buffer, in the order it
 * was taken, interleaved with exec/exit events. Nothing is aggregated here:
 * user space owns symbolization and aggregation, and the ring preserves the
 * ordering that makes "symbolize a process after it exited" possible.
 *
 * Knobs live in .rodata and are fixed before load; map sizes are set by the
 * loader from config before load.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "ember_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* --- knobs, set by the loader before load ------------------------------- */
const volatile bool filter_targets = false; /* only sample tgids in `targets` */
const volatile bool include_idle = false;   /* sample the idle task (pid 0) */
const volatile bool include_kernel = true;  /* capture kernel stacks */
const volatile bool include_user = true;    /* capture user stacks */
/* Nanoseconds of CPU time one sample stands for: 1e9 / frequency. */
const volatile __u64 sample_period_ns = 10000000;
/* After an exec, samples wake user space for this long: the dynamic loader
 * is still mapping libraries, and a short-lived process may exit before a
 * batched drain would see it. */
const volatile __u64 young_process_ns = 100000000;
/* Wake the drain thread once this much waits in the ring (0: never), so a
 * long poll timer cannot let a busy host fill it. */
const volatile __u64 ring_wake_bytes = 0;
/* Bytes of user stack handed to user space when the tables cannot finish a
 * walk (0: never copy). At most EMBER_STACK_COPY_MAX. */
const volatile __u32 stack_copy_bytes = EMBER_STACK_COPY_MAX;
/* Consult drop_tgids/drop_cgroups: set only when relabel_configs can drop
 * processes, so `ember record` and rule-less agents pay nothing. */
const volatile bool check_verdicts = false;
/* The kernel has bpf_task_pt_regs (5.15): samples taken in kernel mode get
 * their user registers from the task's saved entry registers. Set from a
 * probe, not from CO-RE, so tests can turn it off on a newer kernel. */
const volatile bool have_task_pt_regs = false;
/* Off-CPU sampling period: an interval of d ns off CPU is emitted with
 * probability min(1, d / offcpu_period_ns) and weight max(d, period), so the
 * expected weight is d whatever the mix of short and long waits (no bias
 * toward either), and a storm of short switches costs about one sample per
 * period of time switched out, not one per switch. */
const volatile __u64 offcpu_period_ns = 10000000;
/* Waits left out, before the draw: shorter than the minimum (short lock
 * handoffs), longer than the maximum (a pool thread parked until work came;
 * idle waits). 0: no bound. Each is counted. */
const volatile __u64 offcpu_min_wait_ns = 0;
const volatile __u64 offcpu_max_wait_ns = 0;
/* Written by user space after load (not a knob): relabeling dropped the
 * kernel-thread series. */
volatile bool drop_kernel_threads = false;

/* --- maps ---------------------------------------------------------------- */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 8 << 20); /* resized from config before load */
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, EMBER_CTR_MAX);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

/* The processes to profile when filter_targets is set; children are added on
 * fork so "a command and all its descendants" is tracked in the kernel. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384); /* resized from config before load */
  __type(key, __u32);
  __type(value, __u8);
} targets SEC(".maps");

/* Processes relabeling dropped (ember_abi.h, agent/label/verdict.h). Plain
 * hashes, bounded: user space counts a full map and keeps dropping those
 * samples itself. Exec and exit delete tgid entries here. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384); /* resized from config before load */
  __type(key, ember_verdict_tgid_key);
  __type(value, __u8);
} drop_tgids SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096); /* resized from config before load */
  __type(key, ember_verdict_cgroup_key);
  __type(value, __u8);
} drop_cgroups SEC(".maps");

/* --- unwind tables (layout in ember_abi.h; filled by agent/unwind/bpf_tables)
 * User space writes rows, index and mappings first, then publishes a process
 * through unwind_procs. Sizes are set before load. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ember_row_page);
} unwind_rows SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ember_text_page);
} unwind_index SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, struct ember_unwind_rule);
} unwind_rules SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ember_mapping);
} unwind_mappings SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32);
  __type(value, struct ember_proc);
} unwind_procs SEC(".maps");

/* Processes user space has been woken for, with the time until which their
 * samples still wake it (set at exec). The first sample of a process not in
 * here, and every sample of a young process, wakes the drain thread at once
 * so it reads /proc/PID/maps while the process exists; all other samples are
 * batched. Exit removes the entry. LRU: an evicted process just costs one
 * extra wakeup. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536); /* resized from config before load */
  __type(key, __u32);
  __type(value, __u64);
} seen_tgids SEC(".maps");

/* --- off-CPU state (the programs are further down) ------------------------ */
struct offcpu_wait {
  __u64 t_out;
  __u64 user_ip, user_sp; /* 0: unknown (no bpf_task_pt_regs) */
  /* A run-queue wait (the thread was runnable when switched out): nonzero,
   * the estimate it was drawn with (see runq_estimate); 0 for a sleep. */
  __u64 runq_est;
  __u32 runq_drawn; /* its sample was sent; the end record owes its value */
  __u32 pad;
};

/* Off-CPU: the threads now switched out, by tid. An entry lives while its
 * thread waits, so the bound is the threads that can wait at once; a full
 * map loses that interval and counts it. Preallocated: written inside the
 * scheduler. Never per-CPU: a thread often wakes on another CPU. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536); /* resized from config before load */
  __type(key, __u32);
  __type(value, struct offcpu_wait);
} offcpu_start SEC(".maps");

/* Each CPU's running estimate of a run-queue wait's length (ns, an
 * exponentially weighted mean over the waits that ended there). */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} runq_estimate SEC(".maps");

/* A drawn wait owed to this CPU until its thread's system call returns. */
struct offcpu_owed {
  __u32 tid;  /* 0: none */
  __s32 kerr; /* bpf_get_task_stack's error, or 0 */
  __u32 klen; /* kernel frames in kstack */
  __u32 pad;
  __u64 weight;
  __u64 user_ip, user_sp;
  __u64 kstack[EMBER_MAX_STACK_DEPTH];
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct offcpu_owed);
} offcpu_owed SEC(".maps");

/* Scratch space for building a sample before it is copied to the ring: the
 * BPF stack (512 bytes) cannot hold two 127-frame stacks. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ember_sample);
} sample_scratch SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ember_exec_event);
} exec_scratch SEC(".maps");

static __always_inline void count(__u32 which) {
  __u64* v = bpf_map_lookup_elem(&counters, &which);
  if (v) *v += 1; /* per-CPU: no atomics needed */
}

/* Was the CPU in user mode when the sample fired? Then the sampled
 * registers are the user's and there is no kernel stack to take. */
static __always_inline bool sampled_in_user_mode(struct bpf_perf_event_data* ctx) {
#if defined(__TARGET_ARCH_x86)
  /* The whole 8-byte slot (kernel_types.h): the verifier only allows
   * full-width loads from the context, and volatile stops clang from
   * narrowing this to a 16-bit load. */
  __u64 cs = *(volatile __u64*)&ctx->regs.cs;
  return (cs & 3) == 3;
#elif defined(__TARGET_ARCH_arm64)
  __u64 pstate = *(volatile __u64*)&ctx->regs.pstate;
  return (pstate & 0xf) == 0; /* PSR_MODE_EL0t */
#else
#error "unsupported architecture"
#endif
}

static __always_inline bool is_target(__u32 tgid) {
  if (!filter_targets) return true;
  return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

/* Did relabeling drop this task's process (by tgid or by cgroup)? Cheap
 * enough to run before anything else: two hash lookups. */
static __always_inline bool is_dropped(__u32 tgid) {
  if (bpf_map_lookup_elem(&drop_tgids, &tgid)) return true;
  ember_verdict_cgroup_key cg = bpf_get_current_cgroup_id();
  if (bpf_map_lookup_elem(&drop_cgroups, &cg)) return true;
  if (drop_kernel_threads) {
    struct task_struct* task = (struct task_struct*)bpf_get_current_task();
    if (!BPF_CORE_READ(task, mm)) return true;
  }
  return false;
}

/* --- user stack walking ---------------------------------------------------
 * Two walkers share the sample program: frame pointers (any kernel), and the
 * table-driven unwinder (needs bpf_loop, 5.17). Both start from the user
 * registers at the sample. */

struct user_regs {
  __u64 ip, sp, bp;
};

/* The current task's user registers as the kernel saved them at entry
 * (bpf_task_pt_regs, 5.15), in one read of that fixed ABI layout
 * (kernel_types.h). False without the helper: bpf_task_pt_regs wants a
 * BTF-typed task pointer (bpf_get_current_task_btf, 5.11), and when the
 * knob is off the verifier prunes the call, so the helpers' absence on older
 * kernels does not matter. */
static __always_inline bool saved_user_regs(struct ember_user_regs* out) {
  if (!have_task_pt_regs) return false;
  const void* regs = (const void*)bpf_task_pt_regs(bpf_get_current_task_btf());
  if (!regs) return false;
  return bpf_probe_read_kernel(out, sizeof(*out), regs) == 0;
}

/* The user registers of the sampled task: from the perf context when the CPU
 * was in user mode, else from the registers the kernel saved on entry. All
 * sixteen general registers go to `gpr` (DWARF numbering) for rules that
 * name them in the first frame. */
static __always_inline bool user_regs_of(void* raw_ctx, bool in_user, struct user_regs* r,
                                         __u64* gpr) {
#if defined(__TARGET_ARCH_x86)
  if (in_user) {
    /* Only perf_event programs pass in_user; the others pass a constant
     * false and this branch is compiled out of them. */
    struct bpf_perf_event_data* ctx = raw_ctx;
    r->ip = *(volatile __u64*)&ctx->regs.ip;
    r->sp = *(volatile __u64*)&ctx->regs.sp;
    r->bp = *(volatile __u64*)&ctx->regs.bp;
    gpr[0] = *(volatile __u64*)&ctx->regs.ax;
    gpr[1] = *(volatile __u64*)&ctx->regs.dx;
    gpr[2] = *(volatile __u64*)&ctx->regs.cx;
    gpr[3] = *(volatile __u64*)&ctx->regs.bx;
    gpr[4] = *(volatile __u64*)&ctx->regs.si;
    gpr[5] = *(volatile __u64*)&ctx->regs.di;
    gpr[8] = *(volatile __u64*)&ctx->regs.r8;
    gpr[9] = *(volatile __u64*)&ctx->regs.r9;
    gpr[10] = *(volatile __u64*)&ctx->regs.r10;
    gpr[11] = *(volatile __u64*)&ctx->regs.r11;
    gpr[12] = *(volatile __u64*)&ctx->regs.r12;
    gpr[13] = *(volatile __u64*)&ctx->regs.r13;
    gpr[14] = *(volatile __u64*)&ctx->regs.r14;
    gpr[15] = *(volatile __u64*)&ctx->regs.r15;
  } else {
    struct ember_user_regs copy;
    if (!saved_user_regs(&copy)) return false;
    r->ip = copy.ip;
    r->sp = copy.sp;
    r->bp = copy.bp;
    gpr[0] = copy.ax;
    gpr[1] = copy.dx;
    gpr[2] = copy.cx;
    gpr[3] = copy.bx;
    gpr[4] = copy.si;
    gpr[5] = copy.di;
    gpr[8] = copy.r8;
    gpr[9] = copy.r9;
    gpr[10] = copy.r10;
    gpr[11] = copy.r11;
    gpr[12] = copy.r12;
    gpr[13] = copy.r13;
    gpr[14] = copy.r14;
    gpr[15] = copy.r15;
  }
  gpr[6] = r->bp;
  gpr[7] = r->sp;
  return true;
#else
  return false;
#endif
}

/* Where the return address is when the sample landed where the frame
 * pointer does not (yet, or any more) describe the current function: at its
 * first instruction (push %rbp, or endbr64 before it), right after the push
 * (mov %rsp,%rbp), or at the final ret. Then rbp still points at the
 * caller's frame, and a plain walk would skip the caller. 0 otherwise. */
static __always_inline __u64 prologue_return_slot(const struct user_regs* r) {
  __u8 code[4] = {};
  if (bpf_probe_read_user(code, sizeof(code), (void*)r->ip) != 0) return 0;
  if (code[0] == 0x55 || code[0] == 0xc3) return r->sp;             /* push %rbp; ret */
  if (code[0] == 0xf3 && code[1] == 0x0f && code[2] == 0x1e && code[3] == 0xfa)
    return r->sp;                                                    /* endbr64 */
  if (code[0] == 0x48 && code[1] == 0x89 && code[2] == 0xe5) return r->sp + 8; /* mov %rsp,%rbp */
  return 0;
}

/* Follows the frame-pointer chain. Returns the number of frames written. */
static __always_inline long walk_frame_pointers(const struct user_regs* r, __u64* buf) {
  __u32 n = 0;
  buf[n++] = r->ip;
  __u64 slot = prologue_return_slot(r);
  if (slot) {
    __u64 ret = 0;
    if (bpf_probe_read_user(&ret, sizeof(ret), (void*)slot) == 0 && ret) buf[n++] = ret;
  }
  __u64 bp = r->bp;
  for (int i = 0; i < EMBER_MAX_USER_DEPTH; i++) {
    struct {
      __u64 next_bp;
      __u64 ret;
    } frame;
    if (!bp || n >= EMBER_MAX_USER_DEPTH) break;
    if (bpf_probe_read_user(&frame, sizeof(frame), (void*)bp) != 0 || !frame.ret) break;
    buf[n & 0x7f] = frame.ret;
    n++;
    /* The stack grows down: each caller's frame is above its callee's. */
    if (frame.next_bp <= bp) break;
    bp = frame.next_bp;
  }
  return n;
}

/* --- the table-driven unwinder ---------------------------------------------
 * One bpf_loop iteration per frame. It follows agent/unwind/unwinder.cc's
 * step() exactly: that C++ code is its specification and its test oracle. */

/* Rule kinds and flags: the values of ember::unwind::UnwindRule. */
enum { RULE_NONE = 0, RULE_CFA_RSP, RULE_CFA_RBP, RULE_CFA_PLT, RULE_CFA_RBP_DEREF, RULE_SIGNAL,
       RULE_END, RULE_UNSUPPORTED, RULE_CFA_REG };
enum { RULE_F_RA_IN_REG = 1, RULE_F_RBP_UNDEFINED = 2, RULE_F_RBP_FROM_RBP = 4 };

struct walk {
  __u64 pc, sp, bp;
  __u32 n;     /* user frames recorded */
  __u32 klen;  /* kernel frames before them in the sample */
  __u32 proc_first, proc_count;
  __u8 is_return; /* look up pc - 1 */
  __u8 first;     /* the first frame: every register is known */
  __u8 stop;      /* enum ember_unwind_stop */
  __u8 pad;
};

/* The walk's state lives in map memory, not on the stack of the program
 * that calls bpf_loop. The verifier knows nothing about values loaded from a
 * map, so every iteration of walk_step starts from the same abstract state
 * and its verification converges at once. With the state on the caller's
 * stack, the frame count and registers were known constants in each
 * iteration, and kernels that verify a callback once per distinct entry
 * state (Ubuntu 24.04's 6.8) re-verified walk_step for every frame until
 * they hit the 1M-instruction limit. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct walk);
} walk_scratch SEC(".maps");

static __always_inline struct ember_mapping* find_mapping(const struct walk* w, __u64 addr) {
  __u32 lo = 0, hi = w->proc_count;
  for (int i = 0; i < 10; i++) { /* log2(EMBER_MAX_PROC_MAPPINGS) + 2 */
    if (lo >= hi) break;
    __u32 mid = (lo + hi) / 2;
    __u32 idx = w->proc_first + mid;
    struct ember_mapping* m = bpf_map_lookup_elem(&unwind_mappings, &idx);
    if (!m) return NULL;
    if (addr < m->start) hi = mid;
    else if (addr >= m->end) lo = mid + 1;
    else return m;
  }
  return NULL;
}

/* The rule for an ELF address of the binary behind `m`; kind RULE_NONE when
 * no row covers it. */
static __always_inline void find_rule(const struct ember_mapping* m, __u64 vaddr,
                                      struct ember_unwind_rule* out) {
  __u64 page = vaddr >> 16;
  if (page < m->page_first || page - m->page_first >= m->page_count) return;
  __u32 ti = m->index_base + (__u32)(page - m->page_first);
  struct ember_text_page* tp = bpf_map_lookup_elem(&unwind_index, &ti);
  if (!tp) return;
  __u16 target = vaddr & 0xffff;
  __u32 rule_id = tp->carry_rule;
  __u32 lo = 0, hi = tp->count, first_row = tp->first_row;
  /* The last row of the page starting at or before `target`. */
  for (int i = 0; i < 17; i++) {
    if (lo >= hi) break;
    __u32 mid = (lo + hi) / 2;
    __u32 g = first_row + mid;
    __u32 pg = g / EMBER_ROWS_PER_PAGE;
    struct ember_row_page* rp = bpf_map_lookup_elem(&unwind_rows, &pg);
    if (!rp) break;
    struct ember_unwind_row row = rp->rows[g & (EMBER_ROWS_PER_PAGE - 1)];
    if (row.pc_low <= target) {
      rule_id = row.rule;
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  struct ember_unwind_rule* r = bpf_map_lookup_elem(&unwind_rules, &rule_id);
  if (r) *out = *r;
}

static __always_inline long stop_walk(struct walk* w, __u8 reason) {
  w->stop = reason;
  return 1;
}

/* Moves `w` to the caller's frame (returns 0), or stops (returns 1). */
static __always_inline long execute_rule(struct walk* w, const struct ember_unwind_rule* r,
                                         const __u64* gpr) {
  __u64 cfa = 0, ra = 0, bp = w->bp;
  switch (r->kind) {
    case RULE_END:
      return stop_walk(w, EMBER_STOP_END);
    case RULE_UNSUPPORTED:
      return stop_walk(w, EMBER_STOP_UNSUPPORTED);
    case RULE_NONE: { /* no CFI here (JIT, or no FDE): frame pointers */
      struct {
        __u64 next_bp;
        __u64 ret;
      } f;
      if (!w->bp) return stop_walk(w, EMBER_STOP_FP_END);
      if (bpf_probe_read_user(&f, sizeof(f), (void*)w->bp) != 0)
        return stop_walk(w, EMBER_STOP_READ_ERROR);
      cfa = w->bp + 16;
      ra = f.ret;
      bp = f.next_bp;
      break;
    }
    case RULE_SIGNAL: { /* the interrupted context is in the sigcontext */
      __u64 nsp = 0;
      if (bpf_probe_read_user(&nsp, 8, (void*)(w->sp + r->cfa_offset)) != 0 ||
          bpf_probe_read_user(&ra, 8, (void*)(w->sp + r->ra_offset)) != 0)
        return stop_walk(w, EMBER_STOP_READ_ERROR);
      if (!(r->flags & RULE_F_RBP_UNDEFINED) &&
          bpf_probe_read_user(&bp, 8, (void*)(w->sp + r->rbp_offset)) != 0)
        return stop_walk(w, EMBER_STOP_READ_ERROR);
      if (!ra) return stop_walk(w, EMBER_STOP_BAD_FRAME);
      w->pc = ra;
      w->sp = nsp;
      w->bp = bp;
      w->is_return = 0; /* the interrupted instruction itself */
      w->first = 0;
      return 0;
    }
    case RULE_CFA_RSP: cfa = w->sp + r->cfa_offset; break;
    case RULE_CFA_RBP: cfa = w->bp + r->cfa_offset; break;
    case RULE_CFA_PLT: cfa = w->sp + r->cfa_offset + (((w->pc & 15) >= r->aux) ? 8 : 0); break;
    case RULE_CFA_RBP_DEREF:
      if (bpf_probe_read_user(&cfa, 8, (void*)(w->bp + r->cfa_offset)) != 0)
        return stop_walk(w, EMBER_STOP_READ_ERROR);
      break;
    case RULE_CFA_REG:
      if (!w->first) return stop_walk(w, EMBER_STOP_UNSUPPORTED);
      cfa = gpr[r->reg & 15] + r->cfa_offset;
      break;
    default:
      return stop_walk(w, EMBER_STOP_UNSUPPORTED);
  }
  if (r->kind != RULE_NONE) {
    if (r->flags & RULE_F_RA_IN_REG) {
      if (!w->first) return stop_walk(w, EMBER_STOP_UNSUPPORTED);
      ra = gpr[r->reg & 15];
    } else if (!(r->flags & (RULE_F_RBP_UNDEFINED | RULE_F_RBP_FROM_RBP)) && r->rbp_offset &&
               r->rbp_offset == r->ra_offset - 8) {
      /* The usual frame: saved rbp just below the return address, one read. */
      __u64 pair[2];
      if (bpf_probe_read_user(pair, sizeof(pair), (void*)(cfa + r->rbp_offset)) != 0)
        return stop_walk(w, EMBER_STOP_READ_ERROR);
      bp = pair[0];
      ra = pair[1];
      goto done;
    } else if (bpf_probe_read_user(&ra, 8, (void*)(cfa + r->ra_offset)) != 0) {
      return stop_walk(w, EMBER_STOP_READ_ERROR);
    }
    if (r->flags & RULE_F_RBP_UNDEFINED) {
      bp = 0;
    } else if (r->flags & RULE_F_RBP_FROM_RBP) {
      if (bpf_probe_read_user(&bp, 8, (void*)(w->bp + r->rbp_offset)) != 0)
        return stop_walk(w, EMBER_STOP_READ_ERROR);
    } else if (r->rbp_offset) {
      if (bpf_probe_read_user(&bp, 8, (void*)(cfa + r->rbp_offset)) != 0)
        return stop_walk(w, EMBER_STOP_READ_ERROR);
    }
  }
done:
  /* The caller's frame is above this one; a zero return address ends it. */
  if (!ra || cfa <= w->sp) return stop_walk(w, EMBER_STOP_BAD_FRAME);
  w->pc = ra;
  w->sp = cfa;
  w->bp = bp;
  w->is_return = 1;
  w->first = 0;
  return 0;
}

static long walk_step(__u32 i, void* data) {
  __u32 zero = 0;
  struct walk* w = bpf_map_lookup_elem(&walk_scratch, &zero);
  if (!w) return 1;
  struct ember_sample* s = bpf_map_lookup_elem(&sample_scratch, &zero);
  if (!s) return stop_walk(w, EMBER_STOP_READ_ERROR);
  if (w->n >= EMBER_MAX_USER_DEPTH) return stop_walk(w, EMBER_STOP_TRUNCATED);
  __u64 flag = (!w->first && !w->is_return) ? EMBER_FRAME_NOT_RETURN : 0;
  s->stack[(w->klen + w->n) & (EMBER_STACK_SLOTS - 1)] = w->pc | flag;
  w->n++;
  __u64 lookup = w->is_return ? w->pc - 1 : w->pc;
  struct ember_mapping* m = find_mapping(w, lookup);
  if (!m) return stop_walk(w, EMBER_STOP_NO_MAPPING);
  struct ember_unwind_rule rule = {};
  if (!(m->flags & EMBER_MAPPING_F_NO_TABLE)) find_rule(m, lookup - m->bias, &rule);
  return execute_rule(w, &rule, s->copy.gpr);
}

/* Hands the rest of the walk to user space: the current frame's registers
 * and the stack from the page holding sp upward, a whole page per read so
 * the copy stops cleanly at the top of the stack. */
static __always_inline void copy_stack(struct ember_sample* s, const struct walk* w) {
  struct ember_stack_copy* c = &s->copy;
  c->pc = w->pc;
  c->sp = w->sp;
  c->bp = w->bp;
  c->base = w->sp & ~4095ull;
  c->is_return = w->is_return;
  c->first = w->first;
  __u32 want = stack_copy_bytes + (__u32)(w->sp - c->base);
  __u32 len = 0;
  for (int i = 0; i < EMBER_STACK_COPY_MAX / 4096 + 1; i++) {
    if (len >= want) break;
    if (bpf_probe_read_user(&c->data[i * 4096], 4096, (void*)(c->base + i * 4096)) != 0) break;
    len += 4096;
  }
  c->len = len;
  s->flags |= EMBER_SAMPLE_F_STACK_COPY;
}

/* The table-driven walk. Returns the number of user frames written. */
static __always_inline long walk_tables(struct ember_sample* s, __u32 klen, const struct user_regs* r,
                                        __u32 tgid) {
  __u32 zero = 0;
  struct walk* w = bpf_map_lookup_elem(&walk_scratch, &zero);
  if (!w) return 0;
  __builtin_memset(w, 0, sizeof(*w));
  w->pc = r->ip;
  w->sp = r->sp;
  w->bp = r->bp;
  w->klen = klen;
  w->first = 1;
  struct ember_proc* proc = bpf_map_lookup_elem(&unwind_procs, &tgid);
  if (!proc) {
    /* Not loaded yet (a new process): record where it is and let user
     * space walk the copy with the same tables. */
    s->stack[klen & (EMBER_STACK_SLOTS - 1)] = r->ip;
    w->n = 1;
    w->stop = EMBER_STOP_NO_TABLES;
  } else {
    w->proc_first = proc->first;
    w->proc_count = proc->count;
    if (w->proc_count > EMBER_MAX_PROC_MAPPINGS) w->proc_count = EMBER_MAX_PROC_MAPPINGS;
    w->stop = EMBER_STOP_TRUNCATED;
    bpf_loop(EMBER_MAX_USER_DEPTH + 1, walk_step, NULL, 0);
  }
  if ((w->stop == EMBER_STOP_NO_TABLES || w->stop == EMBER_STOP_NO_MAPPING) && stack_copy_bytes) {
    copy_stack(s, w);
    count(EMBER_CTR_STACK_COPIES);
  }
  s->unwind_stop = w->stop;
  return w->n;
}

/* Builds one sample of the current task and puts it on the ring. `ctx` is
 * the program's context (for bpf_get_stack); `in_user` says the CPU was in
 * user mode, so the context's registers are the user's (perf_event only:
 * the scheduler hooks always run in the kernel). */
/* `time_ns`: the sample's time, or 0 for now. Returns 0 when the sample went
 * on the ring, -1 when it was lost (counted). */
static __always_inline int emit_sample(void* ctx, const bool use_tables, bool in_user, __u32 tgid,
                                       __u32 tid, __u8 event, __u64 value,
                                       const struct offcpu_owed* owed, __u16 flags, __u64 time_ns) {
  __u32 zero = 0;
  struct ember_sample* s = bpf_map_lookup_elem(&sample_scratch, &zero);
  if (!s) return 0;

  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  struct mm_struct* mm = BPF_CORE_READ(task, mm);

  s->kind = EMBER_REC_SAMPLE;
  s->pid = tgid;
  s->tid = tid;
  s->cpu = bpf_get_smp_processor_id();
  s->time_ns = time_ns ? time_ns : bpf_ktime_get_ns();
  s->cgroup_id = bpf_get_current_cgroup_id();
  s->flags = flags;
  s->unwind_stop = use_tables ? EMBER_STOP_END : EMBER_STOP_FP_ONLY;
  s->event = event;
  s->value = value;
  if (!mm) s->flags |= EMBER_SAMPLE_F_KERNEL_THREAD;
  if (!in_user) s->flags |= EMBER_SAMPLE_F_IN_KERNEL;
  bpf_get_current_comm(s->comm, sizeof(s->comm));

  long klen = 0;
  s->kstack_err = 0;
  if (owed) {
    /* Taken when the wait ended: it says why the thread slept. */
    klen = owed->klen;
    s->kstack_err = owed->kerr;
    bpf_probe_read_kernel(s->stack, sizeof(owed->kstack), owed->kstack);
  } else if (include_kernel && !in_user) {
    klen = bpf_get_stack(ctx, s->stack, EMBER_MAX_STACK_DEPTH * sizeof(__u64), 0);
    if (klen < 0) {
      s->kstack_err = (__s32)klen;
      count(EMBER_CTR_KSTACK_ERROR);
      klen = 0;
    }
    klen /= sizeof(__u64);
  }
  if (klen > EMBER_MAX_STACK_DEPTH) klen = EMBER_MAX_STACK_DEPTH;
  /* The mask tells the verifier the offsets below stay inside `stack`. The
   * empty asm makes clang keep it: where it can prove the bound itself (a
   * length loaded from the off-CPU slot and clamped), it drops the mask, and
   * verifiers before 6.8 then lose the bound (seen on 5.10 to 6.1). */
  asm volatile("" : "+r"(klen));
  klen &= 0x7f;

  long ulen = 0;
  s->ustack_err = 0;
  if (include_user && mm) {
    struct user_regs r;
    if (!user_regs_of(ctx, in_user, &r, s->copy.gpr)) {
      /* Older kernels (no bpf_task_pt_regs) and other architectures: the
       * kernel's own frame-pointer walker. */
      long bytes = bpf_get_stack(ctx, &s->stack[klen], EMBER_MAX_STACK_DEPTH * sizeof(__u64),
                                 BPF_F_USER_STACK);
      ulen = bytes < 0 ? bytes : (long)((__u64)bytes >> 3); /* BPF has no signed division */
      s->unwind_stop = EMBER_STOP_FP_ONLY;
    } else if (use_tables) {
      ulen = walk_tables(s, (__u32)klen, &r, tgid);
    } else {
      ulen = walk_frame_pointers(&r, &s->stack[klen]);
    }
    if (ulen < 0) {
      s->ustack_err = (__s32)ulen;
      count(EMBER_CTR_USTACK_ERROR);
      ulen = 0;
    } else if (ulen == 0) {
      count(EMBER_CTR_USTACK_EMPTY);
    }
  }
  if (ulen > EMBER_MAX_USER_DEPTH) ulen = EMBER_MAX_USER_DEPTH;
  ulen &= 0xff;
  count(EMBER_CTR_STOP_BASE + (s->unwind_stop < EMBER_STOP_MAX ? s->unwind_stop : 0));

  s->kstack_len = (__u16)klen;
  s->ustack_len = (__u16)ulen;

  __u64 size;
  if (s->flags & EMBER_SAMPLE_F_STACK_COPY) {
    __u32 len = s->copy.len;
    if (len > sizeof(s->copy.data)) len = sizeof(s->copy.data);
    size = EMBER_SAMPLE_HDR_SIZE + EMBER_STACK_SLOTS * sizeof(__u64) + EMBER_STACK_COPY_HDR_SIZE + len;
  } else {
    size = EMBER_SAMPLE_HDR_SIZE + (klen + ulen) * sizeof(__u64);
  }
  if (size > sizeof(*s)) size = sizeof(*s);
  /* No wakeup per sample (user space polls on a timer), except for the first
   * samples of a process user space has not seen, and when the ring fills. */
  __u64 wakeup = BPF_RB_NO_WAKEUP;
  if (mm) {
    __u64* wake_until = bpf_map_lookup_elem(&seen_tgids, &tgid);
    if (!wake_until) {
      __u64 zero_time = 0;
      bpf_map_update_elem(&seen_tgids, &tgid, &zero_time, BPF_ANY);
      wakeup = BPF_RB_FORCE_WAKEUP;
    } else if (s->time_ns < *wake_until) {
      wakeup = BPF_RB_FORCE_WAKEUP;
    }
  }
  if (wakeup == BPF_RB_NO_WAKEUP && ring_wake_bytes &&
      bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= ring_wake_bytes)
    wakeup = BPF_RB_FORCE_WAKEUP;
  if (bpf_ringbuf_output(&events, s, size, wakeup) < 0) {
    count(EMBER_CTR_DROP_RINGBUF_FULL);
    return -1;
  }
  count(EMBER_CTR_SAMPLES_SENT);
  return 0;
}

static __always_inline int sample(struct bpf_perf_event_data* ctx, const bool use_tables) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  __u32 tid = (__u32)id;

  count(EMBER_CTR_SAMPLES);
  if (tid == 0) { /* the idle task of this CPU */
    if (!include_idle || filter_targets) {
      count(EMBER_CTR_IDLE);
      return 0;
    }
  }
  if (!is_target(tgid)) {
    count(EMBER_CTR_FILTERED);
    return 0;
  }
  if (check_verdicts && is_dropped(tgid)) {
    count(EMBER_CTR_VERDICT_SKIPPED);
    return 0;
  }
  /* The sampled registers are the user ones unless the CPU was in the kernel. */
  emit_sample(ctx, use_tables, sampled_in_user_mode(ctx), tgid, tid, EMBER_EVENT_CPU,
              sample_period_ns, NULL, 0, 0);
  return 0;
}

/* Frame pointers only: any kernel with BPF ring buffers. */
SEC("perf_event")
int ember_sample_fp(struct bpf_perf_event_data* ctx) { return sample(ctx, false); }

/* Unwind tables (with frame pointers where none exist): needs bpf_loop. */
SEC("perf_event")
int ember_sample_dwarf(struct bpf_perf_event_data* ctx) { return sample(ctx, true); }

/* --- off-CPU ---------------------------------------------------------------
 * Tracepoints only (kprobes and BPF trampolines are missing from some
 * kernels Ember runs on), in three steps:
 *  - switch-out (sched_switch, prev: a user thread going to sleep in the
 *    kernel) notes the time, and where the thread entered the kernel (its
 *    saved user ip and sp): one map write, no stack;
 *  - switch-in (sched_switch, next) measures the interval d and draws it
 *    with probability min(1, d / offcpu_period_ns), weight max(d, period):
 *    the expected weight is d whatever the mix of short and long waits, and
 *    a storm of short switches costs about one sample per period of time
 *    waited, not one per switch. A drawn wait takes next's kernel stack now
 *    (it says why it slept: hrtimer_nanosleep, pipe_read...; the kernel's
 *    walk of a task that is not running leaves out the scheduler's own
 *    functions, schedule among them) and is owed to this CPU;
 *  - the thread's user stack can only be read in its own context, and does
 *    not change until it returns to user space: at sys_exit, on the same CPU
 *    and with the same user ip and sp, the owed sample is sent with it.
 * Run-queue waits (a preempted thread) are drawn at switch-out instead (see
 * runnable_out). Waits outside system calls (a page fault's I/O) are
 * counted, not profiled. libbpf-tools' offcputime
 * takes stacks at every switch-out instead, which costs a stack walk per
 * switch under a storm. Only the first three arguments of sched_switch are
 * named: 5.18 appended prev_state, and the program loads before and after. */
#define EMBER_TASK_DEAD 0x80 /* include/linux/sched.h, unchanged since 2.6 */

static __always_inline __u32 task_state(struct task_struct* t) {
  if (bpf_core_field_exists(t->__state)) return BPF_CORE_READ(t, __state);
  struct task_struct___pre514* old = (void*)t;
  return (__u32)BPF_CORE_READ(old, state);
}

/* The current task's user ip and sp as saved at kernel entry; zeros where
 * the kernel lacks bpf_task_pt_regs (then owed samples are not matched). */
static __always_inline void current_user_ip_sp(__u64* ip, __u64* sp) {
  *ip = 0;
  *sp = 0;
#if defined(__TARGET_ARCH_x86)
  struct ember_user_regs regs;
  if (!saved_user_regs(&regs)) return;
  *ip = regs.ip;
  *sp = regs.sp;
#endif
}

/* A runnable thread switched out (preempted, or yielding) waits in the run
 * queue. Its wait's length is unknown now, and its user stack can only be
 * read now (it returns to user space through no tracepoint), so the draw is
 * made now: with probability q = min(1, est / period), where est is this
 * CPU's recent mean run-queue wait, its sample is sent at once, kernel stack
 * included (schedule under irqentry_exit_to_user_mode or __cond_resched:
 * why it waited), and when it runs again
 * the wait's end carries its weight d / q. The expected weight is d (q does
 * not depend on this wait), and the cost is about one sample per period of
 * run-queue time, as for sleeps. */
static __always_inline void runnable_out(void* ctx, const bool use_tables, __u32 tgid, __u32 tid,
                                         __u64 now) {
  __u32 zero = 0;
  __u64* estp = bpf_map_lookup_elem(&runq_estimate, &zero);
  if (!estp) return;
  __u64 est = *estp;
  if (est == 0 || est > offcpu_period_ns) est = offcpu_period_ns;
  struct offcpu_wait w = {.t_out = now, .runq_est = est};
  current_user_ip_sp(&w.user_ip, &w.user_sp);
  /* The entry first: a sample whose wait cannot be followed is not sent. */
  if (bpf_map_update_elem(&offcpu_start, &tid, &w, BPF_ANY) < 0) {
    count(EMBER_CTR_OFFCPU_NO_SLOT);
    return;
  }
  if (est < offcpu_period_ns &&
      (((__u64)bpf_get_prandom_u32() * offcpu_period_ns) >> 32) >= est) {
    count(EMBER_CTR_RUNQ_UNDRAWN);
    return;
  }
  /* Stamped with the switch-out time, which the end record repeats: user
   * space pairs the two by thread and time. */
  if (emit_sample(ctx, use_tables, false, tgid, tid, EMBER_EVENT_OFF_CPU, 0, NULL,
                  EMBER_SAMPLE_F_VALUE_FOLLOWS, now) < 0)
    return; /* lost to a full ring (counted): no end record either */
  struct offcpu_wait* e = bpf_map_lookup_elem(&offcpu_start, &tid);
  if (e) e->runq_drawn = 1;
}

/* The end of a run-queue wait: the estimate learns from it, and a drawn
 * one's end record goes out with its weight. */
static __always_inline void runnable_in(__u32 tid, const struct offcpu_wait* w, __u64 d) {
  __u32 zero = 0;
  __u64* estp = bpf_map_lookup_elem(&runq_estimate, &zero);
  if (estp) {
    __u64 e = *estp ? *estp : offcpu_period_ns;
    /* e += (d - e) / 8, in unsigned arithmetic */
    *estp = d > e ? e + ((d - e) >> 3) : e - ((e - d) >> 3);
  }
  if (!w->runq_drawn) return;
  __u64 est = w->runq_est;
  __u64 weight = d;
  if (est < offcpu_period_ns && est > 0)
    weight = d < (~0ull) / offcpu_period_ns ? d * offcpu_period_ns / est : d / est * offcpu_period_ns;
  struct ember_wait_end e = {.kind = EMBER_REC_WAIT_END, .tid = tid, .start_ns = w->t_out, .value = weight};
  /* No wakeup: the drain's timer collects it, after its sample. */
  if (bpf_ringbuf_output(&events, &e, sizeof(e), BPF_RB_NO_WAKEUP) < 0) count(EMBER_CTR_RUNQ_END_LOST);
}

static __always_inline void switch_out(void* ctx, const bool use_tables, bool preempt,
                                       struct task_struct* prev, __u64 now) {
  __u32 tid = BPF_CORE_READ(prev, pid);
  if (tid == 0) return; /* the idle task */
  __u32 state = task_state(prev);
  if (state & EMBER_TASK_DEAD) {
    /* Its last switch: no switch-in follows, and the tid may be reused. */
    bpf_map_delete_elem(&offcpu_start, &tid);
    return;
  }
  if (!BPF_CORE_READ(prev, mm)) return; /* kernel threads: not profiled off CPU */
  __u32 tgid = BPF_CORE_READ(prev, tgid);
  if (!is_target(tgid)) return;
  /* current is still prev here, so is_dropped's cgroup is prev's. */
  if (check_verdicts && is_dropped(tgid)) {
    count(EMBER_CTR_OFFCPU_DROPPED);
    return;
  }
  if (preempt || state == 0) {
    /* Preempted or yielding: still runnable, waiting in the run queue. */
    count(EMBER_CTR_OFFCPU_RUNNABLE);
    runnable_out(ctx, use_tables, tgid, tid, now);
    return;
  }
  struct offcpu_wait w = {.t_out = now};
  current_user_ip_sp(&w.user_ip, &w.user_sp);
  if (bpf_map_update_elem(&offcpu_start, &tid, &w, BPF_ANY) < 0) count(EMBER_CTR_OFFCPU_NO_SLOT);
}

static __always_inline void switch_in(struct task_struct* next, __u64 now) {
  __u32 tid = BPF_CORE_READ(next, pid);
  if (tid == 0) return;
  struct offcpu_wait* w = bpf_map_lookup_elem(&offcpu_start, &tid);
  if (!w) return; /* not one we measure, or switched out before we attached */
  __u64 d = now > w->t_out ? now - w->t_out : 0;
  __u64 ip = w->user_ip, sp = w->user_sp;
  if (w->runq_est) {
    runnable_in(tid, w, d);
    bpf_map_delete_elem(&offcpu_start, &tid);
    return;
  }
  bpf_map_delete_elem(&offcpu_start, &tid);
  count(EMBER_CTR_OFFCPU_INTERVALS);
  if (d < offcpu_min_wait_ns) {
    count(EMBER_CTR_OFFCPU_SHORT);
    return;
  }
  if (offcpu_max_wait_ns && d > offcpu_max_wait_ns) {
    count(EMBER_CTR_OFFCPU_LONG);
    return;
  }
  __u64 weight = d;
  if (d < offcpu_period_ns) {
    /* Drawn with probability d / period: a uniform 32-bit draw scaled to
     * [0, period) falls below d. The product fits: period < 2^32. */
    __u64 draw = ((__u64)bpf_get_prandom_u32() * offcpu_period_ns) >> 32;
    if (draw >= d) {
      count(EMBER_CTR_OFFCPU_UNDRAWN);
      return;
    }
    weight = offcpu_period_ns;
  }
  __u32 zero = 0;
  struct offcpu_owed* o = bpf_map_lookup_elem(&offcpu_owed, &zero);
  if (!o) return;
  if (o->tid != 0) {
    if (o->tid == tid && o->user_ip == ip && o->user_sp == sp) {
      /* A second wait in the same system call: same user stack. */
      o->weight += weight;
      return;
    }
    count(EMBER_CTR_OFFCPU_UNMATCHED); /* its system call never returned here */
  }
  o->tid = tid;
  o->weight = weight;
  o->user_ip = ip;
  o->user_sp = sp;
  o->kerr = 0;
  long klen = 0;
  if (include_kernel) {
    klen = bpf_get_task_stack(next, o->kstack, sizeof(o->kstack), 0);
    if (klen < 0) {
      o->kerr = (__s32)klen;
      count(EMBER_CTR_KSTACK_ERROR);
      klen = 0;
    }
    klen /= sizeof(__u64);
  }
  o->klen = (__u32)klen;
}

static __always_inline int on_switch(void* ctx, const bool use_tables, bool preempt,
                                     struct task_struct* prev, struct task_struct* next) {
  __u64 now = bpf_ktime_get_ns();
  switch_out(ctx, use_tables, preempt, prev, now);
  switch_in(next, now);
  return 0;
}

/* Two variants, as for sampling: a run-queue wait's sample is unwound at
 * switch-out, by frame pointers or by the tables. */
SEC("tp_btf/sched_switch")
int BPF_PROG(ember_switch_fp, bool preempt, struct task_struct* prev, struct task_struct* next) {
  return on_switch(ctx, false, preempt, prev, next);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(ember_switch_dwarf, bool preempt, struct task_struct* prev, struct task_struct* next) {
  return on_switch(ctx, true, preempt, prev, next);
}

static __always_inline int send_owed(void* ctx, const bool use_tables) {
  __u32 zero = 0;
  struct offcpu_owed* o = bpf_map_lookup_elem(&offcpu_owed, &zero);
  if (!o || o->tid == 0) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  if (o->tid != (__u32)id) return 0;
  __u64 ip, sp;
  current_user_ip_sp(&ip, &sp);
  if (ip != o->user_ip || sp != o->user_sp) {
    /* Not the system call it waited in: it waited elsewhere (a page
     * fault), and this user stack is not the one it waited with. */
    count(EMBER_CTR_OFFCPU_UNMATCHED);
    o->tid = 0;
    return 0;
  }
  o->tid = 0;
  emit_sample(ctx, use_tables, false, (__u32)(id >> 32), (__u32)id, EMBER_EVENT_OFF_CPU,
              o->weight, o, 0, 0);
  return 0;
}

/* raw_syscalls:sys_exit, every system call's return: one per-CPU lookup
 * and a compare unless a sample is owed to this thread. */
SEC("tp_btf/sys_exit")
int BPF_PROG(ember_sys_exit_fp) { return send_owed(ctx, false); }

SEC("tp_btf/sys_exit")
int BPF_PROG(ember_sys_exit_dwarf) { return send_owed(ctx, true); }

/* A new process image: tell user space its executable and where its text was
 * loaded, so frames of a process that exits before user space reads its
 * /proc/PID/maps can still be placed. BTF-typed tracepoints need no tracefs
 * mount, which many hosts and containers lack. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(ember_exec, struct task_struct* task, pid_t old_pid, struct linux_binprm* bprm) {
  __u32 tgid = BPF_CORE_READ(task, tgid);
  /* A new image gets a new verdict: its labels (exe, cmdline) changed. */
  if (check_verdicts) bpf_map_delete_elem(&drop_tgids, &tgid);
  if (!is_target(tgid)) return 0;

  __u32 zero = 0;
  struct ember_exec_event* e = bpf_map_lookup_elem(&exec_scratch, &zero);
  if (!e) return 0;

  struct mm_struct* mm = BPF_CORE_READ(task, mm);
  e->kind = EMBER_REC_EXEC;
  e->pid = tgid;
  e->time_ns = bpf_ktime_get_ns();
  e->exe_ino = BPF_CORE_READ(mm, exe_file, f_inode, i_ino);
  e->exe_dev = BPF_CORE_READ(mm, exe_file, f_inode, i_sb, s_dev);
  e->pad = 0;
  e->start_code = BPF_CORE_READ(mm, start_code);
  e->end_code = BPF_CORE_READ(mm, end_code);
  e->entry = 0;
  /* The auxiliary vector is (type, value) pairs; AT_ENTRY (9) comes within
   * the first couple of dozen entries on every architecture we support. Its
   * length differs between kernels (kernel_types.h), so the walk is bounded
   * by the running kernel's array, read through its relocated offset. */
  const unsigned long* auxv = (const unsigned long*)((const char*)mm +
                                                     bpf_core_field_offset(mm->saved_auxv));
  __u32 auxv_len = bpf_core_field_size(mm->saved_auxv) / sizeof(unsigned long);
  for (__u32 i = 0; i < 64; i += 2) {
    if (i + 1 >= auxv_len) break;
    __u64 pair[2] = {};
    if (bpf_probe_read_kernel(pair, sizeof(pair), auxv + i) != 0) break;
    if (pair[0] == 0) break; /* AT_NULL */
    if (pair[0] == 9) {
      e->entry = pair[1];
      break;
    }
  }
  BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
  const char* filename = BPF_CORE_READ(bprm, filename);
  bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);

  if (bpf_ringbuf_output(&events, e, sizeof(*e), BPF_RB_FORCE_WAKEUP) < 0)
    count(EMBER_CTR_EVENT_DROP_RINGBUF_FULL);
  __u64 wake_until = e->time_ns + young_process_ns; /* a new image: wake for its first samples */
  bpf_map_update_elem(&seen_tgids, &tgid, &wake_until, BPF_ANY);
  /* The old image's mappings are gone: never unwind the new one with them. */
  bpf_map_delete_elem(&unwind_procs, &tgid);
  return 0;
}

/* Only the first argument is named: newer kernels add a second one
 * (group_dead), older ones do not, and the program must load on both. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(ember_exit, struct task_struct* task) {
  __u32 tgid = BPF_CORE_READ(task, tgid);
  /* sched_process_exit fires per thread; the process is gone once the last
   * live thread leaves (signal->live reaches zero before this tracepoint). */
  int live = BPF_CORE_READ(task, signal, live.counter);
  if (live != 0) return 0;
  if (check_verdicts) bpf_map_delete_elem(&drop_tgids, &tgid); /* the tgid may be reused */
  if (!is_target(tgid)) return 0;

  struct ember_exit_event e = {};
  e.kind = EMBER_REC_EXIT;
  e.pid = tgid;
  e.time_ns = bpf_ktime_get_ns();
  if (bpf_ringbuf_output(&events, &e, sizeof(e), 0) < 0)
    count(EMBER_CTR_EVENT_DROP_RINGBUF_FULL);
  if (filter_targets) bpf_map_delete_elem(&targets, &tgid);
  bpf_map_delete_elem(&seen_tgids, &tgid);
  bpf_map_delete_elem(&unwind_procs, &tgid);
  return 0;
}

/* Keeps the target set closed under fork: a child of a target is a target.
 * Only loaded when filter_targets is set. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(ember_fork, struct task_struct* parent, struct task_struct* child) {
  __u32 ptgid = BPF_CORE_READ(parent, tgid);
  __u32 ctgid = BPF_CORE_READ(child, tgid);
  if (ptgid == ctgid) return 0; /* a new thread, already covered by its tgid */
  if (!bpf_map_lookup_elem(&targets, &ptgid)) return 0;
  __u8 one = 1;
  if (bpf_map_update_elem(&targets, &ctgid, &one, BPF_ANY) < 0) count(EMBER_CTR_TARGETS_FULL);
  return 0;
}
