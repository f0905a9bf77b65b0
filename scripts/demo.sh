#!/usr/bin/env bash
# The README's demo, from a fresh clone on Debian 12 (as root): installs the dependencies,
# builds reel-cli (nothing else), and generates a clip with the project's own trained model,
# models/reel-wan-demo (a small Wan 2.2 TI2V-style model trained by tools/train/ on synthetic
# scenes): 256x160, 33 frames, 20 UniPC steps with guidance, at the settings in the model's
# reel_defaults.json. Its README lists the prompts it understands. docs/pipeline.md shows
# real models.
#
#   bash scripts/demo.sh                      # writes demo.mp4 (demo.y4m without FFmpeg)
#   PROMPT="a yellow triangle bouncing on a purple background" bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

BUILD_DIR="${BUILD_DIR:-build-demo}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DREEL_CUDA="${REEL_CUDA:-OFF}" -DREEL_BUILD_TESTS=OFF -DREEL_BUILD_BENCH=OFF
cmake --build "$BUILD_DIR" -j "$(nproc)" --target reel-cli
cli="$BUILD_DIR/examples/reel-cli/reel-cli"

prompt="${PROMPT:-a green hospital corridor with flickering lights}"
run() {
  "$cli" generate --model models/reel-wan-demo --prompt "$prompt" --seed 7 -o "$1"
}

# mp4 needs reel built with FFmpeg (libx264); otherwise the always-available Y4M.
out=demo.y4m
if pkg-config --exists libavcodec libavformat libavutil libswscale 2>/dev/null; then out=demo.mp4; fi
if ! run "$out"; then
  [ "$out" = demo.mp4 ] || exit 1
  echo "demo: writing mp4 failed; trying Y4M instead" >&2
  out=demo.y4m
  run "$out"
fi
echo "demo: the video is at $(pwd)/$out"
