#!/usr/bin/env python3
"""The pictures in the README: frame strips of what reel-cli generates with the demo model.

    python tools/train/strip.py --cli build/examples/reel-cli/reel-cli

  docs/images/demo.png      frames 0, 8, 16, 24, 32 of exactly what `bash scripts/demo.sh`
                            writes (same model, prompt, seed and defaults; PNG frames instead of
                            the mp4), plus two more prompts of the grammar;
  docs/images/endless.png   an endless corridor: `--duration 12s --context-frames 2`, one
                            frame every 1.5 seconds.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import tempfile

import numpy as np
from PIL import Image

import common

OUT = os.path.join(common.ROOT, "docs", "images")
DEMO_PROMPT = "a green hospital corridor with flickering lights"   # scripts/demo.sh's default


def frames(cli, args, tmp, name):
    out = os.path.join(tmp, name) + "/"
    subprocess.run([cli, "generate", "--model", common.MODEL_DIR, "-o", out] + args, check=True,
                   stdout=subprocess.DEVNULL)
    names = sorted(n for n in os.listdir(out) if n.endswith(".png"))
    return [np.asarray(Image.open(os.path.join(out, n)).convert("RGB")) for n in names]


def row(fr, picks, gap=4):
    pad = np.full((fr[0].shape[0], gap, 3), 255, np.uint8)
    parts = []
    for i in picks:
        parts += [fr[i], pad]
    return np.concatenate(parts[:-1], axis=1)


def stack(rows, gap=4):
    w = max(r.shape[1] for r in rows)
    out = []
    for r in rows:
        out += [np.pad(r, ((0, 0), (0, w - r.shape[1]), (0, 0)), constant_values=255),
                np.full((gap, w, 3), 255, np.uint8)]
    return np.concatenate(out[:-1], axis=0)


def save(rgb, path):
    """A 256-colour palette PNG: a third of the size, no visible difference at these sizes."""
    Image.fromarray(rgb).quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row(frames(args.cli, ["--prompt", DEMO_PROMPT, "--seed", "7"], tmp, "demo"), [0, 8, 16, 24, 32])]
        for i, p in enumerate(["a red ball bouncing on a blue background",
                               "a yellow triangle moving left on a purple background"]):
            rows.append(row(frames(args.cli, ["--prompt", p, "--seed", "7"], tmp, f"p{i}"), [0, 8, 16, 24, 32]))
        save(stack(rows), os.path.join(OUT, "demo.png"))
        fr = frames(args.cli, ["--prompt", DEMO_PROMPT, "--seed", "7", "--duration", "12s", "--context-frames", "2"],
                    tmp, "endless")
        picks = list(range(0, len(fr), 24))[:8]
        save(stack([row(fr, picks[:4]), row(fr, picks[4:8])]), os.path.join(OUT, "endless.png"))
    print(f"wrote {OUT}/demo.png and endless.png")


if __name__ == "__main__":
    main()
