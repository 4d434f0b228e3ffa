/* The kernel types profile.bpf.c reads, pinned here instead of generated
 * from the build host's kernel.
 *
 * Why not a vmlinux.h: a header dumped from the build host's BTF makes the
 * object depend on that kernel. Clang sizes every load from the field's
 * declared type, so a field whose type changed between kernels relocates
 * into an instruction of the wrong width: the object built on 6.18 did not
 * load on Debian 12's 6.1 (pt_regs.cs, see below). This header declares only
 * what Ember reads, with the widest layout every supported kernel (5.8 to
 * 6.18) agrees on, and a comment on each field that differs.
 *
 * Two kinds of types live here:
 *  - ABI layouts (bpf_perf_event_data and the saved user registers). These
 *    are fixed by the kernel's user ABI and read at fixed offsets, with no
 *    CO-RE relocation: the verifier only allows 8-byte loads from a
 *    perf_event context anyway.
 *  - Internal kernel structs (task_struct, mm_struct, ...), declared with
 *    preserve_access_index so that libbpf relocates each field to wherever
 *    the running kernel has it. Only the members Ember reads are declared;
 *    CO-RE matches them by name, so their order and the structs' sizes here
 *    do not matter. Every access goes through BPF_CORE_READ (a probe read),
 *    never a direct load, so a width change is a size the read is told
 *    about, not an instruction the loader must patch.
 *
 * The audit of every access, with the kernels where each differs, is in the
 * README ("Kernel types"). The build checks every relocation against each
 * kernel BTF it can find (tests/kernels/check_btf.sh).
 */
#ifndef EMBER_KERNEL_TYPES_H
#define EMBER_KERNEL_TYPES_H

/* --- scalar types (the kernel's UAPI names) ------------------------------- */
typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };
typedef int pid_t;
typedef __u32 dev_t;

/* bpf_helper_defs.h passes this enum by value (bpf_rc_keydown). */
enum rc_proto { RC_PROTO_UNKNOWN = 0 };

/* --- UAPI constants (include/uapi/linux/bpf.h); values are ABI ------------- */
enum bpf_map_type {
  BPF_MAP_TYPE_HASH = 1,
  BPF_MAP_TYPE_ARRAY = 2,
  BPF_MAP_TYPE_PERCPU_ARRAY = 6,
  BPF_MAP_TYPE_LRU_HASH = 9,
  BPF_MAP_TYPE_RINGBUF = 27,
};
enum { BPF_ANY = 0 };                                       /* map update flags */
enum { BPF_RB_NO_WAKEUP = 1, BPF_RB_FORCE_WAKEUP = 2 };     /* bpf_ringbuf_output */
enum { BPF_RB_AVAIL_DATA = 0 };                              /* bpf_ringbuf_query */
enum { BPF_F_USER_STACK = 1 << 8 };                          /* bpf_get_stack */

/* --- ABI layouts: read at fixed offsets, never relocated ------------------ */
#if defined(__TARGET_ARCH_x86)
/* The registers saved at kernel entry, in the order of the x86-64 user ABI
 * (arch/x86/include/uapi/asm/ptrace.h; PTRACE_GETREGS returns the same
 * layout). The perf_event context of a sample is exactly this
 * (bpf_user_pt_regs_t is struct pt_regs on x86).
 *
 * cs and ss: `unsigned long` on 5.10, 5.15 and 6.1. The FRED rework (in
 * Ubuntu's 6.8, and 6.12, 6.18, 7.2) declares each as a union of a u16
 * selector, a u64 (csx/ssx) and FRED bit fields, so a vmlinux.h from such a
 * kernel makes clang emit a 2-byte load that libbpf cannot relocate onto 6.1's
 * 8-byte field ("unexpected mem size: got 8, exp 2"). The slot is 8 bytes on
 * every kernel and the selector's privilege level is in its low two bits
 * either way, so Ember reads the whole slot. */
struct ember_user_regs {
  __u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
  __u64 ax, cx, dx, si, di, orig_ax;
  __u64 ip;
  __u64 cs; /* csx since 6.9 */
  __u64 flags;
  __u64 sp;
  __u64 ss; /* ssx since 6.9 */
};
_Static_assert(sizeof(struct ember_user_regs) == 21 * 8, "x86-64 pt_regs is 21 slots");
_Static_assert(__builtin_offsetof(struct ember_user_regs, ip) == 16 * 8, "pt_regs.ip");
_Static_assert(__builtin_offsetof(struct ember_user_regs, cs) == 17 * 8, "pt_regs.cs");
_Static_assert(__builtin_offsetof(struct ember_user_regs, sp) == 19 * 8, "pt_regs.sp");
#elif defined(__TARGET_ARCH_arm64)
/* arch/arm64/include/uapi/asm/ptrace.h: the start of the kernel's pt_regs. */
struct ember_user_regs {
  __u64 regs[31];
  __u64 sp;
  __u64 pc;
  __u64 pstate;
};
#else
#error "unsupported architecture: define __TARGET_ARCH_x86 or __TARGET_ARCH_arm64"
#endif

/* include/uapi/linux/bpf_perf_event.h: the context of a perf_event program. */
struct bpf_perf_event_data {
  struct ember_user_regs regs;
  __u64 sample_period;
  __u64 addr;
};

/* bpf_helper_defs.h declares helpers with `struct pt_regs *`; Ember never
 * dereferences one as that type. */
struct pt_regs;

/* --- internal kernel structs: relocated by CO-RE -------------------------- */
#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

typedef struct {
  int counter;
} atomic_t;

struct super_block {
  dev_t s_dev;
};

struct inode {
  unsigned long i_ino;
  struct super_block* i_sb;
};

struct file {
  struct inode* f_inode;
};

/* mm_struct's fields moved into an anonymous struct in 5.x; CO-RE follows
 * names through anonymous members, so they are declared flat here.
 *
 * saved_auxv is unsigned long[AT_VECTOR_SIZE], which depends on the
 * architecture and the kernel: on x86-64, 46 entries on 5.10, 48 on 5.15 and
 * 6.1, 52 on 6.8 and 6.12, 56 on 6.18 and 7.2. The program reads it with
 * bpf_core_field_offset() and bpf_core_field_size(), never past the running
 * kernel's end. The size declared here is the smallest. */
struct mm_struct {
  unsigned long start_code;
  unsigned long end_code;
  unsigned long saved_auxv[46];
  struct file* exe_file;
};

struct signal_struct {
  atomic_t live;
};

/* The run state moved from `long state` to `unsigned int __state` in 5.14;
 * the older name is declared as a flavor and read when __state is absent. */
struct task_struct {
  pid_t pid;
  unsigned int __state;
  pid_t tgid;
  char comm[16];
  struct mm_struct* mm;
  struct signal_struct* signal;
};

struct task_struct___pre514 {
  long state;
};

struct linux_binprm {
  const char* filename;
};

#pragma clang attribute pop

#endif /* EMBER_KERNEL_TYPES_H */
