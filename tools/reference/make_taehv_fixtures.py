#!/usr/bin/env python3
"""Fixtures for reel's TAEHV decoder (lib/taehv/), made by the reference implementation itself:
taehv.py of https://github.com/madebyollin/taehv (MIT; not vendored: pass a clone).

The published decoders (taew2_1: 16 latent channels, taew2_2: 48 and 2x2 pixel shuffle) are
7 M parameters; the fixtures use the same architecture, built from taehv.py's own blocks
(Clamp, conv, MemBlock, TGrow) in the same nn.Sequential order and so with the same tensor
names, at small widths, with random weights (seeded). reel reads the widths from the shapes.
As in the published files, the first TGrow stores the weights of a stride-2 layer (2n rows)
that taehv.py's patch_tgrow_layers cuts to the last n for its default stride 1.

For each of two models (c16: 16 channels, patch 1; c48: 48 channels, patch 2) and each of three
settings of taehv.py's decoder_time_upscale / decoder_space_upscale, decode_video() of random
latents ([1, F, C, h, w], F = 3) in f32, parallel and sequential (which must agree).

    git clone https://github.com/madebyollin/taehv /tmp/taehv
    tools/reference/.venv/bin/python tools/reference/make_taehv_fixtures.py --taehv /tmp/taehv

writes tests/fixtures/taehv/{c16,c48}.safetensors (weights) and outputs.safetensors + .json.
"""
import argparse
import json
import os
import subprocess
import sys

import torch
import torch.nn as nn
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "taehv")
WIDTHS = [16, 12, 8, 8]  # taehv.py: [256, 128, 64, 64]
SETTINGS = {  # name: (decoder_time_upscale, decoder_space_upscale)
    "full": ((False, True, True), (True, True, True)),
    "no_time": ((False, False, False), (True, True, True)),
    "latent_size": ((False, False, False), (False, False, False)),
}


def build_decoder(taehv, channels, patch, time_up, space_up):
    """taehv.TAEHV's base decoder, nn.Sequential index for index, at WIDTHS."""
    n = WIDTHS
    conv, MemBlock, TGrow = taehv.conv, taehv.MemBlock, taehv.TGrow
    layers = [taehv.Clamp(), conv(channels, n[0]), nn.ReLU(inplace=True)]
    for s in range(3):
        layers += [MemBlock(n[s], n[s]), MemBlock(n[s], n[s]), MemBlock(n[s], n[s]),
                   nn.Upsample(scale_factor=2 if space_up[s] else 1), TGrow(n[s], 2 if time_up[s] else 1),
                   conv(n[s], n[s + 1], bias=False)]
    layers += [nn.ReLU(inplace=True), conv(n[3], 3 * patch * patch)]
    return nn.Sequential(*layers)


class Reference(nn.Module):
    """The parts of taehv.TAEHV that decode_video() uses, around build_decoder()."""

    def __init__(self, taehv, channels, patch, time_up, space_up):
        super().__init__()
        self.taehv, self.patch_size, self.is_cogvideox, self.is_h3 = taehv, patch, False, False
        self.decoder = build_decoder(taehv, channels, patch, time_up, space_up)
        self.t_upscale = 2 ** sum(t.stride == 2 for t in self.decoder if isinstance(t, taehv.TGrow))
        self.frames_to_trim = self.t_upscale - 1

    def decode(self, x, parallel):
        # taehv.TAEHV.decode_video with this module as `self`
        return self.taehv.TAEHV.decode_video(self, x, parallel=parallel, show_progress_bar=False)

    postprocess_output_frames = lambda self, x: self.taehv.TAEHV.postprocess_output_frames(self, x)  # noqa: E731


def stored_weights(ref):
    """The state dict as a published file stores it: decoder.* names, the first TGrow with the
    rows of a stride-2 layer (taehv.py keeps the last n of them)."""
    sd = {f"decoder.{k}": v.clone() for k, v in ref.decoder.state_dict().items()}
    first = "decoder.7.conv.weight"
    n = sd[first].shape[0]
    extra = torch.randn((n,) + tuple(sd[first].shape[1:]), generator=torch.Generator().manual_seed(99)) * 0.1
    sd[first] = torch.cat([extra, sd[first]], 0)  # the last n rows are the stride-1 weights
    return sd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--taehv", required=True, help="a clone of github.com/madebyollin/taehv")
    args = ap.parse_args()
    sys.path.insert(0, args.taehv)
    import taehv  # noqa: E402
    commit = subprocess.run(["git", "-C", args.taehv, "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    os.makedirs(OUT, exist_ok=True)
    outputs, meta = {}, {"taehv_commit": commit, "widths": WIDTHS, "models": {}}
    for name, channels, patch in (("c16", 16, 1), ("c48", 48, 2)):
        torch.manual_seed(7 if channels == 16 else 8)
        base = Reference(taehv, channels, patch, *SETTINGS["full"])
        with torch.no_grad():  # livelier than PyTorch's default init: outputs away from the clamps
            for p in base.parameters():
                p.mul_(1.6)
            base.decoder[-1].bias.add_(0.5)  # frames around mid-grey: few pixels at the [0, 1] clamp
        stored = stored_weights(base)
        save_file({k: v.contiguous() for k, v in stored.items()}, os.path.join(OUT, f"{name}.safetensors"))
        h, w = (4, 5) if patch == 1 else (3, 4)
        latents = torch.randn((1, 3, channels, h, w), generator=torch.Generator().manual_seed(channels)) * 1.5
        outputs[f"{name}.latents"] = latents[0]
        meta["models"][name] = {"channels": channels, "patch": patch}
        for setting, (time_up, space_up) in SETTINGS.items():
            ref = Reference(taehv, channels, patch, time_up, space_up)
            sd = {k[len("decoder."):]: v for k, v in taehv.TAEHV.patch_tgrow_layers(ref, stored).items()}
            ref.decoder.load_state_dict(sd)
            with torch.no_grad():
                par = ref.decode(latents.clone(), parallel=True)
                seq = ref.decode(latents.clone(), parallel=False)
            assert torch.allclose(par, seq, atol=1e-5), (name, setting, (par - seq).abs().max())
            outputs[f"{name}.{setting}"] = par[0].contiguous()
            print(name, setting, tuple(par.shape), f"mean {par.mean():.3f} std {par.std():.3f}",
                  f"clamped {((par == 0) | (par == 1)).float().mean():.3f}")
    save_file(outputs, os.path.join(OUT, "outputs.safetensors"))
    with open(os.path.join(OUT, "outputs.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
