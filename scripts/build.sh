#!/usr/bin/env bash
# Configures and builds Ember (binary: build/ember) and its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
build_type="${BUILD_TYPE:-Release}"
cmake -S . -B build -DCMAKE_BUILD_TYPE="$build_type"
cmake --build build -j"$(nproc)"
