/* The contract between profile.bpf.c and user space.
 *
 * Both sides include this header: the BPF program (through vmlinux.h types)
 * and the agent (through <linux/types.h>). Every record that crosses the ring
 * buffer is laid out here, and user space static_asserts the layout so that a
 * change on one side cannot silently corrupt the other.
 */
#ifndef EMBER_BPF_ABI_H
#define EMBER_BPF_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define EMBER_MAX_STACK_DEPTH 127 /* the kernel's perf_event_max_stack default */
#define EMBER_COMM_LEN 16
#define EMBER_MAX_FILENAME 256

/* Kind of record on the ring buffer; the first 4 bytes of every record. */
enum ember_record_kind {
  EMBER_REC_SAMPLE = 1,
  EMBER_REC_EXEC = 2,
  EMBER_REC_EXIT = 3,
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
  EMBER_CTR_MAX,
};

/* One CPU-clock sample. Followed on the ring by kstack_len kernel addresses,
 * then ustack_len user addresses (innermost first), as __u64 each. */
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
  __u32 flags; /* EMBER_SAMPLE_F_* */
  char comm[EMBER_COMM_LEN];
  __u64 stack[2 * EMBER_MAX_STACK_DEPTH];
};

#define EMBER_SAMPLE_F_KERNEL_THREAD 1u /* no user address space */
#define EMBER_SAMPLE_F_IN_KERNEL 2u     /* the CPU was in kernel mode */

/* Bytes of an ember_sample before the stack array. */
#define EMBER_SAMPLE_HDR_SIZE 64

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

#endif /* EMBER_BPF_ABI_H */
