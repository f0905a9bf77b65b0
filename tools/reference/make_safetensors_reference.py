#!/usr/bin/env python3
"""Valid safetensors files written by the reference implementations (torch + safetensors +
huggingface_hub), read by tests/weights/test_safetensors_reference.cpp.

    tools/reference/.venv/bin/python tools/reference/make_safetensors_reference.py

Outputs (committed, ~40 KB):
    tests/fixtures/safetensors_valid/torch_reference.safetensors
        every dtype reel reads, written by safetensors.torch.save_file, and next to each
        non-f32 tensor "<name>.as_f32" = torch's own conversion to float32 (the expected values):
        e4m3_all / e5m2_all hold all 256 FP8 codes in order (torch.float8_e4m3fn / float8_e5m2).
    tests/fixtures/safetensors_valid/sharded/
        diffusion_pytorch_model-0000k-of-0000n.safetensors + diffusion_pytorch_model.safetensors.index.json,
        written by huggingface_hub.save_torch_state_dict (the layout of the *-Diffusers repositories),
        plus expected.safetensors: the same tensors in one file.
"""
import os
import shutil

import torch
from huggingface_hub import save_torch_state_dict
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "safetensors_valid")


def main():
    g = torch.Generator().manual_seed(1234)
    codes = torch.arange(256, dtype=torch.uint8)
    tensors = {
        "f32": torch.randn(3, 5, generator=g),
        "bf16": torch.randn(4, 2, 3, generator=g).to(torch.bfloat16),
        "f16": (torch.randn(7, generator=g) * 100).to(torch.float16),
        "f16_subnormal": (torch.rand(16, generator=g) * 6e-5).to(torch.float16),
        "scalar": torch.tensor(0.8125),
        "zero_size": torch.randn(0, 4, generator=g),
        "rank5": torch.randn(1, 2, 3, 2, 2, generator=g),
        "e4m3_all": codes.clone().view(torch.float8_e4m3fn),
        "e5m2_all": codes.clone().view(torch.float8_e5m2),
    }
    for name in ["bf16", "f16", "f16_subnormal", "e4m3_all", "e5m2_all"]:
        tensors[name + ".as_f32"] = tensors[name].float()
    os.makedirs(OUT, exist_ok=True)
    save_file(tensors, os.path.join(OUT, "torch_reference.safetensors"), metadata={"format": "pt", "source": "torch"})

    sharded = os.path.join(OUT, "sharded")
    shutil.rmtree(sharded, ignore_errors=True)
    os.makedirs(sharded)
    state = {f"blocks.{i}.weight": torch.randn(16, 16, generator=g) for i in range(4)}
    state.update({f"blocks.{i}.bias": torch.randn(16, generator=g).to(torch.bfloat16) for i in range(4)})
    save_torch_state_dict(state, sharded, filename_pattern="diffusion_pytorch_model{suffix}.safetensors",
                          max_shard_size=2500, metadata={"format": "pt"})
    save_file(state, os.path.join(sharded, "expected.safetensors"))
    print("wrote", sorted(os.listdir(OUT)), sorted(os.listdir(sharded)))


if __name__ == "__main__":
    main()
