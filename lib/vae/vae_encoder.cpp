// The Wan VAE encoder (WanEncoder3d + quant_conv) on one chunk, and the chunked encode of a
// clip: the first frame alone, then chunks of 4 frames, through one feature cache (§2.4).
#include "vae/vae_model.hpp"

namespace reel::vae {

Tensor encode_chunk(const VaeModel& m, const Tensor& frames, FeatureCache& cache) {
  Backend& be = *m.backend;
  const Coder& e = m.encoder;
  Tensor x = causal_conv(be, e.conv_in, frames, &cache);
  for (const Level& level : e.levels) {
    const Tensor in = x;
    for (const ResBlock& r : level.res) x = res_block(be, r, x, &cache);
    x = resample(be, level.resample, x, &cache);
    if (level.shortcut)
      x = add_into(be, std::move(x), avg_down_3d(be, in, level.shortcut_out, level.factor_t, level.factor_s));
  }
  x = mid_block(be, e.mid, x, &cache);
  x = causal_conv(be, e.conv_out, rms_norm_silu(be, x, e.norm_out), &cache);
  return causal_conv(be, m.quant_conv, x, nullptr);
}

// frames: [1, in_channels, T, H, W] on the device, patchified, T = 4k + 1.
Tensor encode_clip(const VaeModel& m, const Tensor& frames) {
  Backend& be = *m.backend;
  FeatureCache cache;
  cache.reset(size_t(m.encoder.num_slots));
  const int64_t total = frames.dim(2);
  const int64_t step = m.config.temporal_factor();
  std::vector<Tensor> parts;
  for (int64_t begin = 0; begin < total;) {
    const int64_t end = begin == 0 ? 1 : std::min(total, begin + step);
    parts.push_back(encode_chunk(m, frames_of(be, frames, begin, end), cache));
    cache.first = false;
    begin = end;
  }
  if (parts.size() == 1) return parts[0];
  std::vector<const Tensor*> ptrs;
  for (const Tensor& p : parts) ptrs.push_back(&p);
  return ops::concat(be, ptrs, 2);
}

}  // namespace reel::vae
