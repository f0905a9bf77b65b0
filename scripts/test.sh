#!/usr/bin/env bash
# Installs the dependencies, configures, builds everything (library, tests, benchmarks,
# examples; the CUDA backend too when nvcc is present) and runs the test suite with ctest.
# GPU tests skip with a message on machines without a GPU. A second stage builds the C API
# tests with AddressSanitizer (build-asan/) and runs them with leak detection.
#
#   bash scripts/test.sh                 # build in build/, run all tests
#   REEL_SKIP_ASAN=1 bash scripts/test.sh    # without the AddressSanitizer stage
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
ctest_count=$(ctest --test-dir "$BUILD_DIR" -N | sed -n 's/^Total Tests: //p')

# Second stage: the C API test programs under AddressSanitizer + UBSan, leaks included, in
# their own build directory. Only those programs and the shared library they link are built.
# REEL_SKIP_ASAN=1 skips it.
if [ "${REEL_SKIP_ASAN:-0}" != 1 ]; then
  ASAN_DIR="${ASAN_BUILD_DIR:-build-asan}"
  # -O1: what the sanitizer documentation recommends, and quicker to compile than -O3.
  cmake -S . -B "$ASAN_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="-O1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
    -DREEL_SANITIZE=ON -DREEL_CUDA=OFF -DREEL_MPI=OFF -DREEL_BUILD_BENCH=OFF -DREEL_BUILD_EXAMPLES=OFF
  capi_targets=()
  for src in tests/capi/test_*.c; do capi_targets+=("capi_$(basename "$src" .c)"); done
  cmake --build "$ASAN_DIR" -j "$JOBS" --target "${capi_targets[@]}"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
  export LSAN_OPTIONS="suppressions=$PWD/tests/capi/lsan.supp:print_suppressions=0"
  status=0
  for t in "${capi_targets[@]}"; do
    echo "== $t (AddressSanitizer)"
    OMP_NUM_THREADS=2 "$ASAN_DIR/tests/$t" || status=1
  done
  [ "$status" -eq 0 ] || { echo "C API tests failed under AddressSanitizer"; exit 1; }
fi
# One closing line for the whole run (ctest failures and ASan failures have exited above).
echo "total: ${ctest_count} passed, 0 failed"
