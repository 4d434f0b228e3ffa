#!/usr/bin/env bash
# bench/demangle: why Ember keeps its own Rust demangler. Compares it with
# LLVM's and GNU libiberty's on the specification's v0 vectors, on hostile
# symbols (bounded output, time and memory), and on speed; see compare.cc.
# C++ names are not compared: Ember demangles them with libstdc++'s
# abi::__cxa_demangle, which is libiberty's demangler.
#
# Usage: bench/demangle/run.sh
# Needs: g++, python3, and the Debian packages llvm-14-dev and libiberty-dev
#        (scripts/install-deps.sh --bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
for f in /usr/lib/llvm-14/lib/libLLVMDemangle.a /usr/include/libiberty/demangle.h; do
  [ -e "$f" ] || { echo "$f missing: scripts/install-deps.sh --bench" >&2; exit 1; }
done
TMP=$(mktemp -d /tmp/ember-bench-demangle-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# The expected full forms of TEST(DemangleRustV0, HandVectors), one
# "mangled<TAB>expected" per line: the test is the specification, so the
# bench reads it rather than keeping a copy.
python3 - tests/unit/demangle_test.cc > "$TMP/cases.tsv" <<'PY'
import ast, re, sys
src = open(sys.argv[1]).read()
body = src[src.index("TEST(DemangleRustV0, HandVectors)"):src.index("TEST(DemangleRustV0, MalformedComesBackUnchanged)")]
body = re.sub(r'"\s*\n\s*"', "", body)  # literals continued on the next line
lit = r'("(?:[^"\\]|\\.)*")'
for m in re.finditer(r"\{" + lit + r",\s*" + lit + r",\s*" + lit + r"\}", body):
    mangled, full, _ = (ast.literal_eval(x) for x in m.groups())
    print(mangled + "\t" + full)
PY

g++ -std=c++17 -O2 -I. -I/usr/lib/llvm-14/include bench/demangle/compare.cc symbolizer/demangle.cc \
  common/utf8.cc -L/usr/lib/llvm-14/lib -lLLVMDemangle -liberty -o "$TMP/compare"
"$TMP/compare" "$TMP/cases.tsv"
