#!/usr/bin/env python3
"""Stage 3: assemble the trained parts into a diffusers model folder (models/reel-wan-demo/)
that diffusers' WanPipeline and WanImageToVideoPipeline load unchanged, and that reel loads.

    python tools/train/export.py                 # writes models/reel-wan-demo/
    python tools/train/export.py --preview out.png --prompt "a red ball moving left on a blue background"

The transformer is the EMA of the training weights; the VAE is runs/vae/decoder.pt (the jointly
trained VAE whose decoder went on training beside the transformer) when present; the VAE config carries the latents' mean
and std measured on the training latents. The folder also gets reel_defaults.json (the size,
length and sampling settings the model was trained for; diffusers ignores it) and README.md
(tools/train/model_card.md: the grammar, the training, the evaluation).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil

import numpy as np
import torch
from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
from transformers import T5Tokenizer, UMT5EncoderModel

import common

DEFAULTS = dict(width=common.WIDTH, height=common.HEIGHT, frames=common.TRAIN_FRAMES, steps=20, guidance=5.0,
                shift=common.SCHEDULER_CONFIG["flow_shift"], fps=common.FPS)


def build_pipeline(which="ema"):
    text = os.path.join(common.RUNS, "text")
    tokenizer = T5Tokenizer.from_pretrained(os.path.join(text, "tokenizer"))
    text_encoder = UMT5EncoderModel.from_pretrained(os.path.join(text, "text_encoder")).eval()
    lat = torch.load(os.path.join(common.RUNS, "dit", "latents.pt"), weights_only=False)
    vae = AutoencoderKLWan(**common.VAE_CONFIG, latents_mean=[round(float(v), 6) for v in lat["mean"]],
                           latents_std=[round(float(v), 6) for v in lat["std"]])
    # the decoder fine-tuned beside the transformer (same frozen encoder) when there is one
    vae_ckpt = os.path.join(common.RUNS, "vae", "decoder.pt")
    if not os.path.exists(vae_ckpt):
        vae_ckpt = os.path.join(common.RUNS, "vae", "last.pt")
    vae.load_state_dict(torch.load(vae_ckpt, weights_only=False)["model"])
    transformer = WanTransformer3DModel(**common.TRANSFORMER_CONFIG)
    st = torch.load(os.path.join(common.RUNS, "dit", "last.pt"), weights_only=False)
    transformer.load_state_dict(st[which])
    if "text_ema" in st:  # trained with the transformer (train_dit.py --train-text)
        text_encoder.load_state_dict(st["text_ema" if which == "ema" else "text"])
    scheduler = UniPCMultistepScheduler(**common.SCHEDULER_CONFIG)
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer.eval(),
                       vae=vae.eval(), scheduler=scheduler, expand_timesteps=True)
    return pipe, st["step"]


def generate(pipe, prompt, seed, steps=DEFAULTS["steps"], guidance=DEFAULTS["guidance"], frames=33):
    with torch.no_grad():
        out = pipe(prompt=prompt, negative_prompt="", height=common.HEIGHT, width=common.WIDTH, num_frames=frames,
                   num_inference_steps=steps, guidance_scale=guidance,
                   generator=torch.Generator().manual_seed(seed), output_type="np").frames[0]
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def strip(frames, picks=(0, 8, 16, 24, 32)):
    return np.concatenate([frames[i] for i in picks if i < len(frames)], axis=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=common.MODEL_DIR)
    ap.add_argument("--preview", default=None, help="write a frame strip PNG of diffusers' output instead")
    ap.add_argument("--prompt", action="append", default=None)
    ap.add_argument("--which", default="ema", choices=["ema", "model"])
    args = ap.parse_args()
    common.setup_torch()
    pipe, step = build_pipeline(args.which)
    if args.preview:
        from PIL import Image
        prompts = args.prompt or ["a red ball moving right on a blue background",
                                  "a yellow square moving up on a black background",
                                  "a green hospital corridor with flickering lights"]
        rows = [strip(generate(pipe, p, seed=7)) for p in prompts]
        Image.fromarray(np.concatenate(rows, axis=0)).save(args.preview)
        print(f"preview of step {step}: {args.preview}")
        return
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    pipe.save_pretrained(args.out, safe_serialization=True)
    # transformers writes the tokenizer as tokenizer.json only; the SentencePiece model itself
    # is what reel (and transformers' slow T5Tokenizer) reads: ship that folder as trained
    shutil.rmtree(os.path.join(args.out, "tokenizer"))
    shutil.copytree(os.path.join(common.RUNS, "text", "tokenizer"), os.path.join(args.out, "tokenizer"))
    with open(os.path.join(args.out, "reel_defaults.json"), "w") as f:
        json.dump(DEFAULTS, f, indent=1)
        f.write("\n")
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_card.md"),
                os.path.join(args.out, "README.md"))
    print(f"exported step {step} to {args.out}")


if __name__ == "__main__":
    main()
