#!/usr/bin/env python3
"""GGUF fixtures written by the reference implementation (gguf-py, llama.cpp's own Python
package), read by tests/weights/test_gguf.cpp.

    tools/reference/.venv/bin/python tools/reference/make_gguf_fixtures.py

Outputs (committed, ~150 KB):
    tests/fixtures/gguf/types.gguf
        one tensor per ggml type reel reads (F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K
        Q5_K Q6_K; 1-D to 4-D), custom alignment 64, metadata of every value type, and a tensor
        stored flat with its real shape in comfy.gguf.orig_shape.<name> (as ComfyUI-GGUF does).
        The legacy types are quantised from random data by gguf.quants.quantize; the K types
        (gguf-py has no quantiser for them) are random bytes with sane f16 scales, so every bit
        pattern of the packed values is exercised.
    tests/fixtures/gguf/types_ref.safetensors
        "<name>" = gguf.quants.dequantize of each tensor (f32, in its reel/PyTorch shape).
    tests/fixtures/gguf/wan_i2v.gguf
        tests/fixtures/dit/i2v/original.safetensors (the tiny Wan 2.1 I2V transformer, ComfyUI
        names; the "model.diffusion_model." prefix dropped as city96's GGUFs do) quantised as
        ComfyUI-GGUF does: Q8_0 for 2-D weights whose rows are a multiple of 32, F32 for the
        rest; patch_embedding.weight (5-D) stored 2-D with its comfy.gguf.orig_shape.
"""
import os

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q
from safetensors.numpy import load_file, save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf")

# ggml type -> (shape in PyTorch order; ne[0] = shape[-1] is a multiple of the block size)
TYPES = {
    "f32": (Q.F32, (3, 5)),
    "f16": (Q.F16, (2, 3, 4, 8)),
    "bf16": (Q.BF16, (4, 6)),
    "q8_0": (Q.Q8_0, (3, 64)),
    "q4_0": (Q.Q4_0, (2, 2, 64)),
    "q4_1": (Q.Q4_1, (96,)),
    "q5_0": (Q.Q5_0, (4, 32)),
    "q5_1": (Q.Q5_1, (2, 64)),
    "q2_k": (Q.Q2_K, (2, 256)),
    "q3_k": (Q.Q3_K, (2, 256)),
    "q4_k": (Q.Q4_K, (3, 256)),
    "q5_k": (Q.Q5_K, (2, 1, 256)),
    "q6_k": (Q.Q6_K, (2, 256)),
}

# Byte offsets of the f16 scale(s) inside each K block (block_q*_K in ggml-common.h).
K_SCALE_OFFSETS = {Q.Q2_K: (80, 82), Q.Q3_K: (108,), Q.Q4_K: (0, 2), Q.Q5_K: (0, 2), Q.Q6_K: (208,)}


def random_k_blocks(rng, qtype, shape):
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = int(np.prod(shape)) // block_elems
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    for off in K_SCALE_OFFSETS[qtype]:
        scales = (rng.random(n_blocks, dtype=np.float32) * 0.02 + 0.001).astype(np.float16)
        raw[:, off:off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    row_bytes = shape[-1] // block_elems * block_bytes
    return raw.reshape(*shape[:-1], row_bytes)


def make_types(rng):
    writer = gguf.GGUFWriter(os.path.join(OUT, "types.gguf"), arch="reel-test")
    writer.add_custom_alignment(64)
    writer.add_string("test.string", "héllo GGUF")
    writer.add_uint8("test.u8", 200)
    writer.add_int8("test.i8", -7)
    writer.add_uint16("test.u16", 65000)
    writer.add_int16("test.i16", -300)
    writer.add_uint32("test.u32", 4000000000)
    writer.add_int32("test.i32", -123456)
    writer.add_float32("test.f32", 0.5)
    writer.add_bool("test.bool", True)
    writer.add_uint64("test.u64", 2**40 + 3)
    writer.add_int64("test.i64", -(2**40))
    writer.add_float64("test.f64", 0.25)
    writer.add_array("test.ints", [1, 2, 3])
    writer.add_array("test.strings", ["a", "bc", ""])
    writer.add_array("test.long", list(range(100)))

    ref = {}
    for name, (qtype, shape) in TYPES.items():
        if qtype in K_SCALE_OFFSETS:
            data = random_k_blocks(rng, qtype, shape)
        else:
            x = rng.standard_normal(shape).astype(np.float32)
            data = x if qtype == Q.F32 else gguf.quants.quantize(x, qtype)
        writer.add_tensor(name, data, raw_dtype=qtype)
        ref[name] = np.ascontiguousarray(gguf.quants.dequantize(data, qtype).astype(np.float32).reshape(shape))
        assert ref[name].shape == shape, (name, ref[name].shape)

    # Stored flat (as ComfyUI-GGUF stores 5-D tensors), the real shape in metadata.
    real = (2, 3, 1, 2, 2)
    x = rng.standard_normal(real).astype(np.float32)
    writer.add_tensor("reshaped", x.reshape(-1))
    writer.add_array("comfy.gguf.orig_shape.reshaped", list(real))
    ref["reshaped"] = x

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    save_file(ref, os.path.join(OUT, "types_ref.safetensors"))


def make_wan():
    src = load_file(os.path.join(ROOT, "tests", "fixtures", "dit", "i2v", "original.safetensors"))
    writer = gguf.GGUFWriter(os.path.join(OUT, "wan_i2v.gguf"), arch="wan")
    for key in sorted(src):
        name = key.removeprefix("model.diffusion_model.")
        w = src[key].astype(np.float32)
        if w.ndim > 4:  # GGUF holds at most 4 dims: ComfyUI-GGUF flattens and records the shape
            writer.add_array(f"comfy.gguf.orig_shape.{name}", list(w.shape))
            w = w.reshape(w.shape[0], -1)
        if w.ndim == 2 and w.shape[-1] % 32 == 0:
            writer.add_tensor(name, gguf.quants.quantize(w, Q.Q8_0), raw_dtype=Q.Q8_0)
        else:
            writer.add_tensor(name, w)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261122)
    make_types(rng)
    make_wan()
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)), "bytes")


if __name__ == "__main__":
    main()
