#!/usr/bin/env bash
# Installs the dependencies, configures, builds everything (library, tests, benchmarks,
# examples; the CUDA backend too when nvcc is present) and runs the test suite with ctest.
# GPU tests skip with a message on machines without a GPU.
#
#   bash scripts/test.sh                 # build in build/, run all tests
#   BUILD_DIR=build-asan REEL_SANITIZE=ON bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

BUILD_DIR="${BUILD_DIR:-build}"
JOBS="${JOBS:-$(nproc)}"
cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" \
  -DREEL_CUDA="${REEL_CUDA:-AUTO}" \
  -DREEL_SANITIZE="${REEL_SANITIZE:-OFF}"
cmake --build "$BUILD_DIR" -j "$JOBS"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" --timeout 1200
