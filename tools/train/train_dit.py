#!/usr/bin/env python3
"""Stage 2: the demo model's transformer (diffusers' WanTransformer3DModel, Wan 2.2 TI2V style:
48 latent channels, per-token timesteps), trained by flow matching on the frozen VAE's latents.

    python tools/train/train_dit.py prepare --clips 800     # render + encode the clips (resumable)
    python tools/train/train_dit.py train --minutes 50      # resumes from runs/dit/last.pt

`prepare` renders 33-frame clips of the training scenes (scenes.split(); held-out combinations
never appear), encodes them with the trained VAE (posterior mean) and stores the latents with
their caption index. The per-channel mean and std of the latents become the VAE config's
latents_mean / latents_std, exactly as the pipelines normalise them.

`train` alternates two kinds of batch:
  * whole clips (9 latent frames = 33 frames, the demo's length), the first K latent frames
    clean with timestep 0 for K = 0 (text-to-video), 1 (image-to-video: the first frame) or 2;
  * 5-latent windows at a random offset in the clip with K = 0..2 clean leading frames: the
    endless-video case, where a window starts from the previous window's last latent frames.
The loss is the velocity (noise - x0) error on the frames that are not held clean. Captions
are dropped (empty prompt) 10% of the time, for classifier-free guidance. An EMA of the weights
is kept; it is what gets exported.

With --train-text the tiny umT5 encoder (runs/text/text_encoder, random at the start) trains
with the transformer: a frozen random encoder gives "red" nearly the same vector in "a red ball"
and "on a red background", so which colour belongs to the object is hard to read (v1: object
colour 24 % on held-out prompts, background 76 %). Its EMA is exported as the text encoder.
"""
from __future__ import annotations

import argparse
import copy
import os
import time

import numpy as np
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel

import common
import scenes

DIT = os.path.join(common.RUNS, "dit")
LATENTS = os.path.join(DIT, "latents.pt")


def load_vae():
    st = torch.load(os.path.join(common.RUNS, "vae", "last.pt"), weights_only=False)
    vae = AutoencoderKLWan(**common.VAE_CONFIG, latents_mean=[0.0] * 48, latents_std=[1.0] * 48)
    vae.load_state_dict(st["model"])
    return vae.eval()


def training_clip(i, seed, objects, corridors):
    """Clip i of `prepare`: (scene, uint8 frames [33, H, W, 3]); the same every time."""
    rng = np.random.default_rng([seed, i])
    pool = objects if rng.random() < 0.5 else corridors
    scene = pool[rng.integers(len(pool))]
    clip = scenes.render(scene, common.TRAIN_FRAMES, (common.HEIGHT, common.WIDTH), int(rng.integers(1 << 31)),
                         start=int(rng.integers(0, 32)))
    return scene, clip


@torch.no_grad()
def prepare(args):
    common.setup_torch(args.threads)
    vae = load_vae()
    prompts = torch.load(os.path.join(common.RUNS, "text", "embeds.pt"), weights_only=False)["prompts"]
    index = {p: i for i, p in enumerate(prompts)}
    train_scenes, _ = scenes.split()
    objects = [s for s in train_scenes if s.family == "objects"]
    corridors = [s for s in train_scenes if s.family == "corridor"]
    data = torch.load(LATENTS, weights_only=False) if os.path.exists(LATENTS) else {"latents": [], "caption": []}
    t0 = time.time()
    for i in range(len(data["latents"]), args.clips):
        scene, clip = training_clip(i, args.seed, objects, corridors)
        z = vae.encode(common.to_model_range(clip)[None]).latent_dist.mean[0]
        data["latents"].append(z.half())
        data["caption"].append(index[scene.caption()])
        if (i + 1) % 25 == 0 or i + 1 == args.clips:
            common.save_checkpoint(LATENTS, **data)
            print(f"{i + 1}/{args.clips} clips, {(time.time() - t0) / 60:.1f} min", flush=True)
    z = torch.stack([l.float() for l in data["latents"]])          # [N, 48, F, h, w]
    data["mean"] = z.mean(dim=(0, 2, 3, 4))
    data["std"] = z.std(dim=(0, 2, 3, 4))
    common.save_checkpoint(LATENTS, **data)
    print("latent std per channel:", [round(v, 3) for v in data["std"].tolist()])


def learning_rate(args, step):
    """Warm-up over 200 steps; with --decay-from, a cosine from --lr down to --lr-end at --steps."""
    lr = args.lr * min(1.0, (step + 1) / 200)
    if args.decay_from and args.steps > args.decay_from and step >= args.decay_from:
        t = min(1.0, (step - args.decay_from) / (args.steps - args.decay_from))
        lr = args.lr_end + (args.lr - args.lr_end) * 0.5 * (1 + np.cos(np.pi * t))
    return lr


class CaptionEncoder:
    """The caption embeddings the transformer is conditioned on, [B, 512, D] zero-padded as the
    pipelines pad them: looked up from runs/text/embeds.pt (frozen encoder), or computed by the
    text encoder being trained (--train-text)."""

    def __init__(self, train_text):
        text = os.path.join(common.RUNS, "text")
        st = torch.load(os.path.join(text, "embeds.pt"), weights_only=False)
        self.prompts = st["prompts"]
        self.empty = self.prompts.index("")
        D = common.TEXT_ENCODER_CONFIG["d_model"]
        self.encoder = None
        if not train_text:
            self.table = torch.zeros(len(st["embeds"]), 512, D)
            for i, e in enumerate(st["embeds"]):
                self.table[i, : e.shape[0]] = e
            return
        from transformers import T5Tokenizer, UMT5EncoderModel
        tok = T5Tokenizer.from_pretrained(os.path.join(text, "tokenizer"))
        ids = tok(self.prompts, padding="max_length", max_length=common.MAX_TEXT_TOKENS, truncation=True,
                  add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        self.ids, self.mask = ids.input_ids, ids.attention_mask
        self.encoder = UMT5EncoderModel.from_pretrained(os.path.join(text, "text_encoder")).train()
        self.ema = copy.deepcopy(self.encoder).requires_grad_(False)

    def __call__(self, cap):
        if self.encoder is None:
            return self.table[cap]
        h = self.encoder(self.ids[cap], self.mask[cap]).last_hidden_state * self.mask[cap, :, None]
        return torch.nn.functional.pad(h, (0, 0, 0, 512 - h.shape[1]))


def train(args):
    common.setup_torch(args.threads)
    data = torch.load(LATENTS, weights_only=False)
    z = torch.stack([l.float() for l in data["latents"]])
    z = (z - data["mean"].view(1, -1, 1, 1, 1)) / data["std"].view(1, -1, 1, 1, 1)
    captions = torch.tensor(data["caption"])
    text = CaptionEncoder(args.train_text)
    empty = text.empty

    torch.manual_seed(args.seed)
    model = WanTransformer3DModel(**common.TRANSFORMER_CONFIG)
    ema = copy.deepcopy(model).requires_grad_(False)
    params = list(model.parameters()) + (list(text.encoder.parameters()) if text.encoder else [])
    pairs = list(zip(ema.parameters(), model.parameters()))
    if text.encoder:
        pairs += list(zip(text.ema.parameters(), text.encoder.parameters()))
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    step, log = 0, []
    ckpt = os.path.join(DIT, "last.pt")

    def save():
        extra = dict(text=text.encoder.state_dict(), text_ema=text.ema.state_dict()) if text.encoder else {}
        common.save_checkpoint(ckpt, model=model.state_dict(), ema=ema.state_dict(), opt=opt.state_dict(),
                               step=step, log=log, **extra)

    if os.path.exists(ckpt):
        st = torch.load(ckpt, weights_only=False)
        model.load_state_dict(st["model"]); ema.load_state_dict(st["ema"]); opt.load_state_dict(st["opt"])
        if text.encoder:
            text.encoder.load_state_dict(st["text"]); text.ema.load_state_dict(st["text_ema"])
        step, log = st["step"], st["log"]
        print(f"resumed at step {step}")
    N, C, F, h, w = z.shape
    tokens_per_frame = (h // 2) * (w // 2)
    model.train()
    t_end = time.time() + 60 * args.minutes
    while time.time() < t_end and (args.steps == 0 or step < args.steps):
        B = args.batch
        # randomness drawn per step from (seed, step): a resumed run is the run that never stopped
        rng = np.random.default_rng([args.seed, step])
        gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        idx = torch.from_numpy(rng.integers(0, N, B))
        if step % 2 == 0:      # whole clips
            x0 = z[idx]
            K = rng.choice([0, 1, 2], p=[0.7, 0.15, 0.15])
        else:                  # windows for endless video
            off = int(rng.integers(0, F - common.WINDOW_LATENTS + 1))
            x0 = z[idx, :, off:off + common.WINDOW_LATENTS]
            K = rng.choice([0, 1, 2], p=[0.3, 0.3, 0.4])
        f = x0.shape[2]
        cap = captions[idx].clone()
        cap[torch.from_numpy(rng.random(B) < 0.1)] = empty
        ctx = text(cap)
        u = torch.rand(B, generator=gen)
        sigma = args.shift * u / (1 + (args.shift - 1) * u)
        noise = torch.randn(x0.shape, generator=gen)
        s = sigma.view(B, 1, 1, 1, 1)
        xt = (1 - s) * x0 + s * noise
        xt[:, :, :K] = x0[:, :, :K]
        ts = (sigma * 1000).view(B, 1).repeat(1, f * tokens_per_frame)
        ts[:, : K * tokens_per_frame] = 0
        v = model(xt, ts, ctx, return_dict=False)[0]
        err = (v - (noise - x0))[:, :, K:]
        loss = err.square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        for g in opt.param_groups:
            g["lr"] = learning_rate(args, step)
        opt.step()
        step += 1
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in pairs:
                pe.lerp_(pm, 1 - decay)
        log.append((step, loss.item()))
        if step % 20 == 0:
            print(f"step {step} loss {np.mean([l[1] for l in log[-20:]]):.4f}", flush=True)
        if step % 100 == 0:
            save()
    save()
    print(f"done at step {step}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=["prepare", "train"])
    ap.add_argument("--clips", type=int, default=800)
    ap.add_argument("--steps", type=int, default=0, help="stop at this step (0: only --minutes)")
    ap.add_argument("--minutes", type=float, default=50.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--decay-from", type=int, default=0, help="cosine-decay the lr from this step to --steps")
    ap.add_argument("--lr-end", type=float, default=2e-5)
    ap.add_argument("--shift", type=float, default=common.SCHEDULER_CONFIG["flow_shift"])
    ap.add_argument("--ema", type=float, default=0.998)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--train-text", action="store_true", help="train the text encoder with the transformer")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    prepare(args) if args.stage == "prepare" else train(args)


if __name__ == "__main__":
    main()
