// The Wan VAE decoder (post_quant_conv + WanDecoder3d) on one chunk of latent frames, and the
// streaming decoder object that carries the feature cache from chunk to chunk (§2.4).
#include <optional>

#include "vae/vae_model.hpp"
#include "vae/vae_tiling.hpp"

namespace reel {

namespace vae {

Tensor decode_chunk(const VaeModel& m, const Tensor& z, FeatureCache& cache, bool unpatchify) {
  Backend& be = *m.backend;
  const Coder& d = m.decoder;
  Tensor x = causal_conv(be, m.post_quant_conv, z, nullptr);
  x = causal_conv(be, d.conv_in, std::move(x), &cache);
  x = mid_block(be, d.mid, x, &cache);
  for (const Level& level : d.levels) {
    const Tensor in = x;
    for (const ResBlock& r : level.res) x = res_block(be, r, x, &cache);
    x = resample(be, level.resample, x, &cache);
    if (level.shortcut)
      x = add_into(be, std::move(x), dup_up_3d(be, in, level.shortcut_out, level.factor_t, level.factor_s, cache.first));
  }
  x = causal_conv(be, d.conv_out, rms_norm_silu_inplace(be, std::move(x), d.norm_out), &cache);
  if (unpatchify && m.config.patch_size > 1) x = vae_unpatchify(be, x, m.config.patch_size);
  return x;
}

Tensor to_host_frames(const Tensor& x, bool clamp) {
  Tensor h = x.to(Device::cpu());
  if (h.dtype() != DType::f32) h = h.to(DType::f32);
  else if (h.read_only()) h = h.clone();
  h = h.reshape({h.dim(1), h.dim(2), h.dim(3), h.dim(4)});
  if (clamp) {
    float* v = h.data<float>();
    // NaN stays NaN, as torch.clamp leaves it.
    for (int64_t i = 0; i < h.numel(); ++i) v[i] = v[i] < -1.0f ? -1.0f : (v[i] > 1.0f ? 1.0f : v[i]);
  }
  return h;
}

}  // namespace vae

struct VaeDecodeStream::State {
  VaeTiling tiling;
  vae::FeatureCache cache;
  std::optional<vae::TiledDecoder> tiled;
  int64_t h = -1, w = -1;  // latent frame size of the current clip
};

VaeDecodeStream::VaeDecodeStream(std::shared_ptr<const VaeModel> model, const VaeTiling& tiling)
    : model_(std::move(model)), state_(std::make_unique<State>()) {
  state_->tiling = tiling;
  reset();
}

VaeDecodeStream::VaeDecodeStream(VaeDecodeStream&&) noexcept = default;
VaeDecodeStream& VaeDecodeStream::operator=(VaeDecodeStream&&) noexcept = default;
VaeDecodeStream::~VaeDecodeStream() = default;

void VaeDecodeStream::reset() {
  state_->cache.reset(size_t(model_->decoder.num_slots));
  state_->tiled.reset();
  state_->h = state_->w = -1;
  latent_frames_ = frames_ = 0;
}

Tensor VaeDecodeStream::push(const Tensor& latents) {
  require(state_ != nullptr, StatusCode::invalid_argument, "VaeDecodeStream: used after being moved from");
  const VaeModel& m = *model_;
  const VaeConfig& cfg = m.config;
  require(latents.defined(), StatusCode::invalid_argument, "VaeDecodeStream::push: latents is an undefined tensor");
  const bool batched = latents.rank() == 5;
  require((latents.rank() == 4 || (batched && latents.dim(0) == 1)), StatusCode::invalid_argument,
          "VaeDecodeStream::push: latents must be [z, n, h, w] or [1, z, n, h, w], got " + latents.shape().str());
  const int o = batched ? 1 : 0;
  const int64_t c = latents.dim(o), n = latents.dim(o + 1), h = latents.dim(o + 2), w = latents.dim(o + 3);
  require(c == cfg.z_dim, StatusCode::invalid_argument,
          "VaeDecodeStream::push: latents " + latents.shape().str() + " have " + std::to_string(c) +
              " channels, the VAE's z_dim is " + std::to_string(cfg.z_dim));
  require(n >= 1 && h >= 1 && w >= 1, StatusCode::invalid_argument,
          "VaeDecodeStream::push: latents " + latents.shape().str() + " are empty");
  require(h <= (1 << 14) && w <= (1 << 14), StatusCode::invalid_argument,
          "VaeDecodeStream::push: latent frame " + std::to_string(h) + "×" + std::to_string(w) + " is too large");
  require(state_->h < 0 || (state_->h == h && state_->w == w), StatusCode::invalid_argument,
          "VaeDecodeStream::push: latent frame size changed from " + std::to_string(state_->h) + "×" +
              std::to_string(state_->w) + " to " + std::to_string(h) + "×" + std::to_string(w) +
              " within a clip (call reset() first)");
  require(latents.dtype() == DType::f32 || latents.dtype() == DType::bf16 || latents.dtype() == DType::f16,
          StatusCode::invalid_argument, "VaeDecodeStream::push: latents must be f32, bf16 or f16");
  Backend& be = *m.backend;
  Tensor z = latents.to(be.device());
  if (z.dtype() != m.compute) z = ops::convert(be, z, m.compute);
  z = z.reshape({1, c, n, h, w});

  if (state_->h < 0) {
    state_->h = h;
    state_->w = w;
    if (vae::tiling_applies(cfg, state_->tiling, h, w)) state_->tiled.emplace(m, state_->tiling, h, w);
  }
  Tensor frames;
  if (state_->tiled) {
    frames = state_->tiled->decode(m, z);
  } else {
    frames = vae::to_host_frames(vae::decode_chunk(m, z, state_->cache), true);
    state_->cache.first = false;
  }
  latent_frames_ += n;
  frames_ += frames.dim(1);
  return frames;
}

}  // namespace reel
