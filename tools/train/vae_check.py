"""How well the trained VAE holds over a whole clip: held-out 33-frame clips encoded and decoded
in one go (diffusers' own causal chunking, as the pipelines run it), PSNR per latent frame.

    python tools/train/vae_check.py                    # runs/vae/last.pt
    python tools/train/vae_check.py --ckpt PATH --clips 6

A VAE that was trained on short clips only stays sharp for the latent frames it saw and then
drifts; this is the number that shows it (docs: the model card's VAE table).
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from diffusers import AutoencoderKLWan

import common
import scenes
import train_dit


@torch.no_grad()
def per_latent_psnr(vae, clip_u8):
    """PSNR (dB, frames in [0, 255]) of each latent frame's pixel frames after encode+decode."""
    x = common.to_model_range(clip_u8)[None]
    z = vae.encode(x).latent_dist.mean
    y = vae.decode(z).sample.clamp(-1, 1)
    err = ((y - x) * 127.5) ** 2
    out = []
    for i in range(z.shape[2]):
        lo, hi = (0, 1) if i == 0 else (4 * i - 3, 4 * i + 1)
        out.append(10 * np.log10(255.0 ** 2 / max(1e-8, err[:, :, lo:hi].mean().item())))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(common.RUNS, "vae", "last.pt"))
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    common.setup_torch(args.threads)
    st = torch.load(args.ckpt, weights_only=False)
    vae = AutoencoderKLWan(**common.VAE_CONFIG, latents_mean=[0.0] * 48, latents_std=[1.0] * 48)
    vae.load_state_dict(st["model"])
    vae.eval()
    _, held_out = scenes.split()
    objects = [s for s in held_out if s.family == "objects"]
    corridors = [s for s in held_out if s.family == "corridor"]
    rows = [per_latent_psnr(vae, train_dit.training_clip(i, 991, objects, corridors)[1]) for i in range(args.clips)]
    mean = np.mean(rows, axis=0)
    print(f"step {st['step']}: PSNR per latent frame (dB, {args.clips} held-out clips)")
    print(" ".join(f"{v:5.1f}" for v in mean), f"| mean {mean.mean():.1f}")


if __name__ == "__main__":
    main()
