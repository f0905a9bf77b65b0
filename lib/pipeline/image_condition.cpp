// Image-to-video conditioning (wan.md §4.4): the first frame through the VAE encoder, as Wan 2.2
// TI2V's replacement latent or as Wan 2.1/2.2 I2V's mask + condition channels; Wan 2.1 I2V's
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

ImageCondition image_condition(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs, Run& run) {
  Backend& be = *p.backend;
  ImageCondition c;
  const DType act = p.transformer->activation_dtype();
  if (r.image_context.defined()) {
    const Tensor& t = r.image_context;
    Tensor x = t.rank() == 2 ? t.reshape({1, t.dim(0), t.dim(1)}) : t;
    if (x.dtype() != act) x = x.to(act);
    c.image_context = x.device() == be.device() ? x : x.to(be.device());
  }
  if (!r.image) return c;

  // Wan 2.1 I2V without caller features: CLIP first (one more step of the encode stage).
  const bool clip = !c.image_context.defined() && p.info.needs_image_context && p.image_encoder;
  run.begin_stage("encode", clip ? 2 : 1);
  const Image& src = *r.image;
  if (clip) {
    const auto clip_start = std::chrono::steady_clock::now();
    const Tensor features = p.image_encoder->encode(be, p.image_processor, {&src, 1});  // [1, N, image_dim] f32
    require_finite(features, "the CLIP image encoder's features");
    c.image_context = features.dtype() == act ? features : ops::convert(be, features, act);
    run.step_done(1, seconds_since(clip_start));
  }
  const auto start = std::chrono::steady_clock::now();
  const Image sized = src.width == rs.width && src.height == rs.height
                          ? src
                          : resize_image(src, rs.width, rs.height, r.image_resize);
  const Tensor pixels = image_to_tensor(sized);  // [3, H, W] in [-1, 1]
  const int64_t plane = int64_t(rs.height) * rs.width;
  const VaeConfig& vc = p.vae->config();

  if (p.info.variant == WanVariant::ti2v) {
    // The single frame's latent [z, 1, h, w], normalised; it replaces latent frame 0.
    const Tensor mu = p.vae->encode(pixels.reshape({3, 1, rs.height, rs.width}));
    Tensor n = normalize_latents(be, mu, vc);
    c.first_latent = n.is_cpu() ? n : n.to(Device::cpu());
    if (c.first_latent.dtype() != DType::f32) c.first_latent = c.first_latent.to(DType::f32);
    require_finite(c.first_latent, "the VAE encoder's latent of the first frame");
  } else {
    // [image, zeros × (T − 1)] → latents; mask 1 on latent frame 0 (its 4 channels), else 0.
    Tensor video = Tensor::zeros({3, rs.frames, rs.height, rs.width}, DType::f32);
    for (int64_t ch = 0; ch < 3; ++ch)
      std::memcpy(video.data<float>() + ch * rs.frames * plane, pixels.data<float>() + ch * plane,
                  size_t(plane) * sizeof(float));
    const Tensor mu = p.vae->encode(video);
    Tensor cond = normalize_latents(be, mu, vc);
    if (!cond.is_cpu()) cond = cond.to(Device::cpu());
    if (cond.dtype() != DType::f32) cond = cond.to(DType::f32);
    require_finite(cond, "the VAE encoder's latents of the first frame");
    const int64_t mask_channels = p.info.transformer.in_channels - 2 * rs.channels;
    const int64_t lf = rs.latent_frames, lplane = rs.latent_height * rs.latent_width;
    c.channels = Tensor::zeros({mask_channels + rs.channels, lf, rs.latent_height, rs.latent_width}, DType::f32);
    float* dst = c.channels.data<float>();
    for (int64_t m = 0; m < mask_channels; ++m) std::fill_n(dst + m * lf * lplane, lplane, 1.0f);
    std::memcpy(dst + mask_channels * lf * lplane, cond.data<float>(), size_t(cond.numel()) * sizeof(float));
  }
  run.step_done(clip ? 2 : 1, seconds_since(start));
  run.end_stage();
  return c;
}

}  // namespace reel::pipeline
