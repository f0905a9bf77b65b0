#!/usr/bin/env python3
"""Makes the Wan VAE fixtures in tests/fixtures/vae/ with diffusers' AutoencoderKLWan.

Two tiny random-weight models, one per architecture family:
  wan21: Wan 2.1 layout (flat down blocks, WanUpBlock), base_dim 4, z_dim 4, 24x40 pixels.
  wan22: Wan 2.2 layout (is_residual, patch_size 2, 12 in/out channels, decoder_base_dim 4),
         base_dim 2, z_dim 6, 32x48 pixels.
Both keep the real dim_mult [1,2,4,4], num_res_blocks 2 and temporal pattern, so every module
kind and every name of the mapping tables occurs.

Random weights are rounded to bf16-representable values, so the f32, bf16 and f16 files all
hold exactly the same numbers and must give bit-identical outputs in reel. Files written:
  <name>_diffusers_bf16.safetensors   weights, diffusers names, bf16
  <name>_original_f16.safetensors     weights, original Wan / ComfyUI names (inverse of wan.md 5.2), f16
  <name>_io.safetensors               video [1,3,13,H,W] in [-1,1) (bf16-exact, stored bf16) ->
                                      moments (encoder + quant_conv, [1,2z,4,h,w]); latents
                                      [1,z,4,h,w] -> decoded [1,3,13,H,W]; tiled_decoded: the
                                      tiled decode (small tiles) of the first 2 latent frames;
Reference runs are causal, so encode/decode of a prefix is the prefix of the full run; the
script asserts this, and the C++ tests use prefixes for the 1, 5, 9, 13 frame cases.

And a diffusers folder, custom/ (config.json + weights) with custom_io.safetensors, of a VAE
whose dim_mult, num_res_blocks and temporal pattern are not Wan's (FOLDERS below).

Usage: tools/reference/.venv/bin/python tools/reference/make_vae_fixtures.py [--only custom ...]
"""
import os
import pathlib

import torch
from safetensors.torch import save_file
from diffusers import AutoencoderKLWan
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "vae"

CONFIGS = {
    "wan21": dict(
        config=dict(base_dim=4, z_dim=4, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                    temperal_downsample=[False, True, True],
                    latents_mean=[0.0] * 4, latents_std=[1.0] * 4),
        height=24, width=40, seed=1234, conv_out_scale=1.0,
        # diffusers enable_tiling arguments (pixels): tiles of 16, stride 8 -> latent tiles of 2, stride 1
        tiling=dict(tile_sample_min_height=16, tile_sample_min_width=16,
                    tile_sample_stride_height=8, tile_sample_stride_width=8),
    ),
    "wan22": dict(
        config=dict(base_dim=2, decoder_base_dim=4, z_dim=6, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                    temperal_downsample=[False, True, True], is_residual=True, in_channels=12,
                    out_channels=12, patch_size=2, scale_factor_spatial=16, scale_factor_temporal=4,
                    latents_mean=[0.0] * 6, latents_std=[1.0] * 6),
        height=32, width=48, seed=5678, conv_out_scale=0.6,
        # tiles of 32 px, stride 16 -> latent tiles 2, stride 1 (with patch size 2, 16/8 px blend)
        tiling=dict(tile_sample_min_height=32, tile_sample_min_width=32,
                    tile_sample_stride_height=16, tile_sample_stride_width=16),
    ),
}

# A diffusers folder (save_pretrained: config.json + weights) whose architecture is not Wan's:
# three levels, one res block per level, the temporal downsample on the first level. reel must
# build it from config.json (the weights' shapes alone cannot tell dim_mult or num_res_blocks).
FOLDERS = {
    "custom": dict(
        config=dict(base_dim=4, z_dim=4, dim_mult=[1, 2, 2], num_res_blocks=1,
                    temperal_downsample=[True, False], latents_mean=[0.0] * 4, latents_std=[1.0] * 4),
        height=16, width=24, seed=4321, conv_out_scale=1.0,
    ),
}

FRAMES = 13  # pixel frames of the longest case; 1, 5, 9, 13 are its causal prefixes


# ----------------------------------------------------------------------------------- names
RES_ORIG = {"norm1.gamma": "residual.0.gamma", "conv1": "residual.2", "norm2.gamma": "residual.3.gamma",
            "conv2": "residual.6", "conv_shortcut": "shortcut"}


def _res_suffix(rest):
    for d, o in RES_ORIG.items():
        if rest == d or rest.startswith(d + "."):
            return o + rest[len(d):]
    raise KeyError(rest)


def to_original(name, cfg):
    """diffusers name -> original Wan / ComfyUI name (the inverse of wan.md 5.2)."""
    nrb = cfg["num_res_blocks"]
    residual = cfg.get("is_residual", False)
    p = name.split(".")
    top = {"quant_conv": "conv1", "post_quant_conv": "conv2"}
    if p[0] in top:
        return top[p[0]] + "." + ".".join(p[1:])
    side, rest = p[0], p[1:]
    if rest[0] == "conv_in":
        return f"{side}.conv1." + rest[1]
    if rest[0] == "norm_out":
        return f"{side}.head.0.gamma"
    if rest[0] == "conv_out":
        return f"{side}.head.2." + rest[1]
    if rest[0] == "mid_block":
        kind, idx, tail = rest[1], int(rest[2]), ".".join(rest[3:])
        if kind == "resnets":
            return f"{side}.middle.{0 if idx == 0 else 2}." + _res_suffix(tail)
        return f"{side}.middle.1." + tail  # attentions.0.{norm.gamma,to_qkv,proj}
    if side == "encoder":
        if not residual:  # flat list, same index, renamed residual internals
            idx, tail = int(rest[1]), ".".join(rest[2:])
            if tail.startswith(("resample", "time_conv")):
                return f"encoder.downsamples.{idx}." + tail
            return f"encoder.downsamples.{idx}." + _res_suffix(tail)
        blk = int(rest[1])
        if rest[2] == "resnets":
            return f"encoder.downsamples.{blk}.downsamples.{rest[3]}." + _res_suffix(".".join(rest[4:]))
        assert rest[2] == "downsampler"
        return f"encoder.downsamples.{blk}.downsamples.{nrb}." + ".".join(rest[3:])
    assert side == "decoder"
    blk = int(rest[1])
    if not residual:  # flat list: level i holds nrb+1 resnets then its upsampler
        if rest[2] == "resnets":
            flat = blk * (nrb + 2) + int(rest[3])
            return f"decoder.upsamples.{flat}." + _res_suffix(".".join(rest[4:]))
        assert rest[2] == "upsamplers" and rest[3] == "0"
        return f"decoder.upsamples.{blk * (nrb + 2) + nrb + 1}." + ".".join(rest[4:])
    if rest[2] == "resnets":
        return f"decoder.upsamples.{blk}.upsamples.{rest[3]}." + _res_suffix(".".join(rest[4:]))
    assert rest[2] == "upsampler"
    return f"decoder.upsamples.{blk}.upsamples.{nrb + 1}." + ".".join(rest[3:])


# ----------------------------------------------------------------------------------- model
def make_model(cfg, seed, conv_out_scale):
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(**cfg).eval()
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if name.endswith("gamma"):
                # norms start at 1: perturb them so a wrong gamma is visible
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            # conv weights keep PyTorch's kaiming-uniform init
        # Keep the decoder output mostly inside (-1, 1): scale its last conv (per model; the
        # fraction the clamp touches is printed and checked below).
        vae.decoder.conv_out.weight.mul_(conv_out_scale)
        # Exactly representable in bf16 (and hence in f16 for these magnitudes).
        for name, p in vae.named_parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
            p.masked_fill_(p.abs() < 2.0 ** -14, 0.0)  # below f16's normal range: not exact there
            assert torch.equal(p.to(torch.float16).to(torch.float32), p), name
    return vae


def check_original_names(vae, cfg, original):
    names = {k: to_original(k, cfg) for k in vae.state_dict()}
    assert len(set(names.values())) == len(names), "original names are not unique"
    if not cfg.get("is_residual", False):
        # The Wan 2.1 direction is in diffusers itself: check our inverse against it.
        back = convert_wan_vae_to_diffusers({o: d for d, o in names.items()})
        assert set(back.keys()) == set(names.keys()), set(back.keys()) ^ set(names.keys())
        for d, o in names.items():
            assert back[d] == d, (d, o, back[d])
    return names


def make_folder(tag, spec):
    cfg, H, W = spec["config"], spec["height"], spec["width"]
    vae = make_model(cfg, spec["seed"], spec["conv_out_scale"])
    vae.save_pretrained(OUT / tag, safe_serialization=True)
    g = torch.Generator().manual_seed(spec["seed"] + 1)
    video = (torch.rand(1, 3, FRAMES, H, W, generator=g) * 2 - 1).to(torch.bfloat16).float()
    sf = 2 ** (len(cfg["dim_mult"]) - 1)
    lat_t = (FRAMES - 1) // 4 + 1
    latents = torch.randn(1, cfg["z_dim"], lat_t, H // sf, W // sf, generator=g)
    with torch.no_grad():
        moments = vae._encode(video)
        decoded = vae.decode(latents).sample
    print(f"{tag}: moments {tuple(moments.shape)}, decoded {tuple(decoded.shape)}")
    save_file({"video": video.to(torch.bfloat16).contiguous(), "moments": moments.contiguous(),
               "latents": latents.contiguous(), "decoded": decoded.contiguous()}, OUT / f"{tag}_io.safetensors")


def main():
    import sys
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    only = sys.argv[sys.argv.index("--only") + 1:] if "--only" in sys.argv else None
    for tag, spec in FOLDERS.items():
        if only is None or tag in only:
            make_folder(tag, spec)
    for tag, spec in CONFIGS.items():
        if only is not None and tag not in only:
            continue
        cfg, H, W = spec["config"], spec["height"], spec["width"]
        vae = make_model(cfg, spec["seed"], spec["conv_out_scale"])
        sd = {k: v.detach().contiguous() for k, v in vae.state_dict().items()}
        names = check_original_names(vae, cfg, None)
        save_file({k: v.to(torch.bfloat16) for k, v in sd.items()}, OUT / f"{tag}_diffusers_bf16.safetensors")
        save_file({names[k]: v.to(torch.float16) for k, v in sd.items()}, OUT / f"{tag}_original_f16.safetensors")
        nparams = sum(v.numel() for v in sd.values())

        g = torch.Generator().manual_seed(spec["seed"] + 1)
        video = (torch.rand(1, 3, FRAMES, H, W, generator=g) * 2 - 1).to(torch.bfloat16).float()
        sf = cfg.get("scale_factor_spatial", 8)
        lat_t = (FRAMES - 1) // 4 + 1
        latents = torch.randn(1, cfg["z_dim"], lat_t, H // sf, W // sf, generator=g)

        with torch.no_grad():
            moments = vae._encode(video)
            # the un-clamped decoder output, to report how much the clamp touches
            vae.clear_cache()
            raw = []
            x = vae.post_quant_conv(latents)
            for i in range(lat_t):
                vae._conv_idx = [0]
                raw.append(vae.decoder(x[:, :, i:i + 1], feat_cache=vae._feat_map, feat_idx=vae._conv_idx,
                                       first_chunk=(i == 0)))
            raw = torch.cat(raw, 2)
            decoded = vae.decode(latents).sample
            # causality: every prefix decodes / encodes to the prefix of the full run
            for k in range(1, lat_t):
                d = vae.decode(latents[:, :, :k]).sample
                assert torch.allclose(d, decoded[:, :, :4 * (k - 1) + 1], atol=1e-6, rtol=0), k
                m = vae._encode(video[:, :, :4 * (k - 1) + 1])
                assert torch.allclose(m, moments[:, :, :k], atol=1e-6, rtol=0), k
            vae.enable_tiling(**spec["tiling"])
            tiled = vae.decode(latents[:, :, :2]).sample
            vae.use_tiling = False
        clamped = (raw.abs() > 1).float().mean().item()
        print(f"{tag}: {nparams} params; decoder output std {raw.std().item():.3f}, "
              f"fraction clamped {clamped:.4f}; moments {tuple(moments.shape)}, decoded {tuple(decoded.shape)}; "
              f"tiled vs plain max diff {(tiled - decoded[:, :, :5]).abs().max().item():.3f}")
        assert clamped < 0.01, "decoder output saturates the clamp: scale conv_out down"
        save_file({"video": video.to(torch.bfloat16).contiguous(), "moments": moments.contiguous(), "latents": latents.contiguous(),
                   "decoded": decoded.contiguous(), "tiled_decoded": tiled.contiguous()},
                  OUT / f"{tag}_io.safetensors",
                  metadata={k: str(v) for k, v in spec["tiling"].items()})
    total = sum(f.stat().st_size for f in OUT.iterdir())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
