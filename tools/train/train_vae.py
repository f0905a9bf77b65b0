#!/usr/bin/env python3
"""Stage 1: train the demo model's VAE (diffusers' AutoencoderKLWan, Wan 2.2 layout: patch 2,
z_dim 48, x16 space, x4 time) on the synthetic clips. Whole frames (256x160), not crops: the
VAE's middle block attends over all positions, and what it learns on small crops does not carry
over to the frame size it runs at.

    python tools/train/train_vae.py --minutes 25          # resumes from runs/vae/last.pt
    python tools/train/train_vae.py --decoder-only --minutes 60   # runs/vae/decoder.pt
    python tools/train/train_vae.py --long --minutes 30           # whole 33-frame clips, joint

--decoder-only goes on training the decoder with the encoder frozen (what the transformer's
latents were made with, so the two stay consistent): the second half of the VAE's training
runs beside the transformer's.

Loss: MSE (+ --l1 times L1) on [-1, 1] pixels, decoding the posterior mean plus --noise, and a
light penalty on the latents' magnitude. Seeded; a checkpoint every 50 steps.

A fresh VAE starts with every residual branch at zero (`residual_zero_init`): it begins as its
shortcut paths (the Wan 2.2 layout's pixel-unshuffle averages) and grows its depth from there.
From the default initialisation it stalled at the mean colour of each frame (~16 dB) for
hundreds of steps; with L1 + MSE at lr 1e-3 it never left it on the whole-frame clips (v0, v1).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from diffusers import AutoencoderKLWan

import common
import scenes


def residual_zero_init(vae):
    """Zero the last convolution of every residual branch (resnet conv2, attention proj), the
    Fixup / "zero-init residual" recipe: the untrained VAE is then its shortcut paths plus the
    input and output convolutions, shallow enough to learn colour and position in a few hundred
    steps, and the residual branches join in as their weights grow."""
    for name, mod in vae.named_modules():
        last = name.rsplit(".", 1)[-1]
        if (last == "conv2" and ".resnets." in name) or (last == "proj" and ".attentions." in name):
            torch.nn.init.zeros_(mod.weight)
            torch.nn.init.zeros_(mod.bias)


def batch(rng, train_scenes, n, frames, crop):
    xs = []
    objects = [s for s in train_scenes if s.family == "objects"]
    corridors = [s for s in train_scenes if s.family == "corridor"]
    for _ in range(n):
        pool = objects if rng.random() < 0.5 else corridors
        scene = pool[rng.integers(len(pool))]
        clip = scenes.render(scene, frames, (common.HEIGHT, common.WIDTH), int(rng.integers(1 << 31)),
                             start=int(rng.integers(0, 64)))
        if crop:
            y = rng.integers(0, common.HEIGHT - crop + 1)
            x = rng.integers(0, common.WIDTH - crop + 1)
            clip = clip[:, y:y + crop, x:x + crop]
        xs.append(common.to_model_range(clip))
    return torch.stack(xs)


def decode_tail(vae, z, grad_from):
    """The decoder run latent frame by latent frame through its causal cache, as diffusers'
    _decode does, with gradients only from latent frame `grad_from` on (truncated
    backpropagation through time: the long-sequence behaviour at a fraction of the cost).
    Returns the pixel frames of latents grad_from.. ([B, 3, T, H, W])."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import unpatchify
    vae.clear_cache()
    x = vae.post_quant_conv(z)
    outs = []
    for i in range(z.shape[2]):
        vae._conv_idx = [0]
        if i == grad_from:
            vae._feat_map = [f.detach() if isinstance(f, torch.Tensor) else f for f in vae._feat_map]
        with torch.set_grad_enabled(i >= grad_from):
            out = vae.decoder(x[:, :, i:i + 1], feat_cache=vae._feat_map, feat_idx=vae._conv_idx, first_chunk=i == 0)
        if i >= grad_from:
            outs.append(out)
    vae.clear_cache()
    return unpatchify(torch.cat(outs, 2), patch_size=vae.config.patch_size)


def encode_tail(vae, x, grad_from):
    """The encoder run chunk by chunk through its causal cache (the first frame, then 4 frames
    at a time), as diffusers' _encode does, with gradients only from latent frame `grad_from`
    on. Returns the posterior means of every latent frame ([B, z, F, h, w])."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import patchify
    vae.clear_cache()
    x = patchify(x, patch_size=vae.config.patch_size)
    outs = []
    for i in range(1 + (x.shape[2] - 1) // 4):
        vae._enc_conv_idx = [0]
        if i == grad_from:
            vae._enc_feat_map = [f.detach() if isinstance(f, torch.Tensor) else f for f in vae._enc_feat_map]
        chunk = x[:, :, :1] if i == 0 else x[:, :, 1 + 4 * (i - 1): 1 + 4 * i]
        with torch.set_grad_enabled(i >= grad_from):
            outs.append(vae.encoder(chunk, feat_cache=vae._enc_feat_map, feat_idx=vae._enc_conv_idx))
    vae.clear_cache()
    return vae.quant_conv(torch.cat(outs, 2))[:, : vae.config.z_dim]


def train_long(args, vae, opt, step, log, ckpt):
    """--long: whole 33-frame clips (9 latent frames), gradients on `tail` latent frames at a
    random place (truncated backpropagation through time). The causal VAE trained on 3 latent
    frames only falls apart from the 4th; this is how it learns the length it runs at.
    Joint (encoder and decoder, clips rendered on the fly), or with --decoder-only on the
    transformer's training latents (runs/dit/latents.pt, frozen encoder) and the same clips
    rendered again."""
    import train_dit
    data = None
    if args.decoder_only:
        data = torch.load(os.path.join(common.RUNS, "dit", "latents.pt"), weights_only=False)
    train_scenes, _ = scenes.split()
    objects = [s for s in train_scenes if s.family == "objects"]
    corridors = [s for s in train_scenes if s.family == "corridor"]
    t_end = time.time() + 60 * args.minutes
    while time.time() < t_end and (args.steps == 0 or step < args.steps):
        rng = np.random.default_rng([args.seed, step, 2])
        latents = 1 + (common.TRAIN_FRAMES - 1) // 4
        g = int(rng.integers(3, latents - args.tail + 1))          # latent frames g .. g+tail-1 get gradients
        if data is not None:
            i = int(rng.integers(len(data["latents"])))
            _, clip = train_dit.training_clip(i, 3, objects, corridors)
            z = data["latents"][i].float()[None]
        else:
            _, clip = train_dit.training_clip(int(rng.integers(1 << 30)), args.seed, objects, corridors)
            z = encode_tail(vae, common.to_model_range(clip[: 4 * (g + args.tail) - 3])[None], g)
        z = z + args.noise * torch.randn(z.shape, generator=torch.Generator().manual_seed(step))
        z = z[:, :, : g + args.tail]
        y = decode_tail(vae, z, g)
        x = common.to_model_range(clip)[None][:, :, 4 * g - 3: 4 * (g + args.tail) - 3]
        rec = args.l1 * (y - x).abs().mean() + ((y - x) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        rec.backward()
        torch.nn.utils.clip_grad_norm_([p for p in vae.parameters() if p.requires_grad], 1.0)
        opt.step()
        step += 1
        log.append((step, rec.item(), 0.0))
        if step % 5 == 0:
            print(f"long step {step} rec {np.mean([l[1] for l in log[-5:]]):.4f} (latents {g}..{g + args.tail - 1})",
                  flush=True)
        if step % 20 == 0:
            common.save_checkpoint(ckpt, model=vae.state_dict(), opt=opt.state_dict(), step=step, log=log)
    common.save_checkpoint(ckpt, model=vae.state_dict(), opt=opt.state_dict(), step=step, log=log)
    print(f"done at step {step}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=0, help="stop at this step (0: only --minutes)")
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--crop", type=int, default=0, help="square crops of this size (0: whole frames)")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--l1", type=float, default=0.0, help="weight of an L1 term beside the MSE")
    ap.add_argument("--kl", type=float, default=1e-4)
    ap.add_argument("--noise", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--decoder-only", action="store_true")
    ap.add_argument("--long", action="store_true", help="whole 33-frame clips, truncated backprop")
    ap.add_argument("--tail", type=int, default=2, help="--long: latent frames that get gradients")
    args = ap.parse_args()
    common.setup_torch(args.threads)
    ckpt = os.path.join(common.RUNS, "vae", "decoder.pt" if args.decoder_only else "last.pt")

    torch.manual_seed(args.seed)
    vae = AutoencoderKLWan(**common.VAE_CONFIG, latents_mean=[0.0] * 48, latents_std=[1.0] * 48)
    if not args.decoder_only and not os.path.exists(ckpt):
        residual_zero_init(vae)
    if args.decoder_only:  # start from the jointly trained VAE
        vae.load_state_dict(torch.load(os.path.join(common.RUNS, "vae", "last.pt"), weights_only=False)["model"])
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=args.lr)
    step = 0
    log = []
    if os.path.exists(ckpt):
        st = torch.load(ckpt, weights_only=False)
        vae.load_state_dict(st["model"]); opt.load_state_dict(st["opt"])
        for g in opt.param_groups:  # this stage's rate, not the one saved with the optimizer
            g["lr"] = args.lr
        step, log = st["step"], st["log"]
        print(f"resumed at step {step}")
    vae.train()
    if args.long:
        return train_long(args, vae, opt, step, log, ckpt)
    train_scenes, _ = scenes.split()
    t_end = time.time() + 60 * args.minutes
    while time.time() < t_end and (args.steps == 0 or step < args.steps):
        rng = np.random.default_rng([args.seed, step, int(args.decoder_only)])
        torch.manual_seed(args.seed * 1_000_003 + step)
        x = batch(rng, train_scenes, args.batch, args.frames, args.crop)
        with torch.set_grad_enabled(not args.decoder_only):
            mean = vae.encode(x).latent_dist.mean
        # The posterior mean plus a little noise: the transformer is trained on (and generates)
        # posterior means, and the decoder learns to tolerate small errors in them. Sampling at
        # the posterior's own variance drowns the signal for the first thousands of steps.
        z = mean + args.noise * torch.randn_like(mean)
        y = vae.decode(z).sample
        rec = args.l1 * (y - x).abs().mean() + ((y - x) ** 2).mean()
        kl = 0.5 * (mean ** 2).mean()        # keeps the latents' scale bounded
        loss = rec + args.kl * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        log.append((step, rec.item(), kl.item()))
        if step % 10 == 0:
            r = np.mean([l[1] for l in log[-10:]])
            psnr = 10 * np.log10(4.0 / max(1e-8, np.mean([((y - x) ** 2).mean().item()])))
            print(f"step {step} rec {r:.4f} kl {kl.item():.3f} psnr~{psnr:.1f}dB", flush=True)
        if step % 50 == 0:
            common.save_checkpoint(ckpt, model=vae.state_dict(), opt=opt.state_dict(), step=step, log=log)
    common.save_checkpoint(ckpt, model=vae.state_dict(), opt=opt.state_dict(), step=step, log=log)
    print(f"done at step {step}")


if __name__ == "__main__":
    main()
