/* The contract between profile.bpf.c and user space.
 *
 * Both sides include this header: the BPF program (through kernel_types.h)
 * and the agent (through <linux/types.h>). Every record that crosses the ring
 * buffer is laid out here, and user space static_asserts the layout so that a
 * change on one side cannot silently corrupt the other.
 */
#ifndef EMBER_BPF_ABI_H
#define EMBER_BPF_ABI_H

#ifndef EMBER_KERNEL_TYPES_H
#include <linux/types.h>
#endif

#define EMBER_MAX_STACK_DEPTH 127 /* kernel frames: perf_event_max_stack's default */
#define EMBER_MAX_USER_DEPTH 128  /* user frames */
#define EMBER_STACK_SLOTS 256     /* kernel + user frames, a power of two */
#define EMBER_COMM_LEN 16
#define EMBER_MAX_FILENAME 256

/* Kind of record on the ring buffer; the first 4 bytes of every record. */
enum ember_record_kind {
  EMBER_REC_SAMPLE = 1,
  EMBER_REC_EXEC = 2,
  EMBER_REC_EXIT = 3,
  EMBER_REC_WAIT_END = 4,
};

/* What a sample measured (ember_sample.event); agent/model/event.h names
 * each kind for the encoders. */
enum ember_event {
  EMBER_EVENT_CPU = 0,     /* on-CPU, timer-sampled: value is the period in ns */
  EMBER_EVENT_OFF_CPU = 1, /* switched out: value is the time off CPU in ns */
  EMBER_EVENT_WALL = 2,    /* on-CPU and off-CPU time of a thread, in ns */
  EMBER_EVENT_MAX,
};

/* Why the user stack walk stopped (ember_sample.unwind_stop). */
enum ember_unwind_stop {
  EMBER_STOP_END = 0,         /* reached the outermost frame: complete */
  EMBER_STOP_TRUNCATED,       /* hit EMBER_MAX_USER_DEPTH */
  EMBER_STOP_NO_MAPPING,      /* pc in no mapping we loaded: stack copied for user space */
  EMBER_STOP_UNSUPPORTED,     /* CFI we do not execute */
  EMBER_STOP_READ_ERROR,      /* user memory could not be read */
  EMBER_STOP_BAD_FRAME,       /* caller frame not above the callee, or pc 0 */
  EMBER_STOP_FP_END,          /* frame-pointer walk reached rbp == 0 */
  EMBER_STOP_NO_TABLES,       /* process not loaded yet: stack copied for user space */
  EMBER_STOP_FP_ONLY,         /* frame-pointer unwinder (no CFI tables in use) */
  EMBER_STOP_MAX,
};

/* Why a sample or event was lost or degraded. Indexes the per-CPU `counters`
 * array; user space sums across CPUs and exports each by name. */
enum ember_counter {
  EMBER_CTR_SAMPLES = 0,        /* perf_event program invocations */
  EMBER_CTR_SAMPLES_SENT,       /* samples that reached the ring buffer */
  EMBER_CTR_FILTERED,           /* samples of processes outside the target set */
  EMBER_CTR_IDLE,               /* samples of the idle task, skipped by config */
  EMBER_CTR_DROP_RINGBUF_FULL,  /* sample lost: ring buffer had no room */
  EMBER_CTR_KSTACK_ERROR,       /* kernel stack could not be read (sample kept) */
  EMBER_CTR_USTACK_ERROR,       /* user stack could not be read (sample kept) */
  EMBER_CTR_USTACK_EMPTY,       /* user task with no user frames (sample kept) */
  EMBER_CTR_EVENT_DROP_RINGBUF_FULL, /* exec/exit event lost: ring buffer full */
  EMBER_CTR_TARGETS_FULL,       /* a forked child could not be added to the target set */
  EMBER_CTR_STACK_COPIES,       /* samples whose walk user space finishes */
  EMBER_CTR_VERDICT_SKIPPED,    /* samples of processes relabeling dropped (verdict maps) */
  EMBER_CTR_OFFCPU_INTERVALS,   /* off-CPU: waits measured (switch-in after a recorded switch-out) */
  EMBER_CTR_OFFCPU_UNDRAWN,     /* off-CPU: waits shorter than the period, not drawn */
  EMBER_CTR_OFFCPU_NO_SLOT,     /* off-CPU: switch-out not recorded, offcpu_start full (time lost) */
  EMBER_CTR_OFFCPU_UNMATCHED,   /* off-CPU: a drawn wait whose system call did not return on its CPU */
  EMBER_CTR_OFFCPU_RUNNABLE,    /* off-CPU: switch-outs of runnable threads (run queue), not profiled */
  EMBER_CTR_OFFCPU_DROPPED,     /* off-CPU: switch-outs of processes relabeling dropped, not recorded */
  EMBER_CTR_OFFCPU_SHORT,       /* off-CPU: waits shorter than offcpu_min_wait_ns, left out */
  EMBER_CTR_OFFCPU_LONG,        /* off-CPU: waits longer than offcpu_max_wait_ns, left out */
  EMBER_CTR_RUNQ_UNDRAWN,       /* off-CPU: run-queue waits not drawn (their time is in the drawn ones') */
  EMBER_CTR_RUNQ_END_LOST,      /* off-CPU: a run-queue wait's end record lost: ring buffer full */
  EMBER_CTR_STOP_BASE,          /* EMBER_STOP_MAX counters, one per stop reason */
  EMBER_CTR_MAX = EMBER_CTR_STOP_BASE + EMBER_STOP_MAX,
};

/* Registers and stack bytes handed to user space when BPF cannot finish a
 * walk (the process's tables are not loaded yet, or the pc is in a mapping
 * loaded after them). User space resumes from this frame with the same
 * tables. Its pc is already the last frame in the sample's stack. */
#define EMBER_STACK_COPY_MAX 16384
struct ember_stack_copy {
  __u64 pc, sp, bp;
  __u64 base;    /* address of data[0]: sp rounded down to its page */
  __u64 gpr[16]; /* first frame only (DWARF numbering) */
  __u32 len;     /* bytes copied from base upward, whole pages */
  __u8 is_return;
  __u8 first;
  __u16 pad;
  __u8 data[EMBER_STACK_COPY_MAX + 4096]; /* the page holding sp, then above it */
};

/* One sample of one event. Followed on the ring by kstack_len kernel addresses,
 * then ustack_len user addresses (innermost first), as __u64 each; with
 * EMBER_SAMPLE_F_STACK_COPY, by all EMBER_STACK_SLOTS stack slots and then
 * the stack copy header and its `len` bytes. */
struct ember_sample {
  __u32 kind; /* EMBER_REC_SAMPLE */
  __u32 pid;  /* tgid, i.e. the process */
  __u32 tid;
  __u32 cpu;
  __u64 time_ns;   /* CLOCK_MONOTONIC */
  __u64 cgroup_id; /* cgroup v2 id of the task */
  __s32 kstack_err; /* 0, or the negative errno of bpf_get_stack */
  __s32 ustack_err;
  __u16 kstack_len;
  __u16 ustack_len;
  __u16 flags;      /* EMBER_SAMPLE_F_* */
  __u8 unwind_stop; /* enum ember_unwind_stop */
  __u8 event;       /* enum ember_event */
  char comm[EMBER_COMM_LEN];
  __u64 value;      /* what was measured, in the event's unit */
  __u64 stack[EMBER_STACK_SLOTS];
  struct ember_stack_copy copy;
};

#define EMBER_SAMPLE_F_KERNEL_THREAD 1u /* no user address space */
#define EMBER_SAMPLE_F_IN_KERNEL 2u     /* the CPU was in kernel mode */
#define EMBER_SAMPLE_F_STACK_COPY 4u    /* carries an ember_stack_copy */
/* An off-CPU sample taken when a runnable thread was switched out (it waits
 * in the run queue): its value comes in the ember_wait_end of the same tid
 * that follows it on the ring when the thread runs again. */
#define EMBER_SAMPLE_F_VALUE_FOLLOWS 8u

/* User frames whose pc is not a return address (the frame a signal
 * interrupted) carry this bit; user addresses never reach it. */
#define EMBER_FRAME_NOT_RETURN (1ull << 62)

/* Where a user-stack slot's frame came from: bits 56-61 of the slot
 * (agent/frames/origin.h). 0 is native code, so a plain address is a native
 * frame. A runtime's BPF part tags its frames with its own id; its decoder in
 * user space says how many slots one of its frames takes. Kernel frames have
 * their own array; Go and JIT are told apart from native code only when
 * symbolizing. */
#define EMBER_ORIGIN_SHIFT 56
#define EMBER_ORIGIN_MASK 0x3full
enum ember_origin {
  EMBER_ORIGIN_NATIVE = 0,
  EMBER_ORIGIN_KERNEL = 1,
  EMBER_ORIGIN_GO = 2,
  EMBER_ORIGIN_JIT = 3, /* named by a perf map */
  EMBER_ORIGIN_FIRST_RUNTIME = 8, /* interpreters and managed runtimes from here */
  EMBER_ORIGIN_MAX = 64,
};

/* Bytes of an ember_sample before the stack array. */
#define EMBER_SAMPLE_HDR_SIZE 72
/* Bytes of ember_stack_copy before its data. */
#define EMBER_STACK_COPY_HDR_SIZE 168

/* --- unwind tables (see agent/unwind/bpf_tables.h) -------------------------
 * Rows are packed 16384 to a 64 KiB page in one big array, each binary's
 * contiguous. A binary's text is cut into 64 KiB pages; the index has one
 * entry per text page, saying where its rows are. Rules are deduplicated
 * across all binaries. A process is a sorted run of mappings. */
#define EMBER_ROWS_PER_PAGE 16384
#define EMBER_MAX_PROC_MAPPINGS 256

struct ember_unwind_row {
  __u16 pc_low; /* low 16 bits of the ELF address where the rule starts */
  __u16 rule;
};

struct ember_row_page {
  struct ember_unwind_row rows[EMBER_ROWS_PER_PAGE];
};

/* Every struct stored in an array map has a size that is a multiple of 8,
 * so a C array of them has the map's stride. */
struct ember_text_page {
  __u32 first_row; /* global row index */
  __u16 count;     /* rows starting in this text page */
  __u16 carry_rule; /* rule in force at the page's first byte */
};

/* Begins with the layout of ember::unwind::UnwindRule (static_asserted
 * there). Padded to 16 bytes explicitly: array map elements are 8-byte
 * aligned, and batch updates pass arrays of them. */
struct ember_unwind_rule {
  __s32 cfa_offset;
  __s16 rbp_offset;
  __s16 ra_offset;
  __u8 kind;
  __u8 flags;
  __u8 reg;
  __u8 aux;
  __u32 pad;
};

#define EMBER_MAPPING_F_NO_TABLE 1u /* JIT or unreadable: frame pointers only */

struct ember_mapping {
  __u64 start;
  __u64 end;
  __u64 bias;       /* ELF vaddr = address - bias */
  __u32 index_base; /* index entry of the binary's first text page */
  __u32 page_first; /* that page's number (vaddr >> 16) */
  __u32 page_count;
  __u32 flags;
};

struct ember_proc {
  __u32 first; /* index into the mappings array */
  __u32 count; /* sorted by start, at most EMBER_MAX_PROC_MAPPINGS */
};

/* A process image was replaced by execve(). Lets user space drop its old
 * mappings and, if the process dies before it is looked at, still place the
 * executable's frames: the executable's text lies in [start_code, end_code)
 * and its load bias is entry - e_entry. */
struct ember_exec_event {
  __u32 kind; /* EMBER_REC_EXEC */
  __u32 pid;
  __u64 time_ns;
  __u64 exe_ino;
  __u32 exe_dev; /* kernel encoding: major << 20 | minor */
  __u32 pad;
  __u64 start_code;
  __u64 end_code;
  __u64 entry; /* AT_ENTRY from the auxiliary vector */
  char comm[EMBER_COMM_LEN];
  char filename[EMBER_MAX_FILENAME];
};

/* The last thread of a process exited; samples before it are already on the
 * ring, in order, so user space can forget the process after this record. */
struct ember_exit_event {
  __u32 kind; /* EMBER_REC_EXIT */
  __u32 pid;
  __u64 time_ns;
};

/* The end of a run-queue wait whose sample was sent when it began
 * (EMBER_SAMPLE_F_VALUE_FOLLOWS): the sample's value, its weight in ns. */
struct ember_wait_end {
  __u32 kind; /* EMBER_REC_WAIT_END */
  __u32 tid;
  __u64 start_ns; /* when the wait began: its sample's time_ns */
  __u64 value;
};

/* --- relabel verdicts (see agent/label/verdict.h) --------------------------
 * User space decides per process whether `relabel_configs` keep it; a
 * process they drop is written here so the sampler skips it before doing any
 * work. Keyed by tgid (drop_tgids) or, when the verdict provably depends only
 * on the process's cgroup, by cgroup v2 id (drop_cgroups). The value is
 * unused (always 1). Exec and exit delete a tgid's entry in the kernel. */
typedef __u32 ember_verdict_tgid_key;
typedef __u64 ember_verdict_cgroup_key;

#endif /* EMBER_BPF_ABI_H */
