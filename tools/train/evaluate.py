#!/usr/bin/env python3
"""Prompt adherence of the demo model, measured on videos that reel generated (reel-cli) and,
side by side, on diffusers' WanPipeline output of the same model folder.

    python tools/train/evaluate.py --cli build/examples/reel-cli/reel-cli [--limit N] [--json out.json]

The prompts are the grammar combinations held out of training (scenes.split()[1]); each is
generated with seed 1000+i. Each attribute is read back from the frames by a classifier written
for the synthetic scenes (below) and scored as an accuracy:
  objects:  object colour, background colour, shape, direction of motion;
  corridor: wall colour, forward motion.
The classifiers are first run on the ground-truth renders of the same prompts ("renders"
column), which shows how far the measuring stick itself can be trusted.
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
import scenes

PALETTE = {k: np.array(v, np.float32) for k, v in scenes.COLORS.items()}


def nearest_color(rgb, names):
    return min(names, key=lambda n: float(np.sum((PALETTE[n] - rgb) ** 2)))


def nearest_hue(rgb, names):
    """Colour under unknown lighting: compare the colours scaled to their brightest channel."""
    v = rgb / max(1.0, float(rgb.max()))
    return min(names, key=lambda n: float(np.sum((PALETTE[n] / PALETTE[n].max() - v) ** 2)))


def classify_objects(frames):
    T, H, W, _ = frames.shape
    f = frames.astype(np.float32)
    border = np.concatenate([f[:, :3].reshape(-1, 3), f[:, -3:].reshape(-1, 3),
                             f[:, :, :3].reshape(-1, 3), f[:, :, -3:].reshape(-1, 3)])
    bg_rgb = np.median(border, axis=0)
    out = {"background": nearest_color(bg_rgb, list(PALETTE))}
    mask = np.sqrt(((f - bg_rgb) ** 2).sum(-1)) > 60
    area = mask.sum(axis=(1, 2))
    good = area > 0.2 * np.median(area[area > 0]) if (area > 0).any() else area > 0
    if good.sum() < 2:
        return dict(out, color=None, shape=None, direction=None)
    out["color"] = nearest_color(np.median(f[mask], axis=0), [c for c in PALETTE if c != out["background"]])
    ys, xs = np.mgrid[0:H, 0:W]
    cx = np.array([xs[m].mean() if g else np.nan for m, g in zip(mask, good)])
    cy = np.array([ys[m].mean() if g else np.nan for m, g in zip(mask, good)])
    fills = []
    for m, g in zip(mask, good):
        if g:
            yy, xx = np.nonzero(m)
            fills.append(m.sum() / ((yy.max() - yy.min() + 1) * (xx.max() - xx.min() + 1)))
    fill = float(np.median(fills))
    out["shape"] = min({"ball": np.pi / 4, "square": 1.0, "triangle": 0.5}.items(), key=lambda kv: abs(kv[1] - fill))[0]
    ok = ~np.isnan(cx)
    cx, cy = cx[ok], cy[ok]
    dx, dy = cx[-1] - cx[0], cy[-1] - cy[0]
    steps = np.diff(cy)
    reversals = np.sum(np.sign(steps[1:]) * np.sign(steps[:-1]) < 0) if len(steps) > 1 else 0
    y_range = cy.max() - cy.min()
    if reversals >= 1 and y_range > 0.12 * H and abs(dx) < 0.5 * y_range:
        out["direction"] = "bouncing"
    elif abs(dx) >= abs(dy):
        out["direction"] = "right" if dx > 0 else "left"
    else:
        out["direction"] = "down" if dy > 0 else "up"
    return out


def _zoom(frame, s):
    """The frame scaled by s about its centre (s > 1: closer), cropped to the same size."""
    H, W, _ = frame.shape
    img = Image.fromarray(frame).resize((max(1, round(W * s)), max(1, round(H * s))), Image.BILINEAR)
    big = np.asarray(img)
    if s >= 1:
        y0, x0 = (big.shape[0] - H) // 2, (big.shape[1] - W) // 2
        return big[y0:y0 + H, x0:x0 + W]
    out = frame.copy()
    y0, x0 = (H - big.shape[0]) // 2, (W - big.shape[1]) // 2
    out[y0:y0 + big.shape[0], x0:x0 + big.shape[1]] = big
    return out


def classify_corridor(frames):
    T, H, W, _ = frames.shape
    f = frames.astype(np.float32)
    band = np.concatenate([f[:, int(0.35 * H):int(0.65 * H), :int(0.1 * W)].reshape(-1, 3),
                           f[:, int(0.35 * H):int(0.65 * H), -int(0.1 * W):].reshape(-1, 3)])
    out = {"color": nearest_hue(np.median(band, axis=0), scenes.CORRIDOR_COLORS)}
    votes = 0
    pairs = list(range(0, T - 4, 4))
    for t in pairs:
        a, b = frames[t], frames[t + 4].astype(np.float32)
        err = {s: float(np.mean((_zoom(a, s).astype(np.float32) - b) ** 2)) for s in (1 / 1.12, 1.0, 1.12)}
        votes += min(err, key=err.get) > 1.0
    out["forward"] = bool(votes > len(pairs) / 2)
    return out


def classify(scene, frames):
    return classify_objects(frames) if scene.family == "objects" else classify_corridor(frames)


def truth(scene):
    if scene.family == "objects":
        return dict(color=scene.color, background=scene.background, shape=scene.shape, direction=scene.direction)
    return dict(color=scene.color, forward=True)


def score(results):
    """{family/attribute: accuracy} over (scene, prediction) pairs."""
    acc = {}
    for scene, pred in results:
        for k, v in truth(scene).items():
            acc.setdefault(f"{scene.family}/{k}", []).append(pred.get(k) == v)
    return {k: float(np.mean(v)) for k, v in sorted(acc.items())}


def reel_frames(cli, model, prompt, seed, tmp, extra):
    out = os.path.join(tmp, f"reel_{seed}") + "/"
    cmd = [cli, "generate", "--model", model, "--prompt", prompt, "--seed", str(seed), "-o", out] + extra
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    names = sorted(n for n in os.listdir(out) if n.endswith(".png"))
    return np.stack([np.asarray(Image.open(os.path.join(out, n)).convert("RGB")) for n in names])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True, help="path to reel-cli")
    ap.add_argument("--model", default=common.MODEL_DIR)
    ap.add_argument("--limit", type=int, default=0, help="evaluate only the first N held-out prompts")
    ap.add_argument("--no-diffusers", action="store_true")
    ap.add_argument("--reel-args", default="", help="extra reel-cli arguments, e.g. '--precision f32'")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    _, held_out = scenes.split()
    # corridors first: there are few of them, and a --limit should still see some
    held_out = sorted(held_out, key=lambda s: s.family != "corridor")
    if args.limit:
        held_out = held_out[: args.limit]
    renders, reel, diff = [], [], []
    pipe = None
    if not args.no_diffusers:
        import torch
        from diffusers import WanPipeline
        common.setup_torch()
        pipe = WanPipeline.from_pretrained(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        for i, scene in enumerate(held_out):
            seed = 1000 + i
            p = scene.caption()
            renders.append((scene, classify(scene, scenes.render(scene, 33, (common.HEIGHT, common.WIDTH), seed))))
            reel.append((scene, classify(scene, reel_frames(args.cli, args.model, p, seed, tmp, args.reel_args.split()))))
            if pipe is not None:
                with torch.no_grad():
                    out = pipe(prompt=p, negative_prompt="", height=common.HEIGHT, width=common.WIDTH, num_frames=33,
                               num_inference_steps=20, guidance_scale=5.0, output_type="np",
                               generator=torch.Generator().manual_seed(seed)).frames[0]
                diff.append((scene, classify(scene, (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8))))
            print(f"[{i + 1}/{len(held_out)}] {p}: reel {reel[-1][1]}", flush=True)
    table = {"renders": score(renders), "reel": score(reel)}
    if diff:
        table["diffusers"] = score(diff)
    cols = list(table)
    print(f"\n{len(held_out)} held-out prompts")
    print(f"| attribute | {' | '.join(cols)} |\n|---|{'---|' * len(cols)}")
    for k in table["reel"]:
        print(f"| {k} | " + " | ".join(f"{100 * table[c][k]:.1f} %" for c in cols) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"prompts": len(held_out), **table}, f, indent=1)


if __name__ == "__main__":
    main()
