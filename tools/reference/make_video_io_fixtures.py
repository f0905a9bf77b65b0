#!/usr/bin/env python3
"""Makes the video/image I/O fixtures in tests/fixtures/video/ with diffusers and Pillow.

  postprocess_in.f32 / postprocess_out.u8
      float32 [1, 3, 2, 5, 7] "VAE output" (random in [-1.3, 1.3) plus exact rounding ties,
      -1, 0, 1) -> diffusers VideoProcessor.postprocess_video(output_type="pil") as uint8
      [2, 5, 7, 3] (frames, height, width, RGB).
  unit_in.f32 / unit_out.u8
      float32 [64] in [0, 1] (with ties) -> numpy_to_pil's (x * 255).round().astype(uint8).
  resize_src.png                      random RGB 37x23 (noise: exercises Lanczos overshoot clipping)
  resize_<W>x<H>.png                  PIL Image.resize((W, H), Image.LANCZOS) of resize_src.png
                                      (Pillow 13: 50x12 and 30x5 take the vertical pass first)
  cover_<W>x<H>.png                   original Wan 2.2 TI2V preprocessing (textimage2video.i2v):
                                      scale = max(W/iw, H/ih), LANCZOS to (round(iw*s), round(ih*s)),
                                      centre crop at ((w-W)//2, (h-H)//2)
  stretch_<W>x<H>.f32                 diffusers VideoProcessor(vae_scale_factor=8).preprocess(img, H, W),
                                      float32 [1, 3, H, W] in [-1, 1]
  exif_<n>.png / exif_<n>_expected.png
      a 5x3 image saved with EXIF orientation n (PNG eXIf chunk), and diffusers' load_image of it
      (ImageOps.exif_transpose + convert("RGB")), n = 1..8.
  exif_6.jpg / exif_6_jpg_expected.png
      a smooth 24x16 JPEG (quality 95, orientation 6) and load_image of it (libjpeg-turbo decode).

Usage: tools/reference/.venv/bin/python tools/reference/make_video_io_fixtures.py
"""
import pathlib

import numpy as np
import torch
from PIL import Image
from diffusers.utils import load_image
from diffusers.video_processor import VideoProcessor

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "video"


def tie_inputs(minus_one_to_one):
    """float32 inputs whose float32 pipeline lands exactly on k + 0.5 before rounding."""
    found = []
    for k in range(0, 255, 7):
        target = (k + 0.5) / 255.0
        x0 = np.float32(2.0 * target - 1.0) if minus_one_to_one else np.float32(target)
        x = x0
        for _ in range(64):
            y = x / np.float32(2) + np.float32(0.5) if minus_one_to_one else x
            v = np.float32(y * np.float32(255))
            if v == np.float32(k + 0.5):
                found.append(x)
                break
            x = np.nextafter(x, np.float32(2) if v < k + 0.5 else np.float32(-2), dtype=np.float32)
    return np.array(found, dtype=np.float32)


def postprocess_fixture(rng):
    shape = (1, 3, 2, 5, 7)
    n = int(np.prod(shape))
    ties = tie_inputs(True)
    special = np.array([-1.0, 0.0, 1.0, -1.5, 1.5, 0.5, -0.5], dtype=np.float32)
    assert len(ties) + len(special) < n
    x = rng.uniform(-1.3, 1.3, size=n).astype(np.float32)
    x[: len(ties)] = ties
    x[len(ties) : len(ties) + len(special)] = special
    rng.shuffle(x)
    x = x.reshape(shape)
    proc = VideoProcessor(vae_scale_factor=8)
    frames = proc.postprocess_video(torch.from_numpy(x), output_type="pil")[0]
    out = np.stack([np.array(f) for f in frames]).astype(np.uint8)  # [T, H, W, 3]
    assert out.shape == (2, 5, 7, 3)
    x.tofile(OUT / "postprocess_in.f32")
    out.tofile(OUT / "postprocess_out.u8")
    print(f"postprocess: {len(ties)} ties, out {out.shape}")


def unit_fixture(rng):
    ties = tie_inputs(False)
    x = rng.uniform(0.0, 1.0, size=64).astype(np.float32)
    x[: len(ties)] = ties
    x[-2:] = [0.0, 1.0]
    out = VideoProcessor.numpy_to_pil(x.reshape(1, 8, 8, 1).repeat(3, axis=3))
    u8 = np.array(out[0])[:, :, 0].reshape(-1)
    assert np.array_equal(u8, (x * np.float32(255)).round().astype(np.uint8))
    x.tofile(OUT / "unit_in.f32")
    u8.astype(np.uint8).tofile(OUT / "unit_out.u8")


def wan22_cover(img, ow, oh):
    # Wan2.2 wan/textimage2video.py, WanTI2V.i2v preprocessing
    iw, ih = img.width, img.height
    scale = max(ow / iw, oh / ih)
    img = img.resize((round(iw * scale), round(ih * scale)), Image.LANCZOS)
    x1 = (img.width - ow) // 2
    y1 = (img.height - oh) // 2
    img = img.crop((x1, y1, x1 + ow, y1 + oh))
    assert img.width == ow and img.height == oh
    return img


def resize_fixtures(rng):
    src = Image.fromarray(rng.integers(0, 256, size=(23, 37, 3), dtype=np.uint8), "RGB")
    src.save(OUT / "resize_src.png")
    src = Image.open(OUT / "resize_src.png").convert("RGB")
    for w, h in [(16, 16), (64, 40), (37, 11), (20, 23), (50, 12), (30, 5), (5, 3), (37, 23)]:
        src.resize((w, h), Image.LANCZOS).save(OUT / f"resize_{w}x{h}.png")
    for w, h in [(32, 16), (16, 32), (48, 48)]:
        wan22_cover(src, w, h).save(OUT / f"cover_{w}x{h}.png")
    proc = VideoProcessor(vae_scale_factor=8)
    for w, h in [(24, 16)]:
        t = proc.preprocess(src, height=h, width=w)
        assert t.shape == (1, 3, h, w) and t.dtype == torch.float32
        t.numpy().astype(np.float32).tofile(OUT / f"stretch_{w}x{h}.f32")


def exif_fixtures(rng):
    base = Image.fromarray(rng.integers(0, 256, size=(3, 5, 3), dtype=np.uint8), "RGB")
    for n in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = n
        path = OUT / f"exif_{n}.png"
        base.save(path, exif=exif.tobytes())
        load_image(str(path)).save(OUT / f"exif_{n}_expected.png")
    yy, xx = np.mgrid[0:16, 0:24]
    smooth = np.stack([xx * 10, yy * 15, 255 - xx * 5 - yy * 5], axis=-1).clip(0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(smooth, "RGB").save(OUT / "exif_6.jpg", quality=95, exif=exif.tobytes())
    decoded = load_image(str(OUT / "exif_6.jpg"))
    assert decoded.size == (16, 24)
    decoded.save(OUT / "exif_6_jpg_expected.png")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240807)
    postprocess_fixture(rng)
    unit_fixture(rng)
    resize_fixtures(rng)
    exif_fixtures(rng)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes to {OUT}")


if __name__ == "__main__":
    main()
