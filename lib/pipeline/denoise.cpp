// The denoising stage, one loop for every window (generate() and each chunk of a video
// session): the transformer(s) wrapped as the sampler's denoiser — the window's fixed latent
// frames put into x before every model call (clean with per-token timestep 0, or noised to the
// current σ), I2V's extra channels appended, classifier-free guidance with the conditional and
// unconditional passes in one batch of 2 or two calls, the A14B expert switch — then the
// sampler over the schedule.
#include "sampling/exact_float.hpp"  // first: the noising of replaced frames rounds op by op

#include <cstring>

#include "pipeline/pipeline_impl.hpp"
#include "pipeline/stage_models.hpp"
#include "reel/ops.hpp"
#include "reel/rng.hpp"
#include "reel/sampler.hpp"

namespace reel::pipeline {

namespace {

// Copies `src` (CPU, any dtype) into rows [at, at + src.numel()) of dst's flat buffer (same dtype).
void put(Tensor& dst, int64_t at, const Tensor& src) {
  const size_t es = dtype_size(dst.dtype());
  std::memcpy(static_cast<std::byte*>(dst.raw()) + size_t(at) * es, src.raw(), size_t(src.numel()) * es);
}

// Sets latent frames [0, K) of x [C, F, h, w] (f32, in place) to `fixed` [C, K, h, w]: clean,
// or, when `noise` is defined, noised to σ along the flow path with the window's own noise.
void put_fixed(Tensor& x, const Tensor& fixed, const Tensor& noise, float sigma) {
  const int64_t channels = x.dim(0), frames = x.dim(1), hw = x.dim(2) * x.dim(3), k = fixed.dim(1);
  const float keep = 1.0f - sigma;
  float* dst = x.data<float>();
  const float* src = fixed.data<float>();
  for (int64_t ch = 0; ch < channels; ++ch) {
    float* d = dst + ch * frames * hw;
    const float* s = src + ch * k * hw;
    if (!noise.defined()) {
      std::memcpy(d, s, size_t(k * hw) * sizeof(float));
    } else {
      const float* e = noise.data<float>() + ch * frames * hw;
      for (int64_t i = 0; i < k * hw; ++i) d[i] = keep * s[i] + sigma * e[i];
    }
  }
}

// The guided Wan transformer(s) as a flow denoiser for one window.
class WanDenoiser final : public Denoiser {
 public:
  WanDenoiser(const Pipeline::Impl& p, const StageModels& models, const GenerateRequest& r, const Resolved& rs,
              const TextContext& text, const Conditioning& cond, const Tensor& noise, Run& run)
      : p_(p), models_(models), r_(r), rs_(rs), text_(text), cond_(cond), noise_(noise), run_(run),
        flow_([this](const Tensor& x, float t) { return velocity(x, t); },
              schedule_timesteps(rs.sigmas, p.info.defaults.num_train_timesteps)) {
    boundary_ = p.info.defaults.boundary_ratio * float(p.info.defaults.num_train_timesteps);
    const Patch& patch = p.info.transformer.patch;
    const int64_t token_frames = rs.latent_frames / patch.t;
    tokens_ = token_frames * (rs.latent_height / patch.h) * (rs.latent_width / patch.w);
    if (cond.fixed.defined() && cond.fixed_mode == ContextConditioning::per_token)
      fixed_tokens_ = tokens_ / token_frames * (cond.fixed.dim(1) / patch.t);
    if (cond.image_context.defined() && text.batched.defined() && r.batch_cfg)
      image_batched_ = ops::concat(*p.backend, {&cond.image_context, &cond.image_context}, 0);
  }

  NoisePath path() const override { return NoisePath::flow; }
  float timestep(float sigma) const override { return flow_.timestep(sigma); }
  Denoised denoise(const Tensor& x, float sigma) override {
    if (!cond_.fixed.defined()) return flow_.denoise(x, sigma);
    Tensor in = x.clone();
    put_fixed(in, cond_.fixed, fixed_tokens_ ? Tensor() : noise_, sigma);
    return flow_.denoise(in, sigma);
  }

 private:
  // The guided flow prediction at timestep t; numerical_error when it is not finite.
  Tensor velocity(const Tensor& x, float t) {
    run_.check_cancel();
    // A14B: the high-noise expert while t >= boundary, the low-noise one after.
    const bool high = !models_.transformer_2 || t >= boundary_;
    const WanTransformer& model = high ? models_.transformer : *models_.transformer_2;
    const float g = high ? rs_.guidance : rs_.guidance_2;
    const bool cfg = rs_.cfg && g != 1.0f;
    const Tensor in = model_input(x);
    const Shape one{1, in.dim(0), in.dim(1), in.dim(2), in.dim(3)};
    Tensor v;
    if (cfg && r_.batch_cfg && text_.batched.defined()) {
      Tensor both = Tensor::empty({2, in.dim(0), in.dim(1), in.dim(2), in.dim(3)}, DType::f32);
      put(both, 0, in);
      put(both, in.numel(), in);
      const Tensor out = model.forward(*p_.backend, both, timesteps(t, 2), text_.batched,
                                              image_batched_.defined() ? &image_batched_ : image())
                             .to(Device::cpu());
      v = guide(out.select(0), out.select(1), g);
    } else {
      const std::vector<float> ts = timesteps(t, 1);
      v = model.forward(*p_.backend, in.reshape(one), ts, text_.cond, image()).to(Device::cpu()).select(0);
      if (cfg) {
        run_.check_cancel();
        const Tensor& neg = text_.uncond.defined() ? text_.uncond : text_.cond;
        const Tensor u = model.forward(*p_.backend, in.reshape(one), ts, neg, image()).to(Device::cpu()).select(0);
        v = guide(v, u, g);
      }
    }
    require_finite(v, "the transformer's output at timestep " + std::to_string(t));
    return v;
  }

  // x [C, F, h, w] → what the transformer takes: I2V's channels appended on the channel axis.
  Tensor model_input(const Tensor& x) const {
    if (!cond_.channels.defined()) return x;
    Tensor in = Tensor::empty({x.dim(0) + cond_.channels.dim(0), x.dim(1), x.dim(2), x.dim(3)}, DType::f32);
    put(in, 0, x);
    put(in, x.numel(), cond_.channels);
    return in;
  }

  // One timestep per batch item, or per token (fixed frames per_token: 0 on their tokens).
  std::vector<float> timesteps(float t, int batch) const {
    if (fixed_tokens_ == 0) return std::vector<float>(size_t(batch), t);
    std::vector<float> ts(size_t(batch * tokens_), t);
    for (int b = 0; b < batch; ++b) std::fill_n(ts.begin() + b * tokens_, fixed_tokens_, 0.0f);
    return ts;
  }

  const Tensor* image() const { return cond_.image_context.defined() ? &cond_.image_context : nullptr; }

  const Pipeline::Impl& p_;
  const StageModels& models_;
  const GenerateRequest& r_;
  const Resolved& rs_;
  const TextContext& text_;
  const Conditioning& cond_;
  const Tensor& noise_;
  Run& run_;
  FlowDenoiser flow_;
  Tensor image_batched_;
  float boundary_ = 0;
  int64_t tokens_ = 0, fixed_tokens_ = 0;
};

// Each sampler step to the run's progress, with a preview of its x0 estimate when asked for.
class RunObserver final : public StepObserver {
 public:
  RunObserver(Run& run, const LatentRgb* previews, const Tensor& fixed) : run_(run), map_(previews), fixed_(fixed) {}
  StepAction on_step(const StepInfo& info) override {
    if (!map_) {
      run_.step_done(info.step + 1, info.seconds);  // throws cancelled when asked to stop
      return StepAction::proceed;
    }
    Tensor x0 = info.x0.clone();
    if (fixed_.defined()) put_fixed(x0, fixed_, Tensor(), 0.0f);  // the model says nothing useful there
    const std::vector<uint8_t> rgb = preview_pixels(*map_, x0);
    const Preview preview{info.step + 1, info.total, int(x0.dim(1)), int(x0.dim(2)), int(x0.dim(3)), rgb};
    run_.step_done(info.step + 1, info.seconds, &preview);
    return StepAction::proceed;
  }

 private:
  Run& run_;
  const LatentRgb* map_;
  const Tensor& fixed_;
};

}  // namespace

Tensor denoise(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs, const TextContext& text,
               const Conditioning& cond, uint64_t stream, Run& run) {
  const Shape shape{rs.channels, rs.latent_frames, rs.latent_height, rs.latent_width};
  const Tensor& fixed = cond.fixed;
  require(!fixed.defined() || (fixed.is_cpu() && fixed.dtype() == DType::f32 && fixed.rank() == 4 &&
                               fixed.dim(0) == shape[0] && fixed.dim(1) >= 1 && fixed.dim(1) < shape[1] &&
                               fixed.dim(2) == shape[2] && fixed.dim(3) == shape[3]),
          StatusCode::internal,
          "denoise: fixed latents " + fixed.shape().str() + " do not fit the window " + shape.str());
  Rng rng(r.seed, stream);
  Tensor noise;
  if (r.initial_noise.defined()) {
    noise = r.initial_noise.reshape(shape);
    if (noise.dtype() != DType::f32) noise = noise.to(DType::f32);
  } else {
    noise = rng.normal(shape);  // this stream; the sampler's own noise (ancestral samplers) follows
  }

  auto sampler = make_sampler(rs.sampler);
  const StageModels models = stage_models(p);  // offload: uploaded for this stage, freed before the decode
  WanDenoiser denoiser(p, models, r, rs, text, cond, noise, run);
  RunObserver observer(run, r.previews ? &latent_rgb(p) : nullptr, fixed);
  run.begin_stage("denoise", rs.steps);
  Tensor latents = sampler->sample(denoiser, noise, rs.sigmas.sigmas, rng, observer);
  run.end_stage();
  if (fixed.defined()) put_fixed(latents, fixed, Tensor(), 0.0f);  // exactly the fixed frames
  return latents;
}

}  // namespace reel::pipeline
