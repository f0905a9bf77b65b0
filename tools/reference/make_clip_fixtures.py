#!/usr/bin/env python3
"""Fixtures for the CLIP vision encoder that Wan 2.1 I2V conditions on (tests/clip/).

Run from the repository root:
    tools/reference/.venv/bin/python tools/reference/make_clip_fixtures.py

What diffusers' WanImageToVideoPipeline.encode_image does, and what these fixtures pin down:
    pixels = CLIPImageProcessor(images=image)      # image_processor/preprocessor_config.json
    hidden = CLIPVisionModel(pixels, output_hidden_states=True).hidden_states[-2]
The processor is transformers' PIL backend (CLIPImageProcessorPil; transformers 5 uses it when
torchvision is absent, transformers 4 always did): resize the shortest side with PIL bicubic
(uint8 in, uint8 out), center crop, ×rescale_factor (float64, then float32), (x − mean) / std
in float32.

Writes tests/fixtures/clip/, all from fixed seeds:
  * image_encoder/{config.json, model.safetensors}: a tiny random CLIPVisionModel (hidden 32,
    3 layers, 4 heads × 8, intermediate 64, image 32, patch 8 → 17 tokens, hidden_act "gelu"
    as ViT-H/14), saved by transformers 5 (names without the `vision_model.` prefix). Weight
    values are rounded to bf16, so a bf16 load loses nothing.
  * image_processor/preprocessor_config.json: CLIP's mean/std and bicubic, shortest edge 32,
    crop 32 (the tiny model's image size).
  * image_processor_224/preprocessor_config.json: CLIPImageProcessor's defaults, which are what
    the Wan 2.1 I2V repositories ship (shortest edge 224, crop 224, bicubic, OpenAI CLIP mean/std).
  * wide.png (45×29: upscaled), large.png (97×61: downscaled, antialiased), tall.png (40×100),
    tiny.png (5×3).
  * reference.safetensors
        <image>_resized [h, w, 3]    PIL bicubic resize to the shortest edge 32 (f16 holding uint8)
        <image>_pixels [3, 32, 32]   the processor's pixel_values
        large_pixels_224_strided [3, 32, 32]   pixel_values[:, ::7, ::7] with the 224 config
        wide_pixels_lanczos [3, 32, 32]  the same processor with resample 1 (LANCZOS)
        tiny_pixels_padded [3, 6, 4]     tiny.png (5×3), do_resize false, crop 6 high × 4 wide:
                                         zero-padded rows, cropped columns
        <image>_hidden [1, 17, 32]   hidden_states[-2], model and pixels in f32
        batch_hidden [2, 17, 32]     wide and tall in one batch
        wide_hidden_bf16 [1, 17, 32] the model in bf16 (transformers casts the pixels to bf16)
        wide_hidden_quick_gelu [1, 17, 32]  the same weights with hidden_act "quick_gelu"
        wide_last_hidden [1, 17, 32] last_hidden_state (all 3 layers; reel does not compute it)

The pipeline fixture with a CLIP image encoder inside a Wan 2.1 I2V folder is made by
make_tiny_model.py (make_i2v_clip_fixtures), with tiny_clip_vision() and clip_processor() below.
"""
import json
import os

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "clip")


def tiny_clip_vision(hidden, layers, heads, intermediate, image_size, patch, seed, act="gelu",
                     with_projection=False):
    """A random CLIP vision tower whose values are all exactly representable in bf16."""
    config = CLIPVisionConfig(hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                              num_attention_heads=heads, image_size=image_size, patch_size=patch,
                              hidden_act=act, layer_norm_eps=1e-5, projection_dim=hidden)
    torch.manual_seed(seed)
    model = (CLIPVisionModelWithProjection if with_projection else CLIPVisionModel)(config).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or "layrnorm" in name or "layernorm" in name:
                v = (1.0 + 0.2 * torch.randn(p.shape, generator=g)) if name.endswith("weight") \
                    else 0.1 * torch.randn(p.shape, generator=g)
            elif name.endswith("bias"):
                v = 0.1 * torch.randn(p.shape, generator=g)
            elif "class_embedding" in name:
                v = torch.randn(p.shape, generator=g)
            elif "position_embedding" in name:
                v = 0.5 * torch.randn(p.shape, generator=g)
            else:  # linear and patch-embedding weights: N(0, 1 / fan_in)
                v = torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5
            p.copy_(v.to(torch.bfloat16).float())
    return model


def clip_processor(size):
    """CLIPImageProcessor with CLIP's defaults except the sizes (PIL backend)."""
    return CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def test_image(width, height, seed):
    """Smooth colour waves plus pixel noise: every resize tap matters."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        a, b, p = rng.uniform(-1, 1, 3)
        img[..., c] = 0.5 + 0.35 * np.sin(a * x / 3 + b * y / 2.5 + p * 3)
    img += rng.uniform(-0.12, 0.12, img.shape)
    return Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8), "RGB")


def hidden_penultimate(model, pixels):
    with torch.no_grad():
        out = model(pixel_values=pixels, output_hidden_states=True)
        # hidden_states = (pre_layrnorm(embeddings), layer 1, ..., layer N): [-2] is layer N−1.
        h = model.pre_layrnorm(model.embeddings(pixels.to(model.dtype))) if hasattr(model, "pre_layrnorm") else None
        if h is not None:
            for layer in model.encoder.layers[:-1]:
                h = layer(h, None)
            assert torch.equal(h, out.hidden_states[-2]), "hidden_states[-2] is not the output of layer N-1"
    return out.hidden_states[-2].float().contiguous(), out.last_hidden_state.float().contiguous()


def save_processor(processor, folder):
    os.makedirs(folder, exist_ok=True)
    processor.save_pretrained(folder)


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    model = tiny_clip_vision(hidden=32, layers=3, heads=4, intermediate=64, image_size=32, patch=8, seed=7)
    model.save_pretrained(os.path.join(OUT, "image_encoder"), safe_serialization=True)
    proc = clip_processor(32)
    save_processor(proc, os.path.join(OUT, "image_processor"))
    proc224 = CLIPImageProcessorPil()
    save_processor(proc224, os.path.join(OUT, "image_processor_224"))

    images = {"wide": test_image(45, 29, 1), "large": test_image(97, 61, 2), "tall": test_image(40, 100, 3)}
    ref = {}
    for name, im in images.items():
        im.save(os.path.join(OUT, f"{name}.png"))
        w, h = im.size
        short, long = min(w, h), max(w, h)
        new_long = int(32 * long / short)
        size = (new_long, 32) if w >= h else (32, new_long)
        ref[f"{name}_resized"] = torch.from_numpy(np.array(im.resize(size, Image.BICUBIC))).half().contiguous()
        pixels = proc(images=im, return_tensors="pt")["pixel_values"]
        ref[f"{name}_pixels"] = pixels[0].contiguous()
        ref[f"{name}_hidden"], last = hidden_penultimate(model, pixels)
        if name == "wide":
            ref["wide_last_hidden"] = last
    # resample 1 (LANCZOS); no resize and a crop taller than the image (zero padding) but
    # narrower (cropping), on a 5x3 image.
    lanczos = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, resample=1)
    ref["wide_pixels_lanczos"] = lanczos(images=images["wide"], return_tensors="pt")["pixel_values"][0].contiguous()
    tiny = test_image(5, 3, 4)
    tiny.save(os.path.join(OUT, "tiny.png"))
    pad = CLIPImageProcessorPil(do_resize=False, crop_size={"height": 6, "width": 4})
    ref["tiny_pixels_padded"] = pad(images=tiny, return_tensors="pt")["pixel_values"][0].contiguous()
    assert ref["tiny_pixels_padded"].shape == (3, 6, 4)
    p224 = proc224(images=images["large"], return_tensors="pt")["pixel_values"][0]
    assert p224.shape == (3, 224, 224)
    ref["large_pixels_224_strided"] = p224[:, ::7, ::7].contiguous()

    batch = torch.stack([ref["wide_pixels"], ref["tall_pixels"]])
    ref["batch_hidden"], _ = hidden_penultimate(model, batch)
    err = (ref["batch_hidden"][1] - ref["tall_hidden"][0]).abs().max().item()
    assert err < 1e-5, err

    wide = ref["wide_pixels"][None]
    bf16 = tiny_clip_vision(hidden=32, layers=3, heads=4, intermediate=64, image_size=32, patch=8, seed=7)
    bf16.load_state_dict(model.state_dict())
    bf16 = bf16.to(torch.bfloat16)
    ref["wide_hidden_bf16"], _ = hidden_penultimate(bf16, wide)
    spread = ((ref["wide_hidden_bf16"] - ref["wide_hidden"]).norm() / ref["wide_hidden"].norm()).item()

    quick = CLIPVisionModel(CLIPVisionConfig(**{**model.config.to_dict(), "hidden_act": "quick_gelu"})).eval()
    quick.load_state_dict(model.state_dict())
    ref["wide_hidden_quick_gelu"], _ = hidden_penultimate(quick, wide)
    gap = ((ref["wide_hidden_quick_gelu"] - ref["wide_hidden"]).norm() / ref["wide_hidden"].norm()).item()

    save_file(ref, os.path.join(OUT, "reference.safetensors"))
    h = ref["wide_hidden"]
    print(f"hidden_states[-2]: mean {h.mean():.3f} std {h.std():.3f}; bf16 vs f32 relative L2 {spread:.3g}; "
          f"quick_gelu vs gelu {gap:.3g}")
    assert h.std() > 0.3 and gap > 1e-3
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(OUT) for n in ns)
    print(f"{OUT}: {total / 1024:.0f} KiB")
    assert total < 300 * 1024


if __name__ == "__main__":
    main()
