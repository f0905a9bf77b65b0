#!/usr/bin/env python3
"""Fixtures for the Wan diffusion transformer (tests/dit/): tiny random-weight
WanTransformer3DModel configurations built with diffusers, their weights in the diffusers and
the original/ComfyUI layouts, fixed random inputs and the reference outputs in f32 and bf16.

Run from the repository root:
    tools/reference/.venv/bin/python tools/reference/make_dit_fixtures.py

Writes tests/fixtures/dit/<case>/:
    diffusers/            config.json + diffusion_pytorch_model*.safetensors (save_pretrained)
                          (not for t2v, see below)
    original.safetensors  the same values under the original Wan names (reel/wan.md §5.1)
    io.safetensors        inputs and reference outputs:
        latents [B,C,F,H,W], timesteps [B] or [B,L] (f32), text [B,T,text_dim],
        image [B,N,image_dim] (i2v only),
        out_f32   diffusers forward in f32,
        out_bf16  diffusers forward of the model loaded with torch_dtype=bfloat16 (its
                  _keep_in_fp32_modules honoured) on the same inputs, as bf16.

Weight values and inputs are chosen exactly representable in bf16 AND f16, so every file dtype
(f32, bf16, f16) holds the same numbers and the two layouts give bit-identical results; the
f32 reference on these inputs is also the f32 reference for the bf16 run, so the gap
out_bf16 − out_f32 measures what bf16 computation costs, which is what the bf16 test's
tolerance is derived from.

The cases (2 layers each, batch 2 with two different timesteps):
    t2v   1 head × head_dim 128 (D 128), 16 → 16 channels, text_dim 16, 7 text tokens,
          latents F=3, H=6, W=10 (45 tokens). Only the original layout, as a ComfyUI
          "fp8 scaled" file (`model.diffusion_model.` prefix, block linear weights in
          float8_e4m3fn with a per-tensor f32 `<layer>.scale_weight`, marker `scaled_fp8`);
          the references are diffusers runs with the dequantised weights (q·scale in f32;
          cast to bf16 by from_pretrained for out_bf16, as reel's bf16 mode does), so this case
          tests the fp8 path and head_dim 128 at once. (A D=128 model is 0.8 MB per bf16 copy:
          one copy keeps the fixtures small.)
    i2v   2 heads × head_dim 32 (D 64), 36 → 16 channels, image context (image_dim 24,
          5 image tokens, added_kv_proj_dim = D), text_dim 16 and 512 text tokens (diffusers
          splits the context at len − 512), latents F=2, H=4, W=6. diffusers folder in bf16;
          original layout in f16 with the `model.diffusion_model.` prefix (ComfyUI).
    ti2v  2 heads × head_dim 24 (D 48), 48 → 48 channels, per-token timesteps [B, L]
          (row 0: 0 for the first latent frame and t elsewhere, as the TI2V-5B pipeline;
          row 1: one value everywhere), text_dim 32, 7 text tokens, latents F=3, H=6, W=10.
          diffusers folder sharded (index.json) in bf16; original layout in f32, no prefix
          (the official Wan-AI files).
"""
import json
import os
import shutil
import sys
import tempfile

import torch
from diffusers import WanTransformer3DModel
from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "dit")
PREFIX = "model.diffusion_model."

# diffusers name fragment → original name fragment: the inverse of reel/wan.md §5.1 (the order
# matters: longer, more specific fragments first).
TO_ORIGINAL = [
    ("condition_embedder.time_embedder.linear_1.", "time_embedding.0."),
    ("condition_embedder.time_embedder.linear_2.", "time_embedding.2."),
    ("condition_embedder.time_proj.", "time_projection.1."),
    ("condition_embedder.text_embedder.linear_1.", "text_embedding.0."),
    ("condition_embedder.text_embedder.linear_2.", "text_embedding.2."),
    ("condition_embedder.image_embedder.norm1.", "img_emb.proj.0."),
    ("condition_embedder.image_embedder.ff.net.0.proj.", "img_emb.proj.1."),
    ("condition_embedder.image_embedder.ff.net.2.", "img_emb.proj.3."),
    ("condition_embedder.image_embedder.norm2.", "img_emb.proj.4."),
    ("condition_embedder.image_embedder.pos_embed", "img_emb.emb_pos"),
    (".attn1.to_q.", ".self_attn.q."),
    (".attn1.to_k.", ".self_attn.k."),
    (".attn1.to_v.", ".self_attn.v."),
    (".attn1.to_out.0.", ".self_attn.o."),
    (".attn1.norm_q.", ".self_attn.norm_q."),
    (".attn1.norm_k.", ".self_attn.norm_k."),
    (".attn2.to_q.", ".cross_attn.q."),
    (".attn2.to_k.", ".cross_attn.k."),
    (".attn2.to_v.", ".cross_attn.v."),
    (".attn2.to_out.0.", ".cross_attn.o."),
    (".attn2.norm_q.", ".cross_attn.norm_q."),
    (".attn2.norm_k.", ".cross_attn.norm_k."),
    (".attn2.add_k_proj.", ".cross_attn.k_img."),
    (".attn2.add_v_proj.", ".cross_attn.v_img."),
    (".attn2.norm_added_k.", ".cross_attn.norm_k_img."),
    (".norm2.", ".norm3."),  # the cross-attention LayerNorm: original norm3 = diffusers norm2
    (".ffn.net.0.proj.", ".ffn.0."),
    (".ffn.net.2.", ".ffn.2."),
    (".scale_shift_table", ".modulation"),
]


def to_original_name(name):
    if name.startswith("proj_out."):
        return "head.head." + name[len("proj_out."):]
    if name == "scale_shift_table":
        return "head.modulation"
    for a, b in TO_ORIGINAL:
        if a in name:
            return name.replace(a, b)
    return name  # patch_embedding.*


def exact_in_bf16_and_f16(t):
    """Rounds to a value that f32, bf16 and f16 all hold exactly (see the module docstring)."""
    return t.float().to(torch.float16).to(torch.bfloat16).float()


def randomize(model, seed):
    """Random values for every parameter (LayerNorm/RMSNorm weights near 1, never all ones or
    zeros, so a swapped or skipped tensor shows), rounded as exact_in_bf16_and_f16."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                v = 0.1 * torch.randn(p.shape, generator=g)
            elif p.ndim == 1 and ("norm" in name):
                v = 1.0 + 0.2 * torch.randn(p.shape, generator=g)
            elif "scale_shift_table" in name:
                v = 0.3 * torch.randn(p.shape, generator=g)
            elif "pos_embed" in name:
                v = 0.5 * torch.randn(p.shape, generator=g)
            else:
                fan_in = p[0].numel()
                v = torch.randn(p.shape, generator=g) / fan_in ** 0.5
            p.copy_(exact_in_bf16_and_f16(v))


def run(model, inputs, dtype):
    args = dict(
        hidden_states=inputs["latents"].to(dtype),
        timestep=inputs["timesteps"],
        encoder_hidden_states=inputs["text"].to(dtype),
        return_dict=False,
    )
    if "image" in inputs:
        args["encoder_hidden_states_image"] = inputs["image"].to(dtype)
    with torch.no_grad():
        return model(**args)[0]


def quantize_fp8_scaled(state):
    """ComfyUI "fp8 scaled" layout: each 2-D block Linear weight w becomes
    q = float8_e4m3fn(w / s) with s = max|w| / 448 (f32), stored with `<layer>.scale_weight`
    = s (f32 scalar); everything else stays as it is. Returns (file dict, dequantised dict)."""
    out, deq = {}, {}
    for name, t in state.items():
        if name.startswith("blocks.") and name.endswith(".weight") and t.ndim == 2:
            s = (t.abs().max() / 448.0).float()
            q = (t / s).to(torch.float8_e4m3fn)
            out[name] = q
            out[name[: -len("weight")] + "scale_weight"] = s.reshape([])
            deq[name] = q.float() * s
        else:
            out[name] = t
            deq[name] = t
    return out, deq


CASES = {
    "t2v": dict(
        config=dict(patch_size=(1, 2, 2), num_attention_heads=1, attention_head_dim=128, in_channels=16,
                    out_channels=16, text_dim=16, freq_dim=256, ffn_dim=64, num_layers=2,
                    cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024),
        latent=(3, 6, 10), text_len=7, timesteps=[937.0, 412.5], seed=1,
        diffusers_dtype=None, shard=None,
        original="fp8_scaled"),
    "i2v": dict(
        config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=32, in_channels=36,
                    out_channels=16, text_dim=16, freq_dim=256, ffn_dim=64, num_layers=2,
                    cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=24,
                    added_kv_proj_dim=64, rope_max_seq_len=1024),
        latent=(2, 4, 6), text_len=512, image_len=5, timesteps=[999.0, 21.75], seed=2,
        diffusers_dtype=torch.bfloat16, shard=None,
        original="f16_prefixed"),
    "ti2v": dict(
        config=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=24, in_channels=48,
                    out_channels=48, text_dim=32, freq_dim=256, ffn_dim=80, num_layers=2,
                    cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024),
        latent=(3, 6, 10), text_len=7, timesteps=[880.0, 333.0], seed=3, per_token=True,
        diffusers_dtype=torch.bfloat16, shard="40KB",
        original="f32_plain"),
}


def make_inputs(case, cfg):
    g = torch.Generator().manual_seed(1000 + case["seed"])
    f, h, w = case["latent"]
    B = 2
    latents = exact_in_bf16_and_f16(torch.randn(B, cfg["in_channels"], f, h, w, generator=g))
    text = exact_in_bf16_and_f16(torch.randn(B, case["text_len"], cfg["text_dim"], generator=g))
    # Row 1 ends in zero rows, as a padded prompt does (the DiT does not mask them).
    text[1, case["text_len"] // 2 + 1:] = 0
    inputs = dict(latents=latents, text=text)
    L = f * (h // 2) * (w // 2)
    t0, t1 = case["timesteps"]
    if case.get("per_token"):
        ts = torch.full((B, L), t0, dtype=torch.float32)
        ts[0, : (h // 2) * (w // 2)] = 0.0  # first latent frame: the conditioning image
        ts[1, :] = t1
        inputs["timesteps"] = ts
    else:
        inputs["timesteps"] = torch.tensor([t0, t1], dtype=torch.float32)
    if "image_len" in case:
        inputs["image"] = exact_in_bf16_and_f16(
            torch.randn(B, case["image_len"], cfg["image_dim"], generator=g))
    return inputs


def check_original_layout(original, diffusers_state):
    """The original-layout names must map back to the diffusers names with diffusers' own
    converter (single-file loading), tensor for tensor."""
    back = convert_wan_transformer_to_diffusers(dict(original))
    if set(back) != set(diffusers_state):
        raise SystemExit(f"layout check failed: {sorted(set(back) ^ set(diffusers_state))}")
    for k, v in back.items():
        if not torch.equal(v.float(), diffusers_state[k].float()):
            raise SystemExit(f"layout check failed: values differ for {k}")


def save_diffusers_folder(ddir, cfg, state, dtype, shard):
    model = WanTransformer3DModel(**cfg).eval()
    model.load_state_dict(state)
    model = model.to(dtype)
    kwargs = {"safe_serialization": True}
    if shard:
        kwargs["max_shard_size"] = shard
    model.save_pretrained(ddir, **kwargs)
    # Keep the config deterministic: drop the library-version field.
    cfg_path = os.path.join(ddir, "config.json")
    with open(cfg_path) as fh:
        saved_cfg = json.load(fh)
    saved_cfg.pop("_diffusers_version", None)
    with open(cfg_path, "w") as fh:
        json.dump(saved_cfg, fh, indent=2, sort_keys=True)


def load_bf16(ddir, state):
    """The model as users load it in bf16: from_pretrained(torch_dtype=bfloat16), which keeps
    the _keep_in_fp32_modules in f32 (checked against reel/wan.md §1.2)."""
    model = WanTransformer3DModel.from_pretrained(ddir, torch_dtype=torch.bfloat16).eval()
    kept = {k for k, v in model.state_dict().items() if v.dtype == torch.float32}
    expect_kept = {k for k in state if any(s in k.split(".") for s in
                                           ("time_embedder", "scale_shift_table", "norm1", "norm2", "norm3"))}
    if kept != expect_kept:
        raise SystemExit(f"fp32-kept set differs from wan.md §1.2: {sorted(kept ^ expect_kept)}")
    return model


def make_case(name, case):
    torch.manual_seed(case["seed"])
    cfg = case["config"]
    model = WanTransformer3DModel(**cfg).float().eval()
    randomize(model, case["seed"])
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    inputs = make_inputs(case, cfg)

    case_dir = os.path.join(OUT, name)
    shutil.rmtree(case_dir, ignore_errors=True)
    os.makedirs(case_dir)

    original = {to_original_name(k): v for k, v in state.items()}
    check_original_layout(original, state)
    kind = case["original"]
    if kind == "fp8_scaled":
        # Quantise under the diffusers names (so the reference loads the dequantised values),
        # then rename; each scale follows its weight's name.
        q, deq = quantize_fp8_scaled({k: v.to(torch.bfloat16) for k, v in state.items()})
        file_dict = {}
        for k, v in q.items():
            if k.endswith(".scale_weight"):
                base = to_original_name(k[: -len("scale_weight")] + "weight")
                file_dict[PREFIX + base[: -len("weight")] + "scale_weight"] = v
            else:
                file_dict[PREFIX + to_original_name(k)] = v
        file_dict[PREFIX + "scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
        state = {k: v.float() for k, v in deq.items()}  # the references use these values
    elif kind == "f16_prefixed":
        file_dict = {PREFIX + k: v.to(torch.float16) for k, v in original.items()}
    elif kind == "f32_plain":
        file_dict = {k: v.float() for k, v in original.items()}
    else:
        raise SystemExit(kind)
    save_file({k: v.contiguous() for k, v in file_dict.items()}, os.path.join(case_dir, "original.safetensors"))

    ref = WanTransformer3DModel(**cfg).float().eval()
    ref.load_state_dict(state)
    out_f32 = run(ref, inputs, torch.float32)

    if case["diffusers_dtype"] is not None:
        ddir = os.path.join(case_dir, "diffusers")
        save_diffusers_folder(ddir, cfg, state, case["diffusers_dtype"], case["shard"])
        out_bf16 = run(load_bf16(ddir, state), inputs, torch.bfloat16)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            save_diffusers_folder(tmp, cfg, state, torch.float32, None)
            out_bf16 = run(load_bf16(tmp, state), inputs, torch.bfloat16)

    io = dict(inputs)
    io["out_f32"] = out_f32.float()
    io["out_bf16"] = out_bf16
    io = {k: v.contiguous() for k, v in io.items()}
    # Inputs are exact in bf16: stored as bf16 to keep the fixtures small.
    for k in ("latents", "text", "image"):
        if k in io:
            io[k] = io[k].to(torch.bfloat16)
    save_file(io, os.path.join(case_dir, "io.safetensors"), metadata={
        "case": name, "made_by": "tools/reference/make_dit_fixtures.py", "torch": torch.__version__})

    gap = (out_bf16.float() - out_f32).norm() / out_f32.norm()
    print(f"{name}: out {tuple(out_f32.shape)}, rms {out_f32.pow(2).mean().sqrt():.3f}, "
          f"bf16 ref vs f32 ref relative L2 {gap:.2e}")


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    for name, case in CASES.items():
        make_case(name, case)
    total = 0
    for dirpath, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    print(f"total fixture size {total / 1e6:.2f} MB")


if __name__ == "__main__":
    sys.exit(main())
