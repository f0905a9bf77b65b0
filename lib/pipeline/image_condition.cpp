// Image-to-video conditioning (wan.md §4.4): the first frame through the VAE encoder, as Wan 2.2
// TI2V's fixed first latent or as Wan 2.1/2.2 I2V's mask + condition channels; Wan 2.1 I2V's
// CLIP features from the caller, or from the model's CLIP image encoder run on the image as the
// caller gave it (diffusers' encode_image sees the unresized image).
#include <chrono>
#include <cstring>

#include "pipeline/pipeline_impl.hpp"
#include "reel/ops.hpp"

namespace reel::pipeline {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Tensor i2v_channels(const Pipeline::Impl& p, const Resolved& rs, const Tensor& pixels) {
  // [pixels, zeros × (T − n)] → normalised latents; the mask is 1 on the first n frames, laid
  // out as Wan's pipelines do: frame 0 repeated 4 times, then 4 frames per latent frame.
  const int64_t n = pixels.dim(1), plane = int64_t(rs.height) * rs.width;
  Tensor video = Tensor::zeros({3, rs.frames, rs.height, rs.width}, DType::f32);
  for (int64_t ch = 0; ch < 3; ++ch)
    std::memcpy(video.data<float>() + ch * rs.frames * plane, pixels.data<float>() + ch * n * plane,
                size_t(n * plane) * sizeof(float));
  const Tensor cond = host_f32(normalize_latents(*p.backend, p.vae->encode(video), p.vae->config()));
  require_finite(cond, "the VAE encoder's latents of the conditioning frames");
  const int64_t mask_channels = p.info.transformer.in_channels - 2 * rs.channels;
  const int64_t lf = rs.latent_frames, lplane = rs.latent_height * rs.latent_width;
  Tensor channels = Tensor::zeros({mask_channels + rs.channels, lf, rs.latent_height, rs.latent_width}, DType::f32);
  float* dst = channels.data<float>();
  for (int64_t m = 0; m < mask_channels; ++m)
    for (int64_t j = 0; j < lf; ++j) {
      const int64_t frame = j == 0 ? 0 : mask_channels * (j - 1) + 1 + m;  // the pixel frame this entry covers
      if (frame < n) std::fill_n(dst + (m * lf + j) * lplane, lplane, 1.0f);
    }
  std::memcpy(dst + mask_channels * lf * lplane, cond.data<float>(), size_t(cond.numel()) * sizeof(float));
  return channels;
}

Tensor image_context_of(const Pipeline::Impl& p, const Tensor& given, const Image& image) {
  const DType act = p.transformer->activation_dtype();
  if (given.defined()) {
    Tensor x = given.rank() == 2 ? given.reshape({1, given.dim(0), given.dim(1)}) : given;
    if (x.dtype() != act) x = x.to(act);
    return x.to(p.backend->device());
  }
  const Tensor features = p.image_encoder->encode(*p.backend, p.image_processor, {&image, 1});  // [1, N, image_dim] f32
  require_finite(features, "the CLIP image encoder's features");
  return features.dtype() == act ? features : ops::convert(*p.backend, features, act);
}

Conditioning image_condition(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs, Run& run) {
  Conditioning c;
  if (!r.image) {
    if (r.image_context.defined()) c.image_context = image_context_of(p, r.image_context, Image{});
    return c;
  }
  // Wan 2.1 I2V without caller features: CLIP first (one more step of the encode stage).
  const bool clip = !r.image_context.defined() && p.info.needs_image_context && p.image_encoder;
  run.begin_stage("encode", clip ? 2 : 1);
  const Image& src = *r.image;
  if (r.image_context.defined() || clip) {
    const auto clip_start = std::chrono::steady_clock::now();
    c.image_context = image_context_of(p, r.image_context, src);
    if (clip) run.step_done(1, seconds_since(clip_start));
  }
  const auto start = std::chrono::steady_clock::now();
  const Image sized = src.width == rs.width && src.height == rs.height
                          ? src
                          : resize_image(src, rs.width, rs.height, r.image_resize);
  const Tensor pixels = image_to_tensor(sized).reshape({3, 1, rs.height, rs.width});  // in [-1, 1]
  if (p.info.variant == WanVariant::ti2v) {
    // The single frame's normalised latent [z, 1, h, w] is latent frame 0, clean, timestep 0.
    c.fixed = host_f32(normalize_latents(*p.backend, p.vae->encode(pixels), p.vae->config()));
    require_finite(c.fixed, "the VAE encoder's latent of the first frame");
    c.fixed_mode = ContextConditioning::per_token;
  } else {
    c.channels = i2v_channels(p, rs, pixels);
  }
  run.step_done(clip ? 2 : 1, seconds_since(start));
  run.end_stage();
  return c;
}

}  // namespace reel::pipeline
