// The Wan variant rules: which model a transformer + VAE pair is, and its generation defaults
// (reference/wan.md §4.1–4.4; diffusers' documented settings for each released model).
#include <string>

#include "pipeline/model_files.hpp"
#include "reel/options.hpp"

namespace reel::pipeline {

std::string_view variant_label(WanVariant v) {
  switch (v) {
    case WanVariant::t2v: return "text-to-video";
    case WanVariant::i2v: return "image-to-video";
    case WanVariant::ti2v: return "text/image-to-video";
  }
  return "?";
}

WanVariant detect_variant(const WanConfig& t, const VaeConfig& vae) {
  const std::string what = "transformer " + std::to_string(t.in_channels) + " -> " + std::to_string(t.out_channels) +
                           " channels with a VAE of z_dim " + std::to_string(vae.z_dim);
  if (t.out_channels != vae.z_dim)
    throw Error(StatusCode::bad_format, what + ": the transformer's output channels must equal the VAE's z_dim "
                                               "(wrong VAE for this transformer? Wan 2.1 models use the z 16 VAE, "
                                               "Wan 2.2 TI2V-5B the z 48 one)");
  if (t.in_channels == t.out_channels) {
    if (t.has_image_context())
      throw Error(StatusCode::unsupported, what + " and an image-context path is not a released Wan variant");
    return vae.is_residual && t.in_channels == 48 ? WanVariant::ti2v : WanVariant::t2v;
  }
  // Wan 2.1 I2V and Wan 2.2 I2V-A14B: latents, 4 mask channels, condition latents.
  if (t.in_channels == 2 * t.out_channels + vae.temporal_factor()) return WanVariant::i2v;
  throw Error(StatusCode::unsupported, what + " is not a Wan variant reel runs (16 -> 16: text-to-video, "
                                              "36 -> 16: image-to-video, 48 -> 48: Wan 2.2 TI2V)");
}

PipelineDefaults variant_defaults(WanVariant v, bool two_experts, const ModelIndex& index,
                                  const SchedulerSettings& scheduler) {
  PipelineDefaults d;
  d.sampler = scheduler.sampler;
  d.schedule = scheduler.schedule;
  d.num_train_timesteps = scheduler.num_train_timesteps;
  switch (v) {
    case WanVariant::t2v:  // diffusers WanPipeline defaults; A14B: the documented 40 steps, 4.0 / 3.0
      d.shift = 3.0f;
      if (two_experts) d.steps = 40, d.guidance = 4.0f, d.guidance_2 = 3.0f, d.boundary_ratio = 0.875f;
      break;
    case WanVariant::i2v:  // 480p I2V: shift 3 (wan.md §4.2); A14B: 40 steps, 3.5
      d.shift = 3.0f;
      if (two_experts) d.steps = 40, d.guidance = 3.5f, d.guidance_2 = 3.5f, d.boundary_ratio = 0.9f;
      break;
    case WanVariant::ti2v:  // configs/wan_ti2v_5B.py: 1280×704, 121 frames, 24 fps, shift 5
      d.width = 1280, d.height = 704, d.frames = 121, d.shift = 5.0f, d.fps = 24.0;
      break;
  }
  if (scheduler.shift) d.shift = *scheduler.shift;
  if (index.boundary_ratio) d.boundary_ratio = *index.boundary_ratio;
  if (!two_experts) d.boundary_ratio = 0.0f;
  return d;
}

}  // namespace reel::pipeline
