#!/usr/bin/env bash
# Runs the GPU tests and benchmarks that scripts/gpu-bundle.sh packed, on a machine with a GPU
# and without reel's build dependencies, from the repository root (fixtures and models come
# from this checkout). Keeps going after failures and timeouts and ends within DEADLINE_S, so
# one call of a 10-minute runner covers it. Writes under $OUT (at most 7 files, no folders):
#   summary.txt               pass/fail/skip counts per test binary, failures, headline numbers
#   env.txt                   GPU, driver, the CUDA libraries found, ldd of a test binary
#   run.log                   this script's output
#   tests.tar.gz              per test binary: <name>.json (--gtest_output) and <name>.log
#   bench_attention.json      Google Benchmark JSON
#   bench_gpu_pipeline.json   Google Benchmark JSON
#   logs.tar.gz               the benchmarks' and reel-cli's console output
# Exit status: 0 when every test binary ran to the end without a failure, else 1.
#
#   OUT=/tmp/gpu QUICK=1 bash scripts/gpu-run.sh            # first call: reduced bench sizes
#   OUT=/tmp/gpu STAGES="attention pipeline" bash scripts/gpu-run.sh   # full-size benchmarks
#
# Environment: OUT (default gpu-results/), ARCHIVE (default .gpu-bundle/reel-gpu.tar.xz),
# QUICK=1 (a few attention shapes; the pipeline at 4 layers, 17 frames, 1 step, bf16 VAE),
# STAGES (any of: tests attention pipeline cli; default all), DEADLINE_S (default 540),
# TEST_TIMEOUT (seconds per test binary, default 150), TESTS (test binaries to run, default all),
# TESTS_S / ATTENTION_S / PIPELINE_S / CLI_S (the stages' budgets; QUICK: 270 / 90 / 120 / 60),
# REEL_BENCH_ATTENTION_KERNELS (default cuda_flash,cudnn,cublas), UNPACK_DIR (default
# /tmp/reel-gpu-run).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
START=$SECONDS

QUICK="${QUICK:-0}"
OUT="${OUT:-$ROOT/gpu-results}"
ARCHIVE="${ARCHIVE:-$ROOT/.gpu-bundle/reel-gpu.tar.xz}"
STAGES="${STAGES:-tests attention pipeline cli}"
DEADLINE_S="${DEADLINE_S:-540}"
TEST_TIMEOUT="${TEST_TIMEOUT:-150}"
UNPACK_DIR="${UNPACK_DIR:-/tmp/reel-gpu-run}"
# Stage budgets (seconds); each is also cut to what is left before the deadline.
if [ "$QUICK" = 1 ]; then
  TESTS_S="${TESTS_S:-270}" ATTENTION_S="${ATTENTION_S:-90}" PIPELINE_S="${PIPELINE_S:-120}"
else
  TESTS_S="${TESTS_S:-400}" ATTENTION_S="${ATTENTION_S:-300}" PIPELINE_S="${PIPELINE_S:-400}"
fi
CLI_S="${CLI_S:-60}"
RESERVE_S=15   # kept back for the summary and the tars

mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
TEE_PID=$!

BUNDLE="$UNPACK_DIR/reel-gpu"
RESULTS="$UNPACK_DIR/results"
SUMMARY="$RESULTS/summary.txt"
note() { echo "gpu-run [$((SECONDS - START)) s]: $*"; }
has_stage() { [[ " $STAGES " == *" $1 "* ]]; }
# Seconds a stage may take: its own budget, cut to what is left before the deadline.
budget() {
  local left=$((DEADLINE_S - (SECONDS - START) - RESERVE_S))
  echo $(($1 < left ? $1 : left))
}

finish() {
  note "done in $((SECONDS - START)) s; files in $OUT: $(cd "$OUT" && echo *)"
  exec 1>&- 2>&-
  wait "$TEE_PID" 2>/dev/null
  exit "$1"
}

# ---------------------------------------------------------------- unpack
if [ ! -f "$ARCHIVE" ]; then
  note "no archive at $ARCHIVE: run scripts/gpu-bundle.sh on the dev machine, then carry .gpu-bundle"
  echo "no archive: nothing ran" >"$OUT/summary.txt"
  finish 1
fi
rm -rf "$UNPACK_DIR"
mkdir -p "$UNPACK_DIR" "$RESULTS/tests" "$RESULTS/logs" "$UNPACK_DIR/tmp"
xz -dc "$ARCHIVE" | tar -x -C "$UNPACK_DIR" || { note "cannot unpack $ARCHIVE"; finish 1; }
note "unpacked $ARCHIVE"
sed -n '1,5p' "$BUNDLE/MANIFEST.txt"

# ---------------------------------------------------------------- libraries
# The CUDA libraries come from the image: the toolkit's folders, the system's, or the
# nvidia-* Python wheels (cuDNN is often only there).
python_nvidia=()
for py in python3 /opt/torch/.venv/bin/python3; do
  site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null) || continue
  python_nvidia+=("$site"/nvidia/*/lib)
done
candidate_dirs=(/usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib
                /usr/local/cuda-*/lib64 /usr/local/cuda-*/lib /usr/local/cuda-*/targets/x86_64-linux/lib
                /usr/lib/x86_64-linux-gnu /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib
                "${python_nvidia[@]}")
find_lib() {
  local d
  for d in "${candidate_dirs[@]}"; do
    [ -e "$d/$1" ] && { echo "$d"; return 0; }
  done
  echo "$LDCONFIG_CACHE" | awk -v n="$1" '$1 == n && /x86-64/ { sub(/\/[^\/]*$/, "", $NF); print $NF; exit }'
}

LDCONFIG_CACHE=$(ldconfig -p 2>/dev/null)
lib_path="$BUNDLE/lib"
# libstdc++, libgcc_s, libgomp, zlib: the image's own unless it lacks one.
mkdir -p "$UNPACK_DIR/lib-missing"
for f in "$BUNDLE"/lib-fallback/*; do
  [ -e "$f" ] || continue
  name=$(basename "$f")
  if ! grep -q "^[[:space:]]*$name (libc6,x86-64)" <<<"$LDCONFIG_CACHE"; then
    ln -sf "$f" "$UNPACK_DIR/lib-missing/$name"
    note "the image lacks $name: using the bundled one"
  fi
done
lib_path="$lib_path:$UNPACK_DIR/lib-missing"

# libnvrtc: cuDNN's runtime-compiled engines load it; libcudnn_*: cuDNN loads them from its folder.
cuda_report=""
for name in $(cat "$BUNDLE/cuda-libs.txt") libnvrtc.so.13; do
  dir=$(find_lib "$name")
  if [ -z "$dir" ]; then
    cuda_report+="  $name: NOT FOUND"$'\n'
    continue
  fi
  cuda_report+="  $name: $dir/$(basename "$(readlink -f "$dir/$name")")"$'\n'
  [[ ":$lib_path:" == *":$dir:"* ]] || lib_path="$lib_path:$dir"
done
export LD_LIBRARY_PATH="$lib_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# A binary that still fails to load (a GLIBCXX version the image's libstdc++ lacks): put the
# bundled libstdc++ and friends first.
probe="$BUNDLE/bin/test_cuda_memory"
[ -x "$probe" ] || probe=$(ls "$BUNDLE"/bin/test_* | head -n 1)
if grep -q "version .* not found" <<<"$(ldd "$probe" 2>&1)"; then
  export LD_LIBRARY_PATH="$BUNDLE/lib-fallback:$LD_LIBRARY_PATH"
  note "the image's libstdc++ is too old: using the bundled one"
fi

have_gpu=0
if command -v nvidia-smi >/dev/null; then
  gpus=$(nvidia-smi -L 2>&1) && echo "$gpus" | grep -q '^GPU ' && have_gpu=1
else
  gpus="no nvidia-smi on this machine"
fi
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "host: $(uname -a)"
  echo "os: $(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-?}"); $(ldd --version 2>&1 | head -n 1)"
  echo "nvidia-smi -L:"; echo "$gpus" | sed 's/^/  /'
  [ "$have_gpu" = 1 ] && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | sed 's/^/  /'
  echo "nvcc: $(nvcc --version 2>/dev/null | tail -n 1)"
  echo "CUDA libraries:"; printf '%s' "$cuda_report"
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "ldd $(basename "$probe"):"; ldd "$probe" 2>&1 | sed 's/^/  /'
  echo; cat "$BUNDLE/MANIFEST.txt"
} >"$RESULTS/env.txt"
cp "$RESULTS/env.txt" "$OUT/env.txt"
echo "$gpus"
printf 'CUDA libraries:\n%s' "$cuda_report"
echo "ldd $(basename "$probe") (bundled libraries, CUDA libraries, anything not found):"
ldd "$probe" 2>&1 | grep -E "reel-gpu|cuda|cudnn|cublas|nvrtc|not found" | sed 's/^/  /'

# ---------------------------------------------------------------- summary helpers
# Counts from a gtest console log: "[  PASSED  ] 5 tests." etc.
gtest_count() { sed -n "s/^\[  $1 *\] \([0-9]*\) tests\{0,1\}[.,].*/\1/p" "$2" | tail -n 1; }

summarize_failures() {  # JSON file → "    FAILED Suite.Test: first line of the message"
  python3 - "$1" <<'PY' 2>/dev/null
import json, sys
for suite in json.load(open(sys.argv[1])).get("testsuites", []):
    for t in suite.get("testsuite", []):
        for f in t.get("failures", [])[:1]:
            msg = " | ".join(l.strip() for l in f.get("failure", "").splitlines()[:3])
            print(f"    FAILED {suite['name']}.{t['name']}: {msg[:300]}")
PY
}

# Google Benchmark JSON: "merge OUT IN..." (the benchmarks of all, the context of the first),
# "headlines IN" (one line per benchmark with its main counters). Reads JSON that the program
# left unclosed (it ended mid-run): cut after the last complete benchmark, close the list.
cat >"$UNPACK_DIR/bench_json.py" <<'PY'
import json, re, sys

def read(path):
    text = open(path).read()
    try:
        return json.loads(text)
    except ValueError:
        cut = text.rfind("\n    }")
        if cut < 0:
            cut = text.find('"benchmarks": [') + len('"benchmarks": [')
            return json.loads(text[:cut] + "]}")
        return json.loads(text[:cut + 6] + "\n  ]\n}")

def merge(out, paths):
    merged = None
    for path in paths:
        try:
            data = read(path)
        except Exception as e:
            print(f"cannot read {path}: {e}", file=sys.stderr)
            continue
        if merged is None:
            merged = data
        else:
            merged.setdefault("benchmarks", []).extend(data.get("benchmarks", []))
    if merged is not None:
        json.dump(merged, open(out, "w"), indent=1)

def name(bench):  # without Google Benchmark's "/min_time:0.500/manual_time" suffixes
    return re.sub(r"/(min_time:[0-9.]+|manual_time|real_time)", "", bench["name"])

def headlines(path):
    data = read(path)
    ctx = data.get("context", {})
    if "gpu_bf16_gemm_ceiling_tflops" in ctx:
        print(f"    cuBLAS bf16 GEMM ceiling: {float(ctx['gpu_bf16_gemm_ceiling_tflops']):.1f} TFLOP/s")
    keys = ("ms", "tflops", "of_ceiling", "s_per_step", "s_per_decode", "frames_per_s", "peak_gpu_gb",
            "resident_gpu_gb", "max_err", "err_bound")
    for b in data.get("benchmarks", []):
        if b.get("error_occurred"):
            print(f"    {name(b)}: ERROR {b.get('error_message', '')[:200]}")
            continue
        vals = [f"{k} {b[k]:.4g}" for k in keys if isinstance(b.get(k), (int, float))]
        print(f"    {name(b)}: " + ", ".join(vals))
    if not data.get("benchmarks"):
        print("    (no benchmarks in the JSON)")

if sys.argv[1] == "merge":
    merge(sys.argv[2], sys.argv[3:])
else:
    headlines(sys.argv[2])
PY
merge_json() { python3 "$UNPACK_DIR/bench_json.py" merge "$@" || cp "$2" "$1"; }
headlines() { python3 "$UNPACK_DIR/bench_json.py" headlines "$1" 2>&1 | sed 's/^Traceback.*/    (cannot read the JSON)/'; }

{
  echo "reel GPU run: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), QUICK=$QUICK, stages: $STAGES"
  echo "bundle: $(sed -n 's/^commit: //p' "$BUNDLE/MANIFEST.txt")"
  echo "gpu: $(echo "$gpus" | head -n 1)"
} >"$SUMMARY"

# ---------------------------------------------------------------- tests
tests_failed=0
if has_stage tests; then
  export REEL_FIXTURES_DIR="$ROOT/tests/fixtures" REEL_TEST_TMP_DIR="$UNPACK_DIR/tmp"
  # The device-memory and element-wise tests first (the basics), the CPU-only kernel logic last.
  all=$(cd "$BUNDLE/bin" && ls test_* | awk '{
    r = /^test_cuda_memory$/ ? 0 : /kernel_logic/ ? 9 : /^test_cuda_ops/ ? 1 : /attention/ ? 2 : 3
    print r, $0 }' | sort -k1,1n -k2 | cut -d' ' -f2)
  passed_total=0 failed_total=0 skipped_total=0 incomplete=""
  echo "tests (per binary: passed / failed / skipped, seconds):" >>"$SUMMARY"
  tests_end=$((SECONDS + $(budget "$TESTS_S")))
  for name in ${TESTS:-$all}; do
    bin="$BUNDLE/bin/$name"
    [ -x "$bin" ] || { echo "  $name: not in the bundle" >>"$SUMMARY"; continue; }
    left=$((tests_end - SECONDS))
    limit=$((TEST_TIMEOUT < left ? TEST_TIMEOUT : left))
    if [ "$left" -lt 5 ]; then
      echo "  $name: not run (deadline)" >>"$SUMMARY"; incomplete+=" $name"; tests_failed=1; continue
    fi
    log="$RESULTS/tests/$name.log" json="$RESULTS/tests/$name.json"
    t0=$SECONDS
    timeout -k 10 "$limit" "$bin" --gtest_output="json:$json" >"$log" 2>&1
    rc=$?
    secs=$((SECONDS - t0))
    p=$(gtest_count PASSED "$log") f=$(gtest_count FAILED "$log") s=$(gtest_count SKIPPED "$log")
    p=${p:-0} f=${f:-0} s=${s:-0}
    passed_total=$((passed_total + p)) failed_total=$((failed_total + f)) skipped_total=$((skipped_total + s))
    line="  $name: $p / $f / $s, ${secs} s"
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
      line+=", TIMEOUT after $limit s in $(grep '^\[ RUN' "$log" | tail -n 1 | awk '{print $NF}')"
      incomplete+=" $name"; tests_failed=1
    elif ! grep -q '^\[==========\] .* ran\.' "$log"; then
      line+=", DID NOT FINISH (exit $rc) in $(grep '^\[ RUN' "$log" | tail -n 1 | awk '{print $NF}'): $(tail -n 2 "$log" | tr '\n' ' ' | cut -c1-300)"
      incomplete+=" $name"; tests_failed=1
    elif [ "$rc" != 0 ] || [ "$f" != 0 ]; then
      tests_failed=1
    fi
    echo "$line" >>"$SUMMARY"
    [ -f "$json" ] && [ "$f" != 0 ] && summarize_failures "$json" >>"$SUMMARY"
    note "$line"
  done
  skip_reasons=$(cat "$RESULTS"/tests/*.log 2>/dev/null | grep -o 'GPU test skipped\|no CUDA GPU[^"]*' | sort | uniq -c | sed 's/^ *//' | head -n 3)
  {
    echo "tests total: $passed_total passed, $failed_total failed, $skipped_total skipped${incomplete:+; incomplete:$incomplete}"
    [ "$have_gpu" = 1 ] && [ -n "$skip_reasons" ] && echo "  WARNING: a GPU is present but tests skipped for want of one: $skip_reasons"
  } >>"$SUMMARY"
  tar -C "$RESULTS/tests" -czf "$OUT/tests.tar.gz" .
fi

# ---------------------------------------------------------------- bench_attention
# One process per kernel: an error that ends the program (an uncaught exception in one
# kernel's case) then costs only that kernel's numbers. The JSONs are merged into one.
if has_stage attention && [ -x "$BUNDLE/bin/bench_attention" ]; then
  shapes="$ROOT/bench/shapes/attention_gpu.txt"
  if [ "$QUICK" = 1 ]; then
    shapes="$UNPACK_DIR/attention_quick.txt"
    cat >"$shapes" <<'EOF'
4 4096 4096 32 64 f16 fa_grid
4 4096 4096 16 128 bf16 fa_grid
1 32760 32760 12 128 bf16 wan_1.3b_480p
1 32760 512 12 128 bf16 cross
EOF
  fi
  kernels="${REEL_BENCH_ATTENTION_KERNELS:-cuda_flash,cudnn,cublas}"
  echo "bench_attention ($(basename "$shapes"), kernels $kernels):" >>"$SUMMARY"
  if [ "$have_gpu" = 0 ]; then
    # No GPU: list the cases (checks the shape table and the kernel names), time nothing.
    REEL_BENCH_ATTENTION_KERNELS="$kernels" REEL_BENCH_ATTENTION_SHAPES="$shapes" \
      "$BUNDLE/bin/bench_attention" --benchmark_list_tests=true >"$RESULTS/logs/bench_attention.log" 2>&1
    rc=$?
    echo "    no GPU: bench_attention skipped ($(wc -l <"$RESULTS/logs/bench_attention.log") cases listed, exit $rc)" |
      tee -a "$SUMMARY"
  else
    kernel_list=$(echo "$kernels" | tr ',' ' ')
    n_kernels=$(echo "$kernel_list" | wc -w)
    stage_end=$((SECONDS + $(budget "$ATTENTION_S")))
    i=0
    for kernel in $kernel_list; do
      # An equal share of what is left of the stage for each remaining kernel.
      limit=$(((stage_end - SECONDS) / (n_kernels - i)))
      i=$((i + 1))
      if [ "$limit" -lt 10 ]; then
        echo "    $kernel: not run (deadline)" >>"$SUMMARY"
        continue
      fi
      note "bench_attention $kernel on $(basename "$shapes") (limit $limit s)"
      t0=$SECONDS
      REEL_BENCH_ATTENTION_KERNELS="$kernel" REEL_BENCH_ATTENTION_SHAPES="$shapes" \
        timeout -k 10 "$limit" "$BUNDLE/bin/bench_attention" --benchmark_format=json \
        --benchmark_out="$RESULTS/bench_attention_$kernel.json" --benchmark_out_format=json \
        >"$RESULTS/logs/bench_attention_$kernel.log" 2>"$RESULTS/logs/bench_attention_$kernel.err"
      rc=$?
      echo "    $kernel: exit $rc, $((SECONDS - t0)) s$([ "$rc" = 124 ] && echo ", TIMEOUT")" >>"$SUMMARY"
      [ -s "$RESULTS/logs/bench_attention_$kernel.err" ] &&
        sed 's/^/      stderr: /' "$RESULTS/logs/bench_attention_$kernel.err" | head -n 5 >>"$SUMMARY"
      note "bench_attention $kernel: exit $rc"
    done
    merge_json "$OUT/bench_attention.json" "$RESULTS"/bench_attention_*.json
    [ -s "$OUT/bench_attention.json" ] && headlines "$OUT/bench_attention.json" >>"$SUMMARY"
  fi
fi

# ---------------------------------------------------------------- bench_gpu_pipeline
if has_stage pipeline && [ -x "$BUNDLE/bin/bench_gpu_pipeline" ]; then
  limit=$(budget "$PIPELINE_S")
  if [ "$limit" -ge 10 ]; then
    quick_env=()
    [ "$QUICK" = 1 ] && quick_env=(REEL_BENCH_GPU_LAYERS=4 REEL_BENCH_GPU_FRAMES=17 REEL_BENCH_GPU_ITERS=1
                                   REEL_BENCH_GPU_VAE_DTYPE=bf16)
    note "bench_gpu_pipeline ${quick_env[*]} (limit $limit s)"
    t0=$SECONDS
    env "${quick_env[@]}" timeout -k 10 "$limit" "$BUNDLE/bin/bench_gpu_pipeline" --benchmark_format=json \
      --benchmark_out="$OUT/bench_gpu_pipeline.json" --benchmark_out_format=json \
      >"$RESULTS/logs/bench_gpu_pipeline.log" 2>"$RESULTS/logs/bench_gpu_pipeline.err"
    rc=$?
    echo "bench_gpu_pipeline (${quick_env[*]:-full size}): exit $rc, $((SECONDS - t0)) s$([ "$rc" = 124 ] && echo ", TIMEOUT")" >>"$SUMMARY"
    grep -h "skipped" "$RESULTS/logs/bench_gpu_pipeline.log" | head -n 2 | sed 's/^/    /' >>"$SUMMARY"
    [ -s "$RESULTS/logs/bench_gpu_pipeline.err" ] && sed 's/^/    stderr: /' "$RESULTS/logs/bench_gpu_pipeline.err" | head -n 5 >>"$SUMMARY"
    [ -s "$OUT/bench_gpu_pipeline.json" ] && headlines "$OUT/bench_gpu_pipeline.json" >>"$SUMMARY"
    note "bench_gpu_pipeline: exit $rc"
  else
    echo "bench_gpu_pipeline: not run (deadline)" >>"$SUMMARY"
  fi
fi

# ---------------------------------------------------------------- reel-cli
if has_stage cli && [ -x "$BUNDLE/bin/reel-cli" ]; then
  limit=$(budget "$CLI_S")
  if [ "$limit" -ge 10 ]; then
    cli_log="$RESULTS/logs/reel-cli.log"
    "$BUNDLE/bin/reel-cli" kernels >"$cli_log" 2>&1
    t0=$SECONDS
    timeout -k 5 "$limit" "$BUNDLE/bin/reel-cli" generate --model "$ROOT/models/tiny-wan-t2v" \
      --prompt "a red fox running through fresh snow" --device cuda --frames 5 --steps 4 --seed 7 \
      -o "$UNPACK_DIR/tmp/cli.y4m" >>"$cli_log" 2>&1
    rc=$?
    echo "reel-cli generate --device cuda (tiny model): exit $rc, $((SECONDS - t0)) s$([ "$rc" != 0 ] && echo ": $(tail -n 1 "$cli_log" | cut -c1-200)")" >>"$SUMMARY"
  fi
fi

[ -n "$(ls -A "$RESULTS/logs")" ] && tar -C "$RESULTS/logs" -czf "$OUT/logs.tar.gz" .
echo "total: $((SECONDS - START)) s" >>"$SUMMARY"
cp "$SUMMARY" "$OUT/summary.txt"
echo "================ summary.txt"
cat "$SUMMARY"
finish "$tests_failed"
