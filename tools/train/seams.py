#!/usr/bin/env python3
"""Endless video with the demo model: how visible the seams between chunks are, and how far
the clip drifts, measured on reel's own output (reel-cli --chunks).

    python tools/train/seams.py --cli build/examples/reel-cli/reel-cli [--chunks 10] [--context 1 2 3]

For each number of context latent frames K it generates `chunks` windows of 33 frames of the
corridor prompt and reports:
  seam jump  mean |frame[i+1] - frame[i]| across the seams, divided by the same mean for
             consecutive frames inside chunks (1.0: a seam looks like any other frame step);
  drift      the distance between the mean colour of the last chunk and of the first one,
             in 0..255 RGB units (the prompt never changes, so the scene should not);
  wall       the wall colour the evaluation classifier reads in the first and the last chunk.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile

import numpy as np
from PIL import Image

import common
import evaluate


def chunk_bounds(total, window_frames, context):
    """Frame index where each chunk's new frames start: 0, then after each window."""
    first = window_frames
    step = 4 * ((window_frames - 1) // 4 + 1 - context)     # new frames per later chunk: 4·(F − K)
    starts = [0]
    s = first
    while s < total:
        starts.append(s)
        s += step
    return starts


def measure(cli, model, prompt, chunks, context, seed, tmp, frames=33):
    out = os.path.join(tmp, f"k{context}") + "/"
    subprocess.run([cli, "generate", "--model", model, "--prompt", prompt, "--frames", str(frames), "--chunks",
                    str(chunks), "--context-frames", str(context), "--seed", str(seed), "-o", out],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    names = sorted(n for n in os.listdir(out) if n.endswith(".png"))
    v = np.stack([np.asarray(Image.open(os.path.join(out, n)).convert("RGB")) for n in names]).astype(np.float32)
    starts = chunk_bounds(len(v), frames, context)
    diffs = np.abs(np.diff(v, axis=0)).mean(axis=(1, 2, 3))       # diffs[i]: frame i -> i+1
    seam = [s - 1 for s in starts[1:]]
    inside = np.setdiff1d(np.arange(len(diffs)), seam)
    first, last = v[: starts[1]], v[starts[-1]:]
    return {
        "context": context, "frames": int(len(v)), "chunks": len(starts),
        "seam_jump": float(diffs[seam].mean() / diffs[inside].mean()),
        "drift": float(np.linalg.norm(first.mean(axis=(0, 1, 2)) - last.mean(axis=(0, 1, 2)))),
        "wall_first": evaluate.classify_corridor(first.astype(np.uint8))["color"],
        "wall_last": evaluate.classify_corridor(last.astype(np.uint8))["color"],
        "forward_last": evaluate.classify_corridor(last.astype(np.uint8))["forward"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--model", default=common.MODEL_DIR)
    ap.add_argument("--prompt", default="a green hospital corridor with flickering lights")
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--context", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.context:
            rows.append(measure(args.cli, args.model, args.prompt, args.chunks, k, args.seed, tmp))
            print(rows[-1], flush=True)
    print("| context frames K | frames | seam jump | drift (RGB) | wall colour first → last | forward in last chunk |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['context']} | {r['frames']} | {r['seam_jump']:.2f}× | {r['drift']:.1f} | "
              f"{r['wall_first']} → {r['wall_last']} | {'yes' if r['forward_last'] else 'no'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
