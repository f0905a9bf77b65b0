// WanVae: loading (config from the weights and the folder's config.json), whole-clip and streamed decode, encode.
#include <cstring>

#include "reel/weights.hpp"
#include "vae/vae_model.hpp"
#include "vae/vae_tiling.hpp"

namespace reel {

namespace {

// Copies CPU f32 frames [C, m, H, W] into out [C, T, H, W] at frame `first`.
void copy_frames(const Tensor& frames, Tensor& out, int64_t first) {
  const int64_t c = frames.dim(0), m = frames.dim(1), hw = frames.dim(2) * frames.dim(3), t = out.dim(1);
  const float* src = frames.data<float>();
  float* dst = out.data<float>();
  for (int64_t ci = 0; ci < c; ++ci)
    std::memcpy(dst + (ci * t + first) * hw, src + ci * m * hw, size_t(m * hw) * sizeof(float));
}

void require_decoder(const VaeModel& m, const char* fn) {
  require(m.has_decoder, StatusCode::invalid_argument,
          std::string(fn) + ": this WanVae was loaded without its decoder (VaeLoadOptions::decoder = false)");
}

}  // namespace

WanVae::WanVae(std::shared_ptr<const VaeModel> model) : model_(std::move(model)) {}
WanVae::WanVae(WanVae&&) noexcept = default;
WanVae& WanVae::operator=(WanVae&&) noexcept = default;
WanVae::~WanVae() = default;

WanVae WanVae::load(const std::filesystem::path& path, Backend& backend, const VaeLoadOptions& options) {
  if (options.config) return from_store(WeightStore::open(path), backend, options);
  VaeLoadOptions with_config = options;  // the weights' shapes and the folder's config.json
  with_config.config = vae::read_vae_config(path);
  return from_store(WeightStore::open(path), backend, with_config);
}

WanVae WanVae::from_store(const WeightStore& store, Backend& backend, const VaeLoadOptions& options) {
  require(options.encoder || options.decoder, StatusCode::invalid_argument,
          "WanVae: VaeLoadOptions asks for neither the encoder nor the decoder");
  require(options.compute == DType::f32 || options.compute == DType::bf16 || options.compute == DType::f16,
          StatusCode::invalid_argument, "WanVae: the compute dtype must be f32, bf16 or f16");
  auto model = std::make_shared<VaeModel>();
  model->config = options.config ? *options.config : vae::infer_vae_config(store);
  model->config.validate();
  model->backend = &backend;
  model->compute = options.compute;
  model->has_encoder = options.encoder;
  model->has_decoder = options.decoder;
  vae::load_vae_weights(*model, store, options);
  return WanVae(std::move(model));
}

const VaeConfig& WanVae::config() const { return model_->config; }
bool WanVae::has_encoder() const { return model_->has_encoder; }
bool WanVae::has_decoder() const { return model_->has_decoder; }

void WanVae::set_tiling(const VaeTiling& tiling) {
  if (tiling.enabled) vae::check_tiling(model_->config, tiling);
  tiling_ = tiling;
}

VaeDecodeStream WanVae::decode_stream() const {
  require_decoder(*model_, "WanVae::decode_stream");
  return VaeDecodeStream(model_, tiling_);
}

void WanVae::decode(const Tensor& latents, const VaeFrameSink& sink, int latent_frames_per_chunk) const {
  require_decoder(*model_, "WanVae::decode");
  require(bool(sink), StatusCode::invalid_argument, "WanVae::decode: the frame sink is empty");
  require(latent_frames_per_chunk >= 1, StatusCode::invalid_argument,
          "WanVae::decode: latent_frames_per_chunk must be >= 1");
  require(latents.defined() && (latents.rank() == 4 || (latents.rank() == 5 && latents.dim(0) == 1)),
          StatusCode::invalid_argument,
          "WanVae::decode: latents must be [z, F, h, w] or [1, z, F, h, w] for a streamed decode, got " +
              (latents.defined() ? latents.shape().str() : std::string("an undefined tensor")));
  Backend& be = *model_->backend;
  const Tensor z = latents.to(be.device());
  const int axis = z.rank() - 3;  // time
  const int64_t total = z.dim(axis);
  require(total >= 1, StatusCode::invalid_argument, "WanVae::decode: latents have no frames");
  VaeDecodeStream stream = decode_stream();
  for (int64_t begin = 0; begin < total; begin += latent_frames_per_chunk) {
    const int64_t end = std::min(total, begin + latent_frames_per_chunk);
    const Tensor chunk = begin == 0 && end == total ? z : ops::slice(be, z, axis, begin, end);
    const int64_t first = stream.frames();
    sink(stream.push(chunk), first);
  }
}

Tensor WanVae::decode(const Tensor& latents) const {
  require_decoder(*model_, "WanVae::decode");
  require(latents.defined() && (latents.rank() == 4 || latents.rank() == 5), StatusCode::invalid_argument,
          "WanVae::decode: latents must be [z, F, h, w] or [B, z, F, h, w], got " +
              (latents.defined() ? latents.shape().str() : std::string("an undefined tensor")));
  const VaeConfig& cfg = model_->config;
  const bool batched = latents.rank() == 5;
  const int64_t batch = batched ? latents.dim(0) : 1;
  const int o = batched ? 1 : 0;
  const int64_t frames = cfg.frames_for_latents(latents.dim(o + 1));
  const int64_t sf = cfg.spatial_factor(), h = latents.dim(o + 2) * sf, w = latents.dim(o + 3) * sf;
  require(batch >= 1 && frames >= 1, StatusCode::invalid_argument,
          "WanVae::decode: latents " + latents.shape().str() + " are empty");
  Tensor out = Tensor::empty(batched ? Shape{batch, 3, frames, h, w} : Shape{3, frames, h, w}, DType::f32);
  for (int64_t b = 0; b < batch; ++b) {
    const Tensor one = batched ? latents.select(b) : latents;
    Tensor dst = batched ? out.select(b) : out;
    decode(one, [&](const Tensor& f, int64_t first) { copy_frames(f, dst, first); });
  }
  return out;
}

Tensor WanVae::encode_moments(const Tensor& frames) const {
  const VaeModel& m = *model_;
  const VaeConfig& cfg = m.config;
  require(m.has_encoder, StatusCode::invalid_argument,
          "WanVae::encode: this WanVae was loaded without its encoder (VaeLoadOptions::encoder = false)");
  require(frames.defined() && (frames.rank() == 4 || frames.rank() == 5), StatusCode::invalid_argument,
          "WanVae::encode: frames must be [3, T, H, W] or [B, 3, T, H, W], got " +
              (frames.defined() ? frames.shape().str() : std::string("an undefined tensor")));
  const bool batched = frames.rank() == 5;
  const int o = batched ? 1 : 0;
  const int64_t batch = batched ? frames.dim(0) : 1, t = frames.dim(o + 1), h = frames.dim(o + 2),
                w = frames.dim(o + 3);
  const int sf = cfg.spatial_factor(), tf = cfg.temporal_factor();
  require(frames.dim(o) == 3, StatusCode::invalid_argument,
          "WanVae::encode: frames " + frames.shape().str() + " must have 3 (RGB) channels");
  require(batch >= 1 && t >= 1 && (t - 1) % tf == 0, StatusCode::invalid_argument,
          "WanVae::encode: " + std::to_string(t) + " frames; the VAE encodes " + std::to_string(tf) +
              "k + 1 frames (1, 5, 9, ...)");
  require(h >= sf && w >= sf && h % sf == 0 && w % sf == 0, StatusCode::invalid_argument,
          "WanVae::encode: frame size " + std::to_string(h) + "×" + std::to_string(w) +
              " must be a (nonzero) multiple of " + std::to_string(sf));
  require(frames.dtype() == DType::f32 || frames.dtype() == DType::bf16 || frames.dtype() == DType::f16,
          StatusCode::invalid_argument, "WanVae::encode: frames must be f32, bf16 or f16");
  Backend& be = *m.backend;
  Tensor x = frames.to(be.device());
  if (x.dtype() != m.compute) x = ops::convert(be, x, m.compute);
  std::vector<Tensor> outs;
  for (int64_t b = 0; b < batch; ++b) {
    Tensor one = batched ? x.slice(b, b + 1) : x.reshape({1, 3, t, h, w});
    one = vae_patchify(be, one, cfg.patch_size);
    outs.push_back(vae::encode_clip(m, one));
  }
  if (!batched) {
    const Tensor& r = outs[0];
    return r.reshape({r.dim(1), r.dim(2), r.dim(3), r.dim(4)});
  }
  std::vector<const Tensor*> ptrs;
  for (const Tensor& r : outs) ptrs.push_back(&r);
  return outs.size() == 1 ? outs[0] : ops::concat(be, ptrs, 0);
}

Tensor WanVae::encode(const Tensor& frames) const {
  Tensor moments = encode_moments(frames);
  const int axis = moments.rank() - 4;
  return ops::slice(*model_->backend, moments, axis, 0, model_->config.z_dim);
}

}  // namespace reel
