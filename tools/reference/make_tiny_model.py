#!/usr/bin/env python3
"""The tiny Wan model shipped in the repository and the pipeline fixtures (tests/pipeline/).

Run from the repository root:
    tools/reference/.venv/bin/python tools/reference/make_tiny_model.py

What it builds, all from fixed seeds, everything in f32:
  * models/tiny-wan-t2v/: a complete Wan 2.1-style text-to-video model folder in the diffusers
    layout, written by WanPipeline.save_pretrained: a tiny WanTransformer3DModel (2 layers,
    2 heads x head_dim 32, 16 -> 16 channels, text_dim 32), a tiny AutoencoderKLWan (Wan 2.1
    layout, base_dim 4, z_dim 16, the real Wan 2.1 latent normalisation constants), a tiny
    UMT5EncoderModel (d_model 32, 2 layers, 4 heads x 8), the tiny SentencePiece tokenizer of
    tests/fixtures/text/tokenizer (1000 pieces + 8 sentinels), and the scheduler config Wan
    ships (UniPC, flow_prediction, flow sigmas, bh2, order 2, flow_shift 3.0).
    The demo (scripts/demo.sh) and the C API tests run it.
  * tests/fixtures/pipeline/t2v.safetensors: diffusers WanPipeline outputs (output_type "np",
    f32) for fixed initial noise (passed as `latents=`), 4 UniPC steps:
        a: "a red fox runs through the snow", no negative prompt, 64x48, 9 frames, guidance 5
        b: a Chinese/English prompt with a negative prompt, 48x32, 5 frames, guidance 4.5
        c: guidance 1 (no CFG pass), 32x32, 5 frames
        b_bf16: case b with the transformer and text encoder loaded with torch_dtype=bfloat16
                (VAE in f32)
    tensors <case>_noise [16, F, h, w], <case>_latents (final latents before the VAE),
    <case>_frames [T, H, W, 3] in [0, 1], <case>_embeds / <case>_negative_embeds [n, 32] (the
    umT5 output the pipeline used, without its zero rows: the pipeline ran with them padded to
    512 rows), and t2v.json with the prompts and sizes.
  * tests/fixtures/pipeline/tiny-wan-ti2v/: a tiny Wan 2.2 TI2V-style folder (transformer
    48 -> 48 channels, 2 layers, 2 heads x 16, text_dim 16; AutoencoderKLWan 2.2 layout: is_residual,
    patch 2, z_dim 48, base_dim 4, decoder_base_dim 4, made-up latents_mean/latents_std in its
    config.json; UniPC flow_shift 5.0; model_index.json
    with expand_timesteps true) with no text encoder or tokenizer: prompts come as embeddings.
    Weights rounded to bf16 and stored in bf16 (small); the reference runs them in f32.
    ti2v.safetensors: WanImageToVideoPipeline outputs for a fixed first frame (first_frame.png,
    64x32) and noise, 9 frames, 4 steps, guidance 5: noise, latents, frames, embeds,
    negative_embeds (9 and 3 rows; the pipeline got them zero-padded to 512 rows).
  * tests/fixtures/pipeline/tiny-wan-i2v/transformer/: a tiny Wan 2.1 I2V transformer (36 -> 16
    channels, image_dim 8, added_kv_proj_dim 32) that uses the t2v model's VAE; i2v.safetensors:
    WanImageToVideoPipeline outputs with caller-given CLIP features (`image_embeds`, [4, 8]),
    the first frame i2v_first_frame.png (32x32), 5 frames, 3 steps, guidance 3.
  * tests/fixtures/pipeline/tiny-wan-i2v/image_encoder/ and image_processor/: a tiny CLIP image
    encoder as the Wan 2.1 I2V repositories ship it (CLIPVisionModelWithProjection: names under
    `vision_model.` plus visual_projection; hidden 8 = the transformer's image_dim, 3 layers,
    2 heads, image 24, patch 8 -> 10 tokens, hidden_act "gelu") and its CLIPImageProcessor
    (shortest edge 24, crop 24, bicubic). i2v_clip.safetensors: WanImageToVideoPipeline with
    that encoder running inside diffusers (encode_image: hidden_states[-2]) on
    i2v_clip_first_frame.png (48x40, stretched to 32x32 for the VAE, 48x40 -> 28x24 -> 24x24
    for CLIP), otherwise as i2v: noise, latents, frames, image_embeds (what encode_image gave).
    `--only i2v_clip` makes just these (from the saved t2v model and I2V transformer) and
    leaves every other fixture as it is.

Random weights give non-degenerate frames: the script prints the fraction of decoded values
that the VAE clamps to [-1, 1] and the spread of the frames.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image
from diffusers import (AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanPipeline,
                       WanTransformer3DModel)
from safetensors.torch import save_file
from transformers import CLIPVisionModelWithProjection, T5Tokenizer, UMT5Config, UMT5EncoderModel
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "tiny-wan-t2v")
FIX = os.path.join(ROOT, "tests", "fixtures", "pipeline")
TOKENIZER = os.path.join(ROOT, "tests", "fixtures", "text", "tokenizer")
EXTRA_IDS = 8
STEPS = 4

WAN21_SCHEDULER = dict(num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True,
                       flow_shift=3.0, solver_order=2, solver_type="bh2", predict_x0=True,
                       lower_order_final=True, final_sigmas_type="zero")


def randomize_transformer(model, seed):
    """Random values for every parameter: linear weights ~ N(0, 1/fan_in), biases 0.1·N, norm
    weights near 1, modulation tables 0.3·N. No value is left at its (often 0/1) init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                v = 0.1 * torch.randn(p.shape, generator=g)
            elif p.ndim == 1 and "norm" in name:
                v = 1.0 + 0.2 * torch.randn(p.shape, generator=g)
            elif "scale_shift_table" in name:
                v = 0.3 * torch.randn(p.shape, generator=g)
            else:
                v = torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5
            p.copy_(v)
    return model.eval()


def new_vae(seed, **config):
    """An AutoencoderKLWan whose convolutions keep PyTorch's default init, drawn right after
    seeding the global generator (so it does not depend on what ran before)."""
    torch.manual_seed(seed)
    return AutoencoderKLWan(**config)


def randomize_vae(vae, seed, conv_out_scale):
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if name.endswith("gamma"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
        vae.decoder.conv_out.weight.mul_(conv_out_scale)
    return vae.eval()


def make_text_encoder(vocab):
    config = UMT5Config(vocab_size=vocab, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                        relative_attention_num_buckets=32, relative_attention_max_distance=128,
                        feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6,
                        is_encoder_decoder=False, use_cache=False, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(4321)
    model = UMT5EncoderModel(config).eval()
    g = torch.Generator().manual_seed(77)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                v = 1.0 + 0.2 * torch.randn(p.shape, generator=g)
            elif "relative_attention_bias" in name:
                v = torch.randn(p.shape, generator=g)
            elif name.endswith("shared.weight") or "embed_tokens" in name:
                v = torch.randn(p.shape, generator=g)
            else:
                v = torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5
            p.copy_(v)
    return model


def noise(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


def describe(name, frames, latents, vae, pipe_latents_to_vae):
    """Prints how much of the decoded video the VAE clamps, and the frames' spread."""
    with torch.no_grad():
        raw = vae.decode(pipe_latents_to_vae(latents), return_dict=False)[0]
    clamped = (raw.abs() >= 1.0).float().mean().item()
    print(f"  {name}: frames {tuple(frames.shape)}, mean {frames.mean():.3f}, std {frames.std():.3f}, "
          f"clamped {100 * clamped:.2f}% of the decoded values")
    assert clamped < 0.05 and frames.std() > 0.05, "degenerate output"


def denormalizer(vae):
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    return lambda z: z / inv_std + mean


def run_t2v(pipe, case, seed):
    h, w, frames = case["height"], case["width"], case["frames"]
    lat = noise((1, 16, (frames - 1) // 4 + 1, h // 8, w // 8), seed)
    common = dict(prompt=case["prompt"], negative_prompt=case.get("negative_prompt"), height=h, width=w,
                  num_frames=frames, num_inference_steps=STEPS, guidance_scale=case["guidance"])
    with torch.no_grad():
        embeds, neg = pipe.encode_prompt(case["prompt"], case.get("negative_prompt"),
                                         do_classifier_free_guidance=case["guidance"] > 1.0, max_sequence_length=512)
        out = pipe(**common, latents=lat.clone(), output_type="np").frames[0]
        latents = pipe(**common, latents=lat.clone(), output_type="latent").frames
    return lat[0], latents[0], torch.from_numpy(out), embeds[0], None if neg is None else neg[0]


def build_t2v():
    tokenizer = T5Tokenizer.from_pretrained(TOKENIZER, extra_ids=EXTRA_IDS)
    text_encoder = make_text_encoder(len(tokenizer))
    transformer = randomize_transformer(WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=32, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=128, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024), seed=11)
    vae = randomize_vae(new_vae(1200, base_dim=4, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                                temperal_downsample=[False, True, True]), seed=12, conv_out_scale=1.0)
    scheduler = UniPCMultistepScheduler(**WAN21_SCHEDULER)
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler,
                       transformer=transformer)
    if os.path.isdir(MODEL):
        shutil.rmtree(MODEL)
    pipe.save_pretrained(MODEL, safe_serialization=True)
    # transformers 5 saves only tokenizer.json; the Wan repositories ship SentencePiece's
    # spiece.model (which reel reads), so the folder gets the original files instead.
    shutil.rmtree(os.path.join(MODEL, "tokenizer"))
    shutil.copytree(TOKENIZER, os.path.join(MODEL, "tokenizer"))
    return WanPipeline.from_pretrained(MODEL, torch_dtype=torch.float32)


T2V_CASES = {
    "a": dict(prompt="a red fox runs through the snow", height=48, width=64, frames=9, guidance=5.0),
    "b": dict(prompt="一只猫在草地上奔跑, golden hour, cinematic", negative_prompt="static, blurred details, worst quality",
              height=32, width=48, frames=5, guidance=4.5),
    "c": dict(prompt="a slow camera pans over the ocean at sunset", height=32, width=32, frames=5, guidance=1.0),
}


def trim(embeds):
    """The rows before the zero padding (the tests pad back to 512 rows)."""
    nonzero = (embeds != 0).any(dim=1).nonzero()
    rows = int(nonzero.max()) + 1 if len(nonzero) else 0
    assert torch.all(embeds[rows:] == 0)
    return embeds[:rows].contiguous()


def make_t2v_fixtures(pipe):
    tensors, meta = {}, {"steps": STEPS, "cases": {}}
    for i, (name, case) in enumerate(T2V_CASES.items()):
        lat, latents, frames, embeds, neg = run_t2v(pipe, case, seed=100 + i)
        describe(f"t2v {name}", frames, latents, pipe.vae, denormalizer(pipe.vae))
        tensors[f"{name}_noise"] = lat.contiguous()
        tensors[f"{name}_latents"] = latents.contiguous()
        tensors[f"{name}_frames"] = frames.contiguous()
        tensors[f"{name}_embeds"] = trim(embeds)
        if neg is not None:
            tensors[f"{name}_negative_embeds"] = trim(neg)
        meta["cases"][name] = {k: v for k, v in case.items()}
    # Case b again with the transformer and the text encoder in bf16 (the VAE in f32, as the
    # diffusers docs recommend): what reel's bf16 precision is compared with.
    bf16 = WanPipeline.from_pretrained(MODEL, torch_dtype=torch.bfloat16)
    bf16.vae.to(torch.float32)
    _, latents, frames, _, _ = run_t2v(bf16, T2V_CASES["b"], seed=101)
    tensors["b_latents_bf16"] = latents.float().contiguous()
    tensors["b_frames_bf16"] = frames.contiguous()
    err = (frames - tensors["b_frames"]).norm() / tensors["b_frames"].norm()
    print(f"  t2v b in bf16: frames relative L2 to f32 {err:.3g}")
    save_file(tensors, os.path.join(FIX, "t2v.safetensors"))
    with open(os.path.join(FIX, "t2v.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=1)
        f.write("\n")


def first_frame(width, height, seed):
    """A smooth random RGB image (gradients plus blobs), saved as PNG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        a, b, p = rng.uniform(-1, 1, 3)
        img[..., c] = 0.5 + 0.3 * np.sin(a * x / 5 + b * y / 4 + p * 3)
    img += rng.uniform(-0.08, 0.08, img.shape)
    return Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8), "RGB")


def text_embeds(tokens, dim, seed, valid):
    e = noise((1, tokens, dim), seed)
    e[:, valid:] = 0  # zero-padded rows, as the umT5 output is
    return e


# Latent normalisation constants of the tiny Wan 2.2 VAE: made up (not Wan 2.2's), so a loader
# that ignores vae/config.json and uses the built-in Wan 2.2 values fails the test.
_g = torch.Generator().manual_seed(23)
LAT_MEAN_48 = [round(v, 4) for v in (0.2 * torch.randn(48, generator=_g)).tolist()]
LAT_STD_48 = [round(v, 4) for v in (0.5 + torch.rand(48, generator=_g)).tolist()]


def make_ti2v_fixtures():
    folder = os.path.join(FIX, "tiny-wan-ti2v")
    transformer = randomize_transformer(WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=48, out_channels=48,
        text_dim=16, freq_dim=256, ffn_dim=64, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024), seed=21)
    vae = randomize_vae(new_vae(2200, base_dim=4, decoder_base_dim=4, z_dim=48, dim_mult=[1, 2, 4, 4],
                                num_res_blocks=2, temperal_downsample=[False, True, True], is_residual=True,
                                in_channels=12, out_channels=12, patch_size=2, scale_factor_spatial=16,
                                scale_factor_temporal=4, latents_mean=LAT_MEAN_48, latents_std=LAT_STD_48),
                        seed=22, conv_out_scale=1.0)
    scheduler = UniPCMultistepScheduler(**{**WAN21_SCHEDULER, "flow_shift": 5.0})
    pipe = WanImageToVideoPipeline(tokenizer=None, text_encoder=None, vae=vae, scheduler=scheduler,
                                   transformer=transformer, image_encoder=None, image_processor=None,
                                   expand_timesteps=True)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    # Stored in bf16 to keep the fixture small; the values are rounded to bf16 first, so the f32
    # model the reference runs (and reel loads) holds exactly the stored numbers.
    with torch.no_grad():
        for p in list(transformer.parameters()) + list(vae.parameters()):
            p.copy_(p.to(torch.bfloat16).float())
    pipe.to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    pipe = WanImageToVideoPipeline.from_pretrained(folder, torch_dtype=torch.float32, tokenizer=None, text_encoder=None,
                                                   image_encoder=None, image_processor=None, transformer_2=None)

    width, height, frames = 64, 32, 9
    image = first_frame(width, height, seed=31)
    image.save(os.path.join(FIX, "first_frame.png"))
    lat = noise((1, 48, (frames - 1) // 4 + 1, height // 16, width // 16), 200)
    embeds, neg = text_embeds(512, 16, 201, valid=9), text_embeds(512, 16, 202, valid=3)
    common = dict(image=image, height=height, width=width, num_frames=frames, num_inference_steps=STEPS,
                  guidance_scale=5.0, prompt_embeds=embeds, negative_prompt_embeds=neg)
    with torch.no_grad():
        out = pipe(**common, latents=lat.clone(), output_type="np").frames[0]
        latents = pipe(**common, latents=lat.clone(), output_type="latent").frames
    frames_t = torch.from_numpy(out)
    describe("ti2v", frames_t, latents, pipe.vae, denormalizer(pipe.vae))
    save_file({"noise": lat[0].contiguous(), "latents": latents[0].contiguous(), "frames": frames_t.contiguous(),
               "embeds": trim(embeds[0]), "negative_embeds": trim(neg[0])},
              os.path.join(FIX, "ti2v.safetensors"))


def make_i2v_fixtures(t2v):
    folder = os.path.join(FIX, "tiny-wan-i2v")
    transformer = randomize_transformer(WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=36, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=64, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=8, added_kv_proj_dim=32,
        rope_max_seq_len=1024), seed=41)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    transformer.save_pretrained(os.path.join(folder, "transformer"), safe_serialization=True)
    pipe = WanImageToVideoPipeline(tokenizer=t2v.tokenizer, text_encoder=t2v.text_encoder, vae=t2v.vae,
                                   scheduler=t2v.scheduler, transformer=transformer, image_encoder=None,
                                   image_processor=None)
    width, height, frames = 32, 32, 5
    image = first_frame(width, height, seed=51)
    image.save(os.path.join(FIX, "i2v_first_frame.png"))
    lat = noise((1, 16, (frames - 1) // 4 + 1, height // 8, width // 8), 300)
    clip = noise((1, 4, 8), 301)
    prompt, negative = "a bird flies over the city at night", "low quality"
    common = dict(image=image, prompt=prompt, negative_prompt=negative, height=height, width=width,
                  num_frames=frames, num_inference_steps=3, guidance_scale=3.0)
    # diffusers refuses `image` together with `image_embeds`; the image still feeds the VAE
    # condition, so the CLIP encoder is replaced by the fixed features instead.
    pipe.encode_image = lambda image, device=None: clip.clone()
    with torch.no_grad():
        out = pipe(**common, latents=lat.clone(), output_type="np").frames[0]
        latents = pipe(**common, latents=lat.clone(), output_type="latent").frames
    frames_t = torch.from_numpy(out)
    describe("i2v", frames_t, latents, pipe.vae, denormalizer(pipe.vae))
    save_file({"noise": lat[0].contiguous(), "latents": latents[0].contiguous(), "frames": frames_t.contiguous(),
               "image_embeds": clip[0].contiguous()}, os.path.join(FIX, "i2v.safetensors"))
    with open(os.path.join(FIX, "i2v.json"), "w", encoding="utf-8") as f:
        json.dump({"prompt": prompt, "negative_prompt": negative, "width": width, "height": height,
                   "frames": frames, "steps": 3, "guidance": 3.0}, f, ensure_ascii=False, indent=1)
        f.write("\n")


def make_i2v_clip_fixtures(t2v):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_clip_fixtures import clip_processor, tiny_clip_vision
    folder = os.path.join(FIX, "tiny-wan-i2v")
    for sub in ("image_encoder", "image_processor"):
        if os.path.isdir(os.path.join(folder, sub)):
            shutil.rmtree(os.path.join(folder, sub))
    clip = tiny_clip_vision(hidden=8, layers=3, heads=2, intermediate=32, image_size=24, patch=8, seed=61,
                            with_projection=True)
    clip.save_pretrained(os.path.join(folder, "image_encoder"), safe_serialization=True)
    clip_processor(24).save_pretrained(os.path.join(folder, "image_processor"))
    transformer = WanTransformer3DModel.from_pretrained(os.path.join(folder, "transformer"), torch_dtype=torch.float32)
    image_encoder = CLIPVisionModelWithProjection.from_pretrained(os.path.join(folder, "image_encoder"),
                                                                  torch_dtype=torch.float32).eval()
    for a, b in zip(clip.state_dict().values(), image_encoder.state_dict().values()):
        assert torch.equal(a, b), "the saved image encoder does not load back"
    image_processor = CLIPImageProcessorPil.from_pretrained(os.path.join(folder, "image_processor"))
    pipe = WanImageToVideoPipeline(tokenizer=t2v.tokenizer, text_encoder=t2v.text_encoder, vae=t2v.vae,
                                   scheduler=t2v.scheduler, transformer=transformer, image_encoder=image_encoder,
                                   image_processor=image_processor)
    width, height, frames = 32, 32, 5
    image = first_frame(48, 40, seed=71)
    image.save(os.path.join(FIX, "i2v_clip_first_frame.png"))
    lat = noise((1, 16, (frames - 1) // 4 + 1, height // 8, width // 8), 300)
    common = dict(image=image, prompt="a bird flies over the city at night", negative_prompt="low quality",
                  height=height, width=width, num_frames=frames, num_inference_steps=3, guidance_scale=3.0)
    with torch.no_grad():
        clip_features = pipe.encode_image(image)
        out = pipe(**common, latents=lat.clone(), output_type="np").frames[0]
        latents = pipe(**common, latents=lat.clone(), output_type="latent").frames
    assert clip_features.shape == (1, 10, 8)
    frames_t = torch.from_numpy(out)
    describe("i2v with CLIP", frames_t, latents, pipe.vae, denormalizer(pipe.vae))
    save_file({"noise": lat[0].contiguous(), "latents": latents[0].contiguous(), "frames": frames_t.contiguous(),
               "image_embeds": clip_features[0].contiguous()}, os.path.join(FIX, "i2v_clip.safetensors"))


def size_of(path):
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(path) for n in ns)


def main():
    torch.set_num_threads(2)
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["i2v_clip"], help="make only these fixtures, keep the others")
    if parser.parse_args().only == "i2v_clip":
        make_i2v_clip_fixtures(WanPipeline.from_pretrained(MODEL, torch_dtype=torch.float32))
        return
    if os.path.isdir(FIX):
        shutil.rmtree(FIX)
    os.makedirs(FIX)
    t2v = build_t2v()
    make_t2v_fixtures(t2v)
    make_ti2v_fixtures()
    make_i2v_fixtures(t2v)
    make_i2v_clip_fixtures(t2v)
    print(f"{MODEL}: {size_of(MODEL) / 1024:.0f} KiB; {FIX}: {size_of(FIX) / 1024:.0f} KiB")
    assert size_of(MODEL) < 3 * 1024 * 1024


if __name__ == "__main__":
    main()
