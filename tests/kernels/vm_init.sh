#!/bin/busybox sh
# PID 1 of a kernel-matrix VM (tests/kernels/matrix.py). Mounts what Ember
# needs, runs the end-to-end subset, writes every result to the second serial
# port (ttyS1, a file on the host) between markers the host parses, and
# powers off. The kernel's own console is ttyS0.
#
# The host judges the results (stack shapes, shares, exit codes); this script
# only runs things and reports them verbatim.

/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin:/usr/sbin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
ip link set lo up 2>/dev/null
# Ember reads kernel symbols; let it see their addresses.
echo 0 > /proc/sys/kernel/kptr_restrict

W=/opt/ember/work
E=/opt/ember/bin/ember

# The results port is opened once, for the whole run. Reopened for every
# write, each close waited for the UART to drain and, past the driver's
# closing_wait (30 s), threw away what was left: at the default 9600 baud a
# 98 KiB folded file of deep qsort stacks takes over 100 s, and on a busy host
# the host saw it cut short, then every later step as "did not run". 115200
# baud makes it 12 times faster; the one open descriptor loses nothing.
stty -F /dev/ttyS1 115200 2>/dev/null
exec 3>/dev/ttyS1
say() { echo "@@ $*" >&3; }
# send NAME FILE: a file's contents, verbatim, between markers.
send() {
  say "file $1"
  if [ -f "$2" ]; then cat "$2" >&3; fi
  say "endfile $1"
}
# step NAME COMMAND...: runs a command with a time limit, sends its exit code
# and its output.
step() {
  name=$1
  shift
  say "begin $name"
  start=$(date +%s)
  timeout -s KILL 240 "$@" > /tmp/$name.out 2>&1
  rc=$?
  end=$(date +%s)
  send $name.log /tmp/$name.out
  say "end $name rc=$rc seconds=$((end - start))"
}

say "boot $(uname -r) cpus=$(grep -c ^processor /proc/cpuinfo)"
[ -e /sys/kernel/btf/vmlinux ] && say "has btf"

# 1. The object loads: features and every program, without attaching.
step check $E kernel-check

# 2. Frame pointers, known shape: main -> run -> caller_{a,b,c} -> leaf, 6:3:1.
step fp $E record -F 199 --unwinder fp -o /tmp/fp.folded -- $W/ratio_fp 5
send fp.folded /tmp/fp.folded

# 3. The default unwinder on a workload without frame pointers: unwind
#    tables where the kernel has bpf_loop (complete to main), frame pointers
#    otherwise (the fallback is logged).
step auto $E record -F 199 -o /tmp/auto.folded -- $W/unwind_nofp ratio 5
send auto.folded /tmp/auto.folded
#    Through libc's qsort (no frame pointers in Debian's libc).
step qsort $E record -F 199 -o /tmp/qsort.folded -- $W/unwind_nofp qsort 4
send qsort.folded /tmp/qsort.folded
#    Asking for tables explicitly: works, or fails with a clear message.
step tables $E record -F 99 -d 1s --unwinder tables -o /tmp/tables.folded -- $W/unwind_nofp ratio 1

# 4. Exec and exit tracking: 40 processes of 30 ms each, gone before their
#    samples are symbolized.
step short $E record -F 199 -o /tmp/short.folded -- $W/exec_driver 40 $W/short_lived_nofp 30
send short.folded /tmp/short.folded

# 4b. Off-CPU: a main thread that sleeps, blocks on a pipe and burns, timing
#     each (its JSON line is in the log): the waits under their functions,
#     with the scheduler's frames below them.
step offcpu $E record --profile off-cpu -o /tmp/offcpu.folded -- $W/offcpu_workload 10 20 15 5
send offcpu.folded /tmp/offcpu.folded

# 5. The fallbacks of older kernels, forced on this one.
step nofeatures $E record -F 199 --disable-kernel-feature bpf_loop \
  --disable-kernel-feature task_pt_regs -o /tmp/nofeatures.folded -- $W/ratio_fp 3
send nofeatures.folded /tmp/nofeatures.folded

# 6. The agent: starts, writes a profile per interval, and exits cleanly on
#    SIGTERM.
mkdir -p /tmp/profiles
cat > /tmp/agent.yaml <<EOF
frequency: 99
interval: 2s
output:
  directory: /tmp/profiles
metrics:
  listen: ""
EOF
say "begin agent"
$E agent --config /tmp/agent.yaml > /tmp/agent.out 2>&1 &
agent=$!
$W/ratio_fp 6 > /dev/null
kill -TERM $agent
i=0
while kill -0 $agent 2>/dev/null && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
kill -0 $agent 2>/dev/null && kill -KILL $agent
wait $agent
rc=$?
send agent.log /tmp/agent.out
say "profiles $(ls /tmp/profiles | grep -c 'pb.gz$')"
say "end agent rc=$rc seconds=0"

# 7. The sampler's cost on this kernel, measured by the kernel (BPF run-time
#    stats): tables and frame pointers on the same workload.
step cost-tables $E record -F 199 --bpf-stats -o /tmp/cost1.folded -- $W/unwind_nofp ratio 3
step cost-fp $E record -F 199 --bpf-stats --unwinder fp -o /tmp/cost2.folded -- $W/unwind_nofp ratio 3

say "done"
# Closing the port waits until the UART has sent everything.
exec 3>&-
sync
poweroff -f
