#!/usr/bin/env bash
# Builds reel's GPU tests and benchmarks on this machine (no GPU needed) and packs them, with
# the shared libraries the GPU machine's image lacks (oneDNN, SentencePiece, stb, GoogleTest,
# Google Benchmark, ...), into one archive, .gpu-bundle/reel-gpu.tar.xz. scripts/gpu-run.sh
# unpacks and runs it on the GPU machine, which then needs no compiler time and no packages.
# The CUDA libraries (cudart, cuBLAS, cuBLASLt, cuDNN) are not packed: they come from the
# GPU machine's image. See docs/cuda.md, "Everything in one command".
#
#   bash scripts/gpu-bundle.sh                                   # sm_90 (H100, H200)
#   REEL_CUDA_ARCHITECTURES="80-real;90-real" bash scripts/gpu-bundle.sh
#   WITH_CLI=0 EXTRA_TARGETS="test_pipeline_device" bash scripts/gpu-bundle.sh
#
# Environment: BUILD_DIR (default build-gpubundle), JOBS (default 2), REEL_CUDA_ARCHITECTURES
# (default 90-real; files named *_sm90a.cu always build for sm_90a, see cuda/CMakeLists.txt),
# WITH_CLI (1: pack reel-cli too), EXTRA_TARGETS (more targets to pack), XZ_LEVEL (default 6).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BUILD_DIR="${BUILD_DIR:-build-gpubundle}"
JOBS="${JOBS:-2}"
ARCHS="${REEL_CUDA_ARCHITECTURES:-90-real}"
WITH_CLI="${WITH_CLI:-1}"
XZ_LEVEL="${XZ_LEVEL:-6}"
BUNDLE_DIR="$ROOT/.gpu-bundle"
ARCHIVE="$BUNDLE_DIR/reel-gpu.tar.xz"
MAX_MIB=60      # the run tool carries at most 64 MiB, the working tree included
CARRY_MIB=64

# ---------------------------------------------------------------- targets
targets=()
for src in tests/cuda/test_*.cpp; do targets+=("$(basename "$src" .cpp)"); done
for src in tests/attention/test_attention_cuda.cpp tests/attention/test_attention_op.cpp \
           tests/attention/test_attention_registry.cpp \
           bench/bench_attention.cpp bench/bench_gpu_pipeline.cpp bench/bench_device_memory.cpp; do
  [ -f "$src" ] && targets+=("$(basename "$src" .cpp)")
done
examples=OFF
if [ "$WITH_CLI" = 1 ] && [ -d examples/reel-cli ]; then
  targets+=(reel-cli)
  examples=ON
fi
# shellcheck disable=SC2206
targets+=(${EXTRA_TARGETS:-})

# ---------------------------------------------------------------- build
echo "gpu-bundle: CUDA architectures $ARCHS; targets: ${targets[*]}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DREEL_CUDA=ON -DREEL_FFMPEG=OFF -DREEL_CUDA_ARCHITECTURES="$ARCHS" \
  -DREEL_BUILD_TESTS=ON -DREEL_BUILD_BENCH=ON -DREEL_BUILD_EXAMPLES="$examples" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${targets[@]}"

# ---------------------------------------------------------------- stage
STAGE_PARENT=$(mktemp -d)
trap 'rm -rf "$STAGE_PARENT"' EXIT
STAGE="$STAGE_PARENT/reel-gpu"
mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/lib-fallback"

for t in "${targets[@]}"; do
  exe=$(find "$BUILD_DIR" -type f -name "$t" -perm -u+x -not -path "*/CMakeFiles/*" | head -n 1)
  [ -n "$exe" ] || { echo "gpu-bundle: built target $t not found under $BUILD_DIR" >&2; exit 1; }
  cp "$exe" "$STAGE/bin/"
done
# Symbols stay (names in crash reports); there is no debug information to drop in Release.
strip --strip-debug "$STAGE"/bin/*

# Shared libraries, by the name the loader asks for (the left side of ldd's "=>"):
#   glibc's own libraries: never packed (the image's glibc is newer, see GLIBC below);
#   CUDA's: never packed, gpu-run.sh finds the image's;
#   libstdc++, libgcc_s, libgomp, zlib: packed into lib-fallback/, used there only when the
#     image lacks them (its own are newer and stay in use for the CUDA libraries);
#   everything else (oneDNN, SentencePiece, stb, GoogleTest, Google Benchmark, ...): lib/.
is_glibc() { [[ $1 =~ ^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libutil|libresolv|libmvec) ]]; }
is_cuda() { [[ $1 =~ ^lib(cuda|cudart|cublas|cublasLt|cudnn|nvrtc|nvJitLink|nvidia-ml|cufft|curand|cusparse|cusolver)[._-] ]]; }
is_fallback() { [[ $1 =~ ^(libstdc\+\+\.so|libgcc_s\.so|libgomp\.so|libz\.so) ]]; }

: >"$STAGE/cuda-libs.txt"
missing=0
while read -r name path; do
  if [ "$path" = "not" ]; then
    echo "gpu-bundle: $name is not found by the loader here" >&2
    missing=1
  elif is_glibc "$name"; then :
  elif is_cuda "$name"; then echo "$name" >>"$STAGE/cuda-libs.txt"
  elif is_fallback "$name"; then cp -L "$path" "$STAGE/lib-fallback/$name"
  else cp -L "$path" "$STAGE/lib/$name"
  fi
done < <(for f in "$STAGE"/bin/*; do ldd "$f"; done | awk '$2 == "=>" { print $1, $3 }' | sort -u)
[ "$missing" = 0 ] || exit 1
sort -u -o "$STAGE/cuda-libs.txt" "$STAGE/cuda-libs.txt"
for f in "$STAGE"/lib/libcudart* "$STAGE"/lib/libcublas* "$STAGE"/lib/libcudnn*; do
  [ -e "$f" ] && { echo "gpu-bundle: a CUDA library landed in lib/: $f (fix is_cuda)" >&2; exit 1; }
done

# The newest glibc / libstdc++ symbol versions anything packed needs (the image must have them).
newest() {
  { objdump -T "$STAGE"/bin/* "$STAGE"/lib/* 2>/dev/null || true; } | { grep -o "$1_[0-9][0-9.]*" || true; } |
    sort -uV | tail -n 1
}
glibc_needed=$(newest GLIBC)
glibcxx_needed=$(newest GLIBCXX)

{
  echo "reel GPU bundle"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "built: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(uname -m), $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "CUDA architectures: $ARCHS (+ 90a-real for *_sm90a.cu)"
  echo "nvcc: $(sed -n 's/^set(CMAKE_CUDA_COMPILER_VERSION "\(.*\)")/\1/p' "$BUILD_DIR"/CMakeFiles/*/CMakeCUDACompiler.cmake | head -n 1)"
  cudnn_h=$(grep -E '^CUDNN_INCLUDE_DIR:' "$BUILD_DIR/CMakeCache.txt" | cut -d= -f2)/cudnn_version.h
  [ -f "$cudnn_h" ] && echo "cuDNN headers: $(awk '/define CUDNN_(MAJOR|MINOR|PATCHLEVEL) / { v = v (v ? "." : "") $3 } END { print v }' "$cudnn_h")"
  echo "needs at least: $glibc_needed, $glibcxx_needed (libstdc++ from lib-fallback/ if the image's is older)"
  echo "CUDA libraries expected on the image: $(tr '\n' ' ' <"$STAGE/cuda-libs.txt")"
  echo "binaries: $(cd "$STAGE/bin" && echo *)"
  echo "lib/: $(cd "$STAGE/lib" && echo *)"
  echo "lib-fallback/: $(cd "$STAGE/lib-fallback" && echo *)"
} >"$STAGE/MANIFEST.txt"

# ---------------------------------------------------------------- pack
mkdir -p "$BUNDLE_DIR"
echo "gpu-bundle: packing $(du -sh "$STAGE" | cut -f1) (xz -$XZ_LEVEL)"
tar -C "$STAGE_PARENT" -cf - reel-gpu | xz -T1 "-$XZ_LEVEL" >"$ARCHIVE.tmp"
mv "$ARCHIVE.tmp" "$ARCHIVE"

bytes=$(stat -c %s "$ARCHIVE")
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
# What the run tool sends besides the carried archive: tracked and untracked-not-ignored files.
tree_bytes=$({ git ls-files -z -co --exclude-standard | xargs -0 stat -c %s 2>/dev/null || true; } |
  awk '{ s += $1 } END { print s + 0 }')
cat "$STAGE/MANIFEST.txt"
echo "gpu-bundle: $ARCHIVE: $(mib "$bytes") MiB; with the working tree ($(mib "$tree_bytes") MiB): $(mib $((bytes + tree_bytes))) MiB of the $CARRY_MIB MiB the run tool carries"
if [ "$bytes" -gt $((MAX_MIB * 1048576)) ]; then
  echo "gpu-bundle: the archive is over $MAX_MIB MiB: pack fewer targets (WITH_CLI=0) or a higher XZ_LEVEL" >&2
  exit 1
fi
if [ $((bytes + tree_bytes)) -gt $((CARRY_MIB * 1048576)) ]; then
  echo "gpu-bundle: warning: archive + working tree exceed $CARRY_MIB MiB: the run tool will refuse the call" >&2
fi
