#!/bin/sh
# Makes the seed corpus of each fuzz target from the test fixtures (built
# just before) and the project's own example files. Nothing here is
# committed: ELF seeds are the fixtures this build compiled.
#
# Usage: make_seeds.sh FIXTURE_DIR OUT SOURCE_DIR
set -eu
fx=$1
out=$2
src=$3
rm -rf "$out"
mkdir -p "$out/elf" "$out/cfi" "$out/text" "$out/config" "$out/kube" "$out/http" "$out/ring" "$out/profile"

# ELF files, small first: C, C++, a shared object, split debug files,
# MiniDebugInfo, .debug_frame only, and one stripped Go binary (.gopclntab).
for f in short_lived tiny_calls symbols_pie libfixture.so unwind_debugframe unwind_nofp_g \
         unwind_split.debug inline_heavy_c cxx_names sym_go_stripped; do
  cp "$fx/$f" "$out/elf/$f"
done
for f in mini/bin link/bin link/.debug/bin.debug; do
  cp "$fx/split/$f" "$out/elf/split_$(echo "$f" | tr '/.' '__')"
done

# CFI sections, behind the selector byte (0: .eh_frame, 1: .debug_frame).
n=0
for f in short_lived tiny_calls libfixture.so unwind_nofp_g; do
  if objcopy -O binary --only-section=.eh_frame "$fx/$f" "$out/cfi.tmp" 2>/dev/null; then
    { printf '\000'; cat "$out/cfi.tmp"; } >"$out/cfi/eh_$n"
  fi
  n=$((n + 1))
done
if objcopy -O binary --only-section=.debug_frame "$fx/unwind_debugframe" "$out/cfi.tmp" 2>/dev/null; then
  { printf '\001'; cat "$out/cfi.tmp"; } >"$out/cfi/debug_frame"
fi
rm -f "$out/cfi.tmp"

# Text, behind the selector byte of text_parsers_fuzz: 0 kallsyms, 1 maps,
# 2 cgroup, 3 perf map, 4 a symbol name.
sel() { printf "\\$(printf '%03o' "$1")"; }
{ sel 0; printf '%s\n' \
    "ffffffff81000000 T _stext" "ffffffff81001000 T __pfx_do_one" "ffffffff81001010 T do_one" \
    "ffffffff81002000 t local_fn" "ffffffffc0a00000 t nft_do_chain	[nf_tables]" \
    "0000000000000000 A fixed_percpu_data"; } >"$out/text/kallsyms"
if [ -r /proc/kallsyms ]; then { sel 0; head -n 2000 /proc/kallsyms; } >"$out/text/kallsyms_host"; fi
{ sel 1; cat /proc/self/maps; } >"$out/text/maps_self"
{ sel 1; printf '%s\n' \
    "55d7f0764000-55d7f0777000 r-xp 00004000 fd:01 262151 /usr/bin/dash" \
    "7f1c2a230000-7f1c2a232000 r-xp 00000000 00:05 1234 /memfd:jit (deleted)" \
    "7f1c2a240000-7f1c2a250000 rwxp 00000000 00:00 0" \
    "7ffd8a1f0000-7ffd8a1f2000 r-xp 00000000 00:00 0 [vdso]" \
    "7f1c2a260000-7f1c2a270000 r-xp 00000000 fd:01 99 /tmp/my lib.so"; } >"$out/text/maps"
{ sel 2; cat /proc/self/cgroup; } >"$out/text/cgroup_self"
{ sel 2; printf '%s\n' \
    "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1c4e3a1b_2f6d_4b7e_9a0c_0123456789ab.slice/cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope" \
    "12:memory:/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" \
    "1:name=systemd:/system.slice/ember.service"; } >"$out/text/cgroup"
{ sel 3; printf '%s\n' "7f0000001000 40 LazyCompile:*hot /app/x.js:1" "7f0000001040 20 Builtin:JSEntry" \
    "0x7f0000002000 0x100 [jit] java.lang.String::hashCode"; } >"$out/text/perfmap"
i=0
for f in cxx_names inline_heavy_cxx; do
  nm "$fx/$f" 2>/dev/null | awk '$3 ~ /^_(Z|R)/ {print $3}' | head -n 150 | while read -r name; do
    { sel 4; printf '%s' "$name"; } >"$out/text/sym_${f}_$i"
    i=$((i + 1))
  done
done
for name in _RNvCs1234_7mycrate4main _ZN4core3fmt5write17h0123456789abcdefE _ZSt4endlIcSt11char_traitsIcEERSt13basic_ostreamIT_T0_ES6_; do
  { sel 4; printf '%s' "$name"; } >"$out/text/sym_$name"
done

# The agent's config: the packaged example, and a small one with relabel rules.
cp "$src/packaging/ember.yaml" "$out/config/packaged.yaml"
cat >"$out/config/relabel.yaml" <<'YAML'
frequency_hz: 100
profiles: [cpu]
server:
  url: http://pyroscope:4040
  api: push
relabel_configs:
  - source_labels: [__meta_process_comm]
    regex: "(ember|sleep)"
    action: drop
  - source_labels: [__meta_kubernetes_pod_label_app]
    target_label: service_name
    replacement: "$1"
  - action: labelmap
    regex: "__meta_kubernetes_pod_label_(.+)"
YAML

# Kubernetes: selector 0 pod list, 1 watch event line, 2 Status.
pod='{"metadata":{"name":"web-1","namespace":"shop","uid":"1c4e3a1b-2f6d-4b7e-9a0c-0123456789ab","labels":{"app":"web"},"ownerReferences":[{"kind":"ReplicaSet","name":"web-5f7"}]},"spec":{"nodeName":"node-a"},"status":{"phase":"Running","containerStatuses":[{"name":"web","containerID":"containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}]}}'
{ sel 0; printf '{"kind":"PodList","metadata":{"resourceVersion":"42","continue":"abc"},"items":[%s]}' "$pod"; } >"$out/kube/list"
{ sel 1; printf '{"type":"ADDED","object":%s}' "$pod"; } >"$out/kube/watch"
{ sel 1; printf '{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"99"}}}'; } >"$out/kube/bookmark"
{ sel 2; printf '{"kind":"Status","status":"Failure","reason":"Expired","code":410,"message":"too old"}'; } >"$out/kube/status"

printf 'GET /metrics HTTP/1.1\r\nHost: node-a:9799\r\nAccept: */*\r\n\r\n' >"$out/http/metrics"
printf 'HEAD /healthz?x=1 HTTP/1.0\n\n' >"$out/http/healthz"

# Ring buffer records (bpf/ember_abi.h), little-endian. A sample with kernel
# and user frames; one whose walk BPF left to user space, with a stack copy
# (pc is an offset into the fuzz target's own text, where it moves it); an
# exec and an exit event; a run-queue wait's sample and its end.
u8() { printf "\\$(printf '%03o' "$1")"; }
u16() { u8 $(($1 & 255)); u8 $(($1 >> 8 & 255)); }
u32() { u16 $(($1 & 65535)); u16 $(($1 >> 16 & 65535)); }
u64() { u32 $(($1 & 4294967295)); u32 $(($1 >> 32 & 4294967295)); }
zeros() { head -c "$1" /dev/zero; }
sample_header() {  # kernel frames, user frames, flags, unwind stop
  u32 1; u32 4242; u32 4243; u32 1; u64 123456789; u64 77; u32 0; u32 0
  u16 "$1"; u16 "$2"; u16 "$3"; u8 "$4"; u8 0; printf 'seedcomm'; zeros 8; u64 10000000
}
{ sample_header 2 3 2 0
  u32 0x81000010; u32 0xffffffff; u32 0x81000020; u32 0xffffffff
  u64 0x401010; u64 0x402020; u64 0x403030; } >"$out/ring/sample"
{ sample_header 1 2 4 7
  u32 0x81000010; u32 0xffffffff; u64 0x401010; u64 0x1234; zeros $((253 * 8))
  u64 0x1234; u64 0x7ffc00001100; u64 0x7ffc00001180; u64 0x7ffc00001000; zeros 128
  u32 4096; u8 0; u8 1; u16 0
  zeros 256; u64 0x7ffc00001200; u64 0x2345; zeros $((4096 - 272)); } >"$out/ring/stack_copy"
{ u32 2; u32 4242; u64 123456789; u64 1234; u32 0x800001; u32 0; u64 0x400000; u64 0x500000
  u64 0x401000; printf 'seedcomm'; zeros 8; printf '/usr/bin/seed'; zeros 243; } >"$out/ring/exec"
{ u32 3; u32 4242; u64 123456789; } >"$out/ring/exit"
# A run-queue wait's sample (its value follows) and the wait's end.
{ sample_header 1 2 10 0
  u32 0x81000010; u32 0xffffffff; u64 0x401010; u64 0x402020; } >"$out/ring/runq_sample"
{ u32 4; u32 4243; u64 123456789; u64 5000000; } >"$out/ring/wait_end"

# Profiles for ember report and diff: folded stacks, and a minimal pprof
# (one sample type cpu/nanoseconds, one sample of main) by hand, plain and
# gzipped.
printf '%s\n' "# perf script | stackcollapse" "app;main;parse;lex 20" "app;main;solve;kernel_[k] 30" \
  "app;main;std::vector<int, std::allocator<int> >::push_back(int const&) 5" >"$out/profile/folded"
{ printf '\012\004\010\001\020\002'                 # sample_type {type 1, unit 2}
  printf '\022\006\012\001\001\022\001\005'         # sample {location_id [1], value [5]}
  printf '\042\006\010\001\042\002\010\001'         # location {id 1, line {function_id 1}}
  printf '\052\004\010\001\020\003'                 # function {id 1, name 3}
  printf '\062\000\062\003cpu\062\013nanoseconds\062\004main'; } >"$out/profile/pprof"
gzip -c "$out/profile/pprof" >"$out/profile/pprof.gz"

touch "$out/stamp"
