// SPDX-License-Identifier: GPL-2.0
/* Ember's sampler: a perf_event program that fires on a CPU-clock software
 * event on every online CPU, plus three scheduler tracepoints that keep user
 * space's view of processes right (exec, exit, and fork for target sets).
 *
 * Every sample goes to user space through one ring buffer, in the order it
 * was taken, interleaved with exec/exit events. Nothing is aggregated here:
 * user space owns symbolization and aggregation, and the ring preserves the
 * ordering that makes "symbolize a process after it exited" possible.
 *
 * Knobs live in .rodata and are fixed before load; map sizes are set by the
 * loader from config before load.
 */
#include "vmlinux.h"
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
/* After an exec, samples wake user space for this long: the dynamic loader
 * is still mapping libraries, and a short-lived process may exit before a
 * batched drain would see it. */
const volatile __u64 young_process_ns = 100000000;

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
  /* The verifier only allows full-width loads from the context: volatile
   * stops clang from narrowing this to a 16-bit load. */
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

/* --- user stack walking ---------------------------------------------------
 * The walker is the one replaceable piece: today it follows frame pointers,
 * an .eh_frame-driven unwinder takes its place later. It gets the user
 * registers at the sample and fills `buf` innermost first. */

struct user_regs {
  __u64 ip, sp, bp;
};

/* The user registers of the sampled task: from the perf context when the CPU
 * was in user mode, else from the registers the kernel saved on entry. */
static __always_inline bool user_regs_of(struct bpf_perf_event_data* ctx, bool in_user,
                                         struct user_regs* r) {
#if defined(__TARGET_ARCH_x86)
  if (in_user) {
    r->ip = *(volatile __u64*)&ctx->regs.ip;
    r->sp = *(volatile __u64*)&ctx->regs.sp;
    r->bp = *(volatile __u64*)&ctx->regs.bp;
    return true;
  }
  /* bpf_task_pt_regs (5.15) wants a BTF-typed task pointer. */
  if (!bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs)) return false;
  struct pt_regs* regs = (struct pt_regs*)bpf_task_pt_regs(bpf_get_current_task_btf());
  if (!regs) return false;
  r->ip = BPF_CORE_READ(regs, ip);
  r->sp = BPF_CORE_READ(regs, sp);
  r->bp = BPF_CORE_READ(regs, bp);
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
  for (int i = 0; i < EMBER_MAX_STACK_DEPTH; i++) {
    struct {
      __u64 next_bp;
      __u64 ret;
    } frame;
    if (!bp || n >= EMBER_MAX_STACK_DEPTH) break;
    if (bpf_probe_read_user(&frame, sizeof(frame), (void*)bp) != 0 || !frame.ret) break;
    buf[n & 0x7f] = frame.ret;
    n++;
    /* The stack grows down: each caller's frame is above its callee's. */
    if (frame.next_bp <= bp) break;
    bp = frame.next_bp;
  }
  return n;
}

/* Fills `buf` (room for EMBER_MAX_STACK_DEPTH frames) with the user stack.
 * Returns the number of frames, or a negative errno. */
static __always_inline long collect_user_stack(struct bpf_perf_event_data* ctx, bool in_user,
                                               __u64* buf) {
  struct user_regs r;
  if (user_regs_of(ctx, in_user, &r)) return walk_frame_pointers(&r, buf);
  /* Older kernels (no bpf_task_pt_regs) and other architectures: the
   * kernel's own frame-pointer walker. */
  long bytes = bpf_get_stack(ctx, buf, EMBER_MAX_STACK_DEPTH * sizeof(__u64), BPF_F_USER_STACK);
  return bytes < 0 ? bytes : (long)((__u64)bytes >> 3); /* BPF has no signed division */
}

SEC("perf_event")
int ember_sample(struct bpf_perf_event_data* ctx) {
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

  __u32 zero = 0;
  struct ember_sample* s = bpf_map_lookup_elem(&sample_scratch, &zero);
  if (!s) return 0;

  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  struct mm_struct* mm = BPF_CORE_READ(task, mm);

  s->kind = EMBER_REC_SAMPLE;
  s->pid = tgid;
  s->tid = tid;
  s->cpu = bpf_get_smp_processor_id();
  s->time_ns = bpf_ktime_get_ns();
  s->cgroup_id = bpf_get_current_cgroup_id();
  s->flags = 0;
  if (!mm) s->flags |= EMBER_SAMPLE_F_KERNEL_THREAD;
  /* The sampled registers are the user ones unless the CPU was in the kernel. */
  if (!sampled_in_user_mode(ctx)) s->flags |= EMBER_SAMPLE_F_IN_KERNEL;
  bpf_get_current_comm(s->comm, sizeof(s->comm));

  long klen = 0;
  s->kstack_err = 0;
  if (include_kernel && (s->flags & EMBER_SAMPLE_F_IN_KERNEL)) {
    klen = bpf_get_stack(ctx, s->stack, EMBER_MAX_STACK_DEPTH * sizeof(__u64), 0);
    if (klen < 0) {
      s->kstack_err = (__s32)klen;
      count(EMBER_CTR_KSTACK_ERROR);
      klen = 0;
    }
    klen /= sizeof(__u64);
  }
  if (klen > EMBER_MAX_STACK_DEPTH) klen = EMBER_MAX_STACK_DEPTH;
  klen &= 0x7f; /* tells the verifier the offset below stays inside `stack` */

  long ulen = 0;
  s->ustack_err = 0;
  if (include_user && mm) {
    ulen = collect_user_stack(ctx, !(s->flags & EMBER_SAMPLE_F_IN_KERNEL), &s->stack[klen]);
    if (ulen < 0) {
      s->ustack_err = (__s32)ulen;
      count(EMBER_CTR_USTACK_ERROR);
      ulen = 0;
    } else if (ulen == 0) {
      count(EMBER_CTR_USTACK_EMPTY);
    }
  }
  if (ulen > EMBER_MAX_STACK_DEPTH) ulen = EMBER_MAX_STACK_DEPTH;
  ulen &= 0x7f;

  s->kstack_len = (__u16)klen;
  s->ustack_len = (__u16)ulen;

  __u64 size = EMBER_SAMPLE_HDR_SIZE + (klen + ulen) * sizeof(__u64);
  if (size > sizeof(*s)) size = sizeof(*s);
  /* No wakeup per sample (user space polls on a short timer), except for the
   * first sample of a process user space has not seen. */
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
  if (bpf_ringbuf_output(&events, s, size, wakeup) < 0) {
    count(EMBER_CTR_DROP_RINGBUF_FULL);
    return 0;
  }
  count(EMBER_CTR_SAMPLES_SENT);
  return 0;
}

/* A new process image: tell user space its executable and where its text was
 * loaded, so frames of a process that exits before user space reads its
 * /proc/PID/maps can still be placed. BTF-typed tracepoints need no tracefs
 * mount, which many hosts and containers lack. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(ember_exec, struct task_struct* task, pid_t old_pid, struct linux_binprm* bprm) {
  __u32 tgid = BPF_CORE_READ(task, tgid);
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
   * the first couple of dozen entries on every architecture we support. */
  for (int i = 0; i < 48; i += 2) {
    __u64 type = BPF_CORE_READ(mm, saved_auxv[i]);
    if (type == 0) break; /* AT_NULL */
    if (type == 9) {
      e->entry = BPF_CORE_READ(mm, saved_auxv[i + 1]);
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
  if (!is_target(tgid)) return 0;

  struct ember_exit_event e = {};
  e.kind = EMBER_REC_EXIT;
  e.pid = tgid;
  e.time_ns = bpf_ktime_get_ns();
  if (bpf_ringbuf_output(&events, &e, sizeof(e), 0) < 0)
    count(EMBER_CTR_EVENT_DROP_RINGBUF_FULL);
  if (filter_targets) bpf_map_delete_elem(&targets, &tgid);
  bpf_map_delete_elem(&seen_tgids, &tgid);
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
