#!/usr/bin/env bash
# The README's demo, from a fresh clone on Debian 12 (as root): installs the dependencies,
# builds reel-cli (nothing else), and generates a short clip with the tiny Wan model shipped
# in models/tiny-wan-t2v. Its weights are random, so the clip is coloured noise that moves:
# it shows every stage (umT5 text encoder, Wan transformer with UniPC and guidance, the causal
# VAE decoder, the video writer) running end to end. docs/pipeline.md shows real models.
#
#   bash scripts/demo.sh                      # writes demo.mp4 (demo.y4m without FFmpeg)
#   PROMPT="a red fox in the snow" bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

BUILD_DIR="${BUILD_DIR:-build-demo}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DREEL_CUDA="${REEL_CUDA:-OFF}" -DREEL_BUILD_TESTS=OFF -DREEL_BUILD_BENCH=OFF
cmake --build "$BUILD_DIR" -j "$(nproc)" --target reel-cli
cli="$BUILD_DIR/examples/reel-cli/reel-cli"

prompt="${PROMPT:-a red fox runs through the snow at sunset, cinematic}"
run() {
  "$cli" generate --model models/tiny-wan-t2v --prompt "$prompt" \
    --size 320x192 --frames 33 --steps 20 --seed 7 -o "$1"
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
