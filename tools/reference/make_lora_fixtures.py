#!/usr/bin/env python3
"""Fixtures for LoRA (tests/lora/): tiny random LoRAs in every layout reel reads, for the tiny
Wan 2.1 I2V transformer of make_dit_fixtures.py (tests/fixtures/dit/i2v: 2 layers, D 64, image
context), and diffusers' outputs with them loaded through `WanPipeline.lora_state_dict` (the
same conversion `load_lora_weights` makes) + `load_lora_adapter`, unfused and fused.

Run from the repository root (after make_dit_fixtures.py):
    tools/reference/.venv/bin/python tools/reference/make_lora_fixtures.py

Writes tests/fixtures/lora/:
    same_diffusers.safetensors  rank 4 on every block linear (self/cross q k v o, add_k/v_proj,
                                ffn), PEFT names `transformer.blocks.N.attn1.to_q.lora_A.weight`,
                                no alpha (scale 1)
    same_original.safetensors   the SAME delta, original/ComfyUI names
                                (`diffusion_model.blocks.N.self_attn.q.lora_down.weight`), alpha
                                8 = 2·rank, so lora_up holds B/2
    same_kohya.safetensors      the SAME delta, Kohya/musubi names
                                (`lora_unet_blocks_N_self_attn_q.lora_down.weight`), alpha 8
    second.safetensors          another LoRA, rank 2, original names with `diffusion_model.`
                                prefix: self_attn.q and ffn.0 with alpha 1 (scale 1/2) and
                                `.diff_b` bias deltas; time_projection.1, text_embedding.0 and
                                head.head without alpha (scale 1: diffusers reads no alpha there)
    full_delta.safetensors      lightx2v-style full deltas: `.diff` on two linear weights,
                                `.diff_b` on one bias, `.diff` on norm3 (cross LayerNorm),
                                self_attn.norm_k, blocks.N.modulation and head.modulation
    tiny_t2v_kohya.safetensors  for the shipped models/tiny-wan-t2v (the C API and CLI tests):
                                rank 2, alpha 1, Kohya names, on every block's self-attention
                                q and FFN, plus one Flux module the model has no layer for
    io.safetensors              out_* references (f32), on the inputs of dit/i2v/io.safetensors:
        out_base              no LoRA (= dit/i2v out_f32)
        out_same_1, out_same_05   same_diffusers unfused at strength 1 and 0.5
        out_same_fused_05         same_diffusers fused (fuse_lora, lora_scale 0.5)
        out_original_1, out_kohya_1   diffusers with the other two layouts at strength 1
        out_two                   same_diffusers at 0.5 + second at 0.8 (two adapters)
        out_full_1, out_full_07   full_delta at strength 1 and 0.7: diffusers drops `.diff`
                                  keys, so these are diffusers runs of the model whose weights
                                  were changed by the definition, w + strength·diff

Every value is float32; LoRA factors are random (fixed seeds), scaled so the deltas change the
output by a few percent to tens of percent.
"""
import copy
import os

import torch
from diffusers import WanPipeline, WanTransformer3DModel
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIT = os.path.join(ROOT, "tests", "fixtures", "dit", "i2v")
OUT = os.path.join(ROOT, "tests", "fixtures", "lora")

LAYERS = 2
# (diffusers module, original module, kohya module), per block
BLOCK_LINEARS = [
    ("attn1.to_q", "self_attn.q"), ("attn1.to_k", "self_attn.k"), ("attn1.to_v", "self_attn.v"),
    ("attn1.to_out.0", "self_attn.o"),
    ("attn2.to_q", "cross_attn.q"), ("attn2.to_k", "cross_attn.k"), ("attn2.to_v", "cross_attn.v"),
    ("attn2.to_out.0", "cross_attn.o"),
    ("attn2.add_k_proj", "cross_attn.k_img"), ("attn2.add_v_proj", "cross_attn.v_img"),
    ("ffn.net.0.proj", "ffn.0"), ("ffn.net.2", "ffn.2"),
]


def kohya(original_module):
    return "lora_unet_" + original_module.replace(".", "_")


def load_transformer():
    return WanTransformer3DModel.from_pretrained(os.path.join(DIT, "diffusers"), torch_dtype=torch.float32).eval()


def forward(model, io):
    with torch.no_grad():
        return model(io["latents"], io["timesteps"], io["text"], encoder_hidden_states_image=io["image"],
                     return_dict=False)[0].float()


def factors(gen, out_dim, in_dim, rank, amp):
    a = torch.randn(rank, in_dim, generator=gen) / in_dim ** 0.5
    b = torch.randn(out_dim, rank, generator=gen) * amp / rank ** 0.5
    return a, b


def with_adapters(base, files_and_weights):
    model = copy.deepcopy(base)
    names, weights = [], []
    for i, (path, weight) in enumerate(files_and_weights):
        sd = WanPipeline.lora_state_dict(path)
        model.load_lora_adapter(sd, prefix="transformer", adapter_name=f"a{i}")
        names.append(f"a{i}")
        weights.append(weight)
    model.set_adapters(names, weights=weights)
    return model


def main():
    os.makedirs(OUT, exist_ok=True)
    base_sd = load_file(os.path.join(DIT, "diffusers", "diffusion_pytorch_model.safetensors"))
    io = {k: v.float() for k, v in load_file(os.path.join(DIT, "io.safetensors")).items()}
    base = load_transformer()
    gen = torch.Generator().manual_seed(20261207)

    # The same delta in three layouts.
    rank, alpha = 4, 8.0
    same_d, same_o, same_k = {}, {}, {}
    for i in range(LAYERS):
        for dname, oname in BLOCK_LINEARS:
            w = base_sd[f"blocks.{i}.{dname}.weight"]
            a, b = factors(gen, w.shape[0], w.shape[1], rank, 0.3)
            same_d[f"transformer.blocks.{i}.{dname}.lora_A.weight"] = a
            same_d[f"transformer.blocks.{i}.{dname}.lora_B.weight"] = b
            for sd, name in ((same_o, f"diffusion_model.blocks.{i}.{oname}"), (same_k, kohya(f"blocks.{i}.{oname}"))):
                sd[f"{name}.lora_down.weight"] = a
                sd[f"{name}.lora_up.weight"] = b / (alpha / rank)
                sd[f"{name}.alpha"] = torch.tensor(alpha)
    paths = {n: os.path.join(OUT, f"{n}.safetensors") for n in ("same_diffusers", "same_original", "same_kohya",
                                                                 "second", "full_delta")}
    save_file(same_d, paths["same_diffusers"])
    save_file(same_o, paths["same_original"])
    save_file(same_k, paths["same_kohya"])

    # A second, different LoRA: rank 2, alpha 1, with bias deltas and top-level linears.
    second = {}
    r2 = 2
    def add_low_rank(sd, name, w, amp, alpha=None):
        a, b = factors(gen, w.shape[0], w.shape[1], r2, amp)
        sd[f"diffusion_model.{name}.lora_down.weight"] = a
        sd[f"diffusion_model.{name}.lora_up.weight"] = b
        if alpha is not None:
            sd[f"diffusion_model.{name}.alpha"] = torch.tensor(alpha)
    for i in range(LAYERS):
        for dname, oname in (("attn1.to_q", "self_attn.q"), ("ffn.net.0.proj", "ffn.0")):
            add_low_rank(second, f"blocks.{i}.{oname}", base_sd[f"blocks.{i}.{dname}.weight"], 0.4, alpha=1.0)
            bias = base_sd[f"blocks.{i}.{dname}.bias"]
            second[f"diffusion_model.blocks.{i}.{oname}.diff_b"] = torch.randn(bias.shape, generator=gen) * 0.05
    add_low_rank(second, "time_projection.1", base_sd["condition_embedder.time_proj.weight"], 0.4)
    add_low_rank(second, "text_embedding.0", base_sd["condition_embedder.text_embedder.linear_1.weight"], 0.4)
    add_low_rank(second, "head.head", base_sd["proj_out.weight"], 0.4)
    save_file(second, paths["second"])

    # Full deltas (lightx2v style), and the model they define.
    full = {}
    merged_names = {
        "blocks.0.self_attn.q.diff": "blocks.0.attn1.to_q.weight",
        "blocks.1.ffn.2.diff": "blocks.1.ffn.net.2.weight",
        "blocks.0.ffn.2.diff_b": "blocks.0.ffn.net.2.bias",
        "blocks.1.norm3.diff": "blocks.1.norm2.weight",
        "blocks.1.self_attn.norm_k.diff": "blocks.1.attn1.norm_k.weight",
        "blocks.0.modulation.diff": "blocks.0.scale_shift_table",
        "head.modulation.diff": "scale_shift_table",
    }
    for key, target in merged_names.items():
        full[f"diffusion_model.{key}"] = torch.randn(base_sd[target].shape, generator=gen) * 0.05
    save_file(full, paths["full_delta"])

    # For the shipped tiny T2V model (D 64, ffn 128, 2 layers): what the C API and CLI tests load.
    tiny = {}
    for i in range(LAYERS):
        for name, out_dim in (("self_attn_q", 64), ("ffn_0", 128)):
            a, b = factors(gen, out_dim, 64, 2, 0.5)
            tiny[f"lora_unet_blocks_{i}_{name}.lora_down.weight"] = a
            tiny[f"lora_unet_blocks_{i}_{name}.lora_up.weight"] = b
            tiny[f"lora_unet_blocks_{i}_{name}.alpha"] = torch.tensor(1.0)
    tiny["lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight"] = torch.randn(2, 64, generator=gen)
    tiny["lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight"] = torch.randn(192, 2, generator=gen)
    save_file(tiny, os.path.join(OUT, "tiny_t2v_kohya.safetensors"))

    out = {"out_base": forward(base, io)}
    out["out_same_1"] = forward(with_adapters(base, [(paths["same_diffusers"], 1.0)]), io)
    out["out_same_05"] = forward(with_adapters(base, [(paths["same_diffusers"], 0.5)]), io)
    fused = with_adapters(base, [(paths["same_diffusers"], 1.0)])
    fused.fuse_lora(lora_scale=0.5)
    fused.unload_lora()  # the merged weights stay; the adapters are gone
    out["out_same_fused_05"] = forward(fused, io)
    out["out_original_1"] = forward(with_adapters(base, [(paths["same_original"], 1.0)]), io)
    out["out_kohya_1"] = forward(with_adapters(base, [(paths["same_kohya"], 1.0)]), io)
    out["out_two"] = forward(with_adapters(base, [(paths["same_diffusers"], 0.5), (paths["second"], 0.8)]), io)
    for strength, name in ((1.0, "out_full_1"), (0.7, "out_full_07")):
        sd = {k: v.float().clone() for k, v in base_sd.items()}
        for key, target in merged_names.items():
            sd[target] += strength * full[f"diffusion_model.{key}"].view(sd[target].shape)
        model = load_transformer()
        model.load_state_dict(sd)
        out[name] = forward(model, io)
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(OUT, "io.safetensors"))
    for k, v in out.items():
        rel = ((v - out["out_base"]).norm() / out["out_base"].norm()).item()
        print(f"{k:20s} relative change vs base {rel:.3f}")


if __name__ == "__main__":
    main()
