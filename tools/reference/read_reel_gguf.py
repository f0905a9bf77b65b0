#!/usr/bin/env python3
"""gguf-py (llama.cpp's own reader) on a GGUF file reel wrote: the round-trip reference for
tests/weights/test_gguf.cpp (ReelWrittenGgufIsReadByGgufPy).

    build/examples/reel-cli/reel-cli convert --transformer tests/fixtures/dit/i2v/diffusers \\
        --weight-type q4_0 -o tests/fixtures/gguf/reel_i2v_q4_0.gguf
    tools/reference/.venv/bin/python tools/reference/read_reel_gguf.py

Reads tests/fixtures/gguf/reel_i2v_q4_0.gguf with gguf.GGUFReader, checks what ComfyUI-GGUF
relies on (general.architecture "wan", the original Wan names without a prefix, the 5-D patch
embedding's comfy.gguf.orig_shape), dequantises every tensor with gguf.quants.dequantize and
writes tests/fixtures/gguf/reel_i2v_q4_0_ref.safetensors ("<name>" = f32 values in the PyTorch
shape). It also checks those values against the source weights: each Q4_0 block within one
quantisation step of the unquantised values.
"""
import os

import gguf
import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GGUF = os.path.join(ROOT, "tests", "fixtures", "gguf", "reel_i2v_q4_0.gguf")
SOURCE = os.path.join(ROOT, "tests", "fixtures", "dit", "i2v", "original.safetensors")


def main():
    reader = gguf.GGUFReader(GGUF)
    fields = {f.name: f for f in reader.fields.values()}
    arch = fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "wan", "general.architecture is not wan"
    orig = {}
    for name, f in fields.items():
        if name.startswith("comfy.gguf.orig_shape."):
            orig[name[len("comfy.gguf.orig_shape."):]] = [int(f.parts[i][0]) for i in f.data]
    source = {k.removeprefix("model.diffusion_model."): v.astype(np.float32) for k, v in load_file(SOURCE).items()}
    ref = {}
    kinds = {}
    for t in reader.tensors:
        values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        shape = orig.get(t.name, list(reversed([int(d) for d in t.shape])))
        values = np.ascontiguousarray(values.reshape(shape))
        assert t.name in source, f"{t.name}: not a name of the original Wan layout"
        src = source[t.name]
        assert list(src.shape) == shape, f"{t.name}: shape {shape}, source {list(src.shape)}"
        if t.tensor_type == gguf.GGMLQuantizationType.Q4_0:
            blocks = src.reshape(-1, 32)
            step = np.abs(blocks).max(axis=1, keepdims=True) / 8
            err = np.abs(values.reshape(-1, 32) - blocks)
            assert (err <= step * 1.01 + 1e-6).all(), f"{t.name}: more than one step from the source"
        else:
            assert np.array_equal(values, src), f"{t.name}: F32 tensor differs from the source"
        kinds[t.tensor_type.name] = kinds.get(t.tensor_type.name, 0) + 1
        ref[t.name] = values
    assert len(ref) == len(source), f"{len(ref)} tensors, the source has {len(source)}"
    save_file(ref, os.path.join(ROOT, "tests", "fixtures", "gguf", "reel_i2v_q4_0_ref.safetensors"))
    print(f"gguf-py read {len(ref)} tensors ({kinds}); orig_shape for {sorted(orig)}")


if __name__ == "__main__":
    main()
