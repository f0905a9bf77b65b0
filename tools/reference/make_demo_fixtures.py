#!/usr/bin/env python3
"""Parity fixtures for the project's trained demo model (models/reel-wan-demo/, made by
tools/train/). diffusers runs the committed folder in f32 with fixed initial noise:

  * t2v: WanPipeline, "a green hospital corridor with flickering lights", 256x160, 17 frames,
         4 UniPC steps, guidance 5: noise and the final latents (the transformer, the text
         encoder, the tokenizer, guidance and the sampler; frames would be 8 MB);
  * i2v: WanImageToVideoPipeline (the same folder: Wan 2.2 TI2V first-frame conditioning) on
         demo_first_frame.png (a ground-truth render of a held-out prompt, 128x96), 9 frames,
         4 steps, guidance 5: noise, latents and the decoded frames.

    tools/reference/.venv/bin/python tools/reference/make_demo_fixtures.py
writes tests/fixtures/pipeline/demo.safetensors, demo.json and demo_first_frame.png.
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from diffusers import WanImageToVideoPipeline, WanPipeline
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
import scenes  # noqa: E402

MODEL = os.path.join(ROOT, "models", "reel-wan-demo")
FIX = os.path.join(ROOT, "tests", "fixtures", "pipeline")
STEPS = 4


def noise(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


def main():
    torch.set_num_threads(os.cpu_count() or 1)
    t2v = WanPipeline.from_pretrained(MODEL, torch_dtype=torch.float32)
    cases = {}
    out = {}

    prompt = "a green hospital corridor with flickering lights"
    w, h, f = 256, 160, 17
    lat = noise((1, 48, (f - 1) // 4 + 1, h // 16, w // 16), 500)
    with torch.no_grad():
        latents = t2v(prompt=prompt, negative_prompt="", height=h, width=w, num_frames=f, num_inference_steps=STEPS,
                      guidance_scale=5.0, latents=lat.clone(), output_type="latent").frames
    out["t2v_noise"], out["t2v_latents"] = lat[0].contiguous(), latents[0].contiguous()
    cases["t2v"] = dict(prompt=prompt, negative_prompt="", width=w, height=h, frames=f, steps=STEPS, guidance=5.0)

    i2v = WanImageToVideoPipeline(tokenizer=t2v.tokenizer, text_encoder=t2v.text_encoder, vae=t2v.vae,
                                  scheduler=t2v.scheduler, transformer=t2v.transformer, image_encoder=None,
                                  image_processor=None, expand_timesteps=True)
    scene = scenes.Scene("objects", "red", shape="ball", direction="right", background="white")
    w, h, f = 128, 96, 9
    first = Image.fromarray(scenes.render(scene, 1, (h, w), seed=5)[0])
    first.save(os.path.join(FIX, "demo_first_frame.png"))
    lat = noise((1, 48, (f - 1) // 4 + 1, h // 16, w // 16), 501)
    common = dict(image=first, prompt=scene.caption(), negative_prompt="", height=h, width=w, num_frames=f,
                  num_inference_steps=STEPS, guidance_scale=5.0)
    with torch.no_grad():
        frames = i2v(**common, latents=lat.clone(), output_type="np").frames[0]
        latents = i2v(**common, latents=lat.clone(), output_type="latent").frames
    out["i2v_noise"], out["i2v_latents"] = lat[0].contiguous(), latents[0].contiguous()
    out["i2v_frames"] = torch.from_numpy(np.ascontiguousarray(frames))
    cases["i2v"] = dict(prompt=scene.caption(), negative_prompt="", width=w, height=h, frames=f, steps=STEPS,
                        guidance=5.0, image="demo_first_frame.png")

    save_file(out, os.path.join(FIX, "demo.safetensors"))
    with open(os.path.join(FIX, "demo.json"), "w") as fh:
        json.dump({"model": "models/reel-wan-demo", "cases": cases}, fh, indent=1)
        fh.write("\n")
    print({k: tuple(v.shape) for k, v in out.items()})


if __name__ == "__main__":
    main()
