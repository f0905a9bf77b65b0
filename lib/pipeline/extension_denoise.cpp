// Denoising one window of an extended clip: the transformer(s) as a flow model with batched
// classifier-free guidance and the A14B expert switch (as lib/pipeline/denoise.cpp), plus the
// fixed context frames: clean with per-token timestep 0, or replaced at every model call by
// the context noised to the current σ.
#include "sampling/exact_float.hpp"  // first: the CFG combine and the noising round op by op

#include <cstring>

#include "pipeline/extension_impl.hpp"
#include "pipeline/stage_models.hpp"
#include "reel/ops.hpp"
#include "reel/rng.hpp"
#include "reel/sampler.hpp"

namespace reel::pipeline {

namespace {

Tensor to_cpu(const Tensor& t) { return t.is_cpu() ? t : t.to(Device::cpu()); }

// x [C, F, h, w] → velocity [C, F, h, w], guided; per-token timesteps 0 on the context tokens
// in per_token mode.
class WindowModel {
 public:
  WindowModel(const Pipeline::Impl& p, const StageModels& models, const GenerateRequest& r, const Resolved& rs,
              const TextContext& text, const WindowContext& context, Run& run)
      : p_(p), models_(models), r_(r), rs_(rs), text_(text), run_(run) {
    boundary_ = p.info.defaults.boundary_ratio * float(p.info.defaults.num_train_timesteps);
    const Patch& patch = p.info.transformer.patch;
    tokens_ = (rs.latent_frames / patch.t) * (rs.latent_height / patch.h) * (rs.latent_width / patch.w);
    if (context.mode == ContextConditioning::per_token)
      context_tokens_ = tokens_ / (rs.latent_frames / patch.t) * (context.latents.dim(1) / patch.t);
  }

  // The flow prediction at timestep t; numerical_error when it is not finite.
  Tensor operator()(const Tensor& x, float t) const {
    Tensor v = predict(x, t);
    require_finite(v, "the transformer's output at timestep " + std::to_string(t));
    return v;
  }

 private:
  Tensor predict(const Tensor& x, float t) const {
    run_.check_cancel();
    const bool high = !models_.transformer_2 || t >= boundary_;
    const WanTransformer& model = high ? models_.transformer : *models_.transformer_2;
    const float g = high ? rs_.guidance : rs_.guidance_2;
    const bool cfg = rs_.cfg && g != 1.0f;
    const Shape one{1, x.dim(0), x.dim(1), x.dim(2), x.dim(3)};

    if (cfg && r_.batch_cfg && text_.batched.defined()) {
      Tensor both = Tensor::empty({2, x.dim(0), x.dim(1), x.dim(2), x.dim(3)}, DType::f32);
      std::memcpy(both.data<float>(), x.data<float>(), x.nbytes());
      std::memcpy(both.data<float>() + x.numel(), x.data<float>(), x.nbytes());
      const Tensor out = to_cpu(model.forward(*p_.backend, both, timesteps(t, 2), text_.batched));
      return guide(out.select(0), out.select(1), g);
    }
    const std::vector<float> ts = timesteps(t, 1);
    const Tensor c = to_cpu(model.forward(*p_.backend, x.reshape(one), ts, text_.cond)).select(0);
    if (!cfg) return c;
    run_.check_cancel();
    const Tensor& neg = text_.uncond.defined() ? text_.uncond : text_.cond;
    const Tensor u = to_cpu(model.forward(*p_.backend, x.reshape(one), ts, neg)).select(0);
    return guide(c, u, g);
  }

  std::vector<float> timesteps(float t, int batch) const {
    if (context_tokens_ == 0) return std::vector<float>(size_t(batch), t);
    std::vector<float> ts(size_t(batch * tokens_), t);
    for (int b = 0; b < batch; ++b) std::fill_n(ts.begin() + b * tokens_, context_tokens_, 0.0f);
    return ts;
  }

  const Pipeline::Impl& p_;
  const StageModels& models_;
  const GenerateRequest& r_;
  const Resolved& rs_;
  const TextContext& text_;
  Run& run_;
  float boundary_ = 0;
  int64_t tokens_ = 0, context_tokens_ = 0;
};

// Sets latent frames [0, K) of x [C, F, h, w] (in place) to the context: clean, or noised to σ
// along the flow path with the window's own noise for those frames.
void put_context(Tensor& x, const WindowContext& context, const Tensor& noise, float sigma) {
  const Tensor& c = context.latents;
  const int64_t channels = x.dim(0), frames = x.dim(1), hw = x.dim(2) * x.dim(3), k = c.dim(1);
  const bool clean = context.mode == ContextConditioning::per_token || !noise.defined();
  const float keep = 1.0f - sigma;
  float* dst = x.data<float>();
  const float* src = c.data<float>();
  const float* eps = clean ? nullptr : noise.data<float>();
  for (int64_t ch = 0; ch < channels; ++ch) {
    float* d = dst + ch * frames * hw;
    const float* s = src + ch * k * hw;
    if (clean) {
      std::memcpy(d, s, size_t(k * hw) * sizeof(float));
    } else {
      const float* e = eps + ch * frames * hw;
      for (int64_t i = 0; i < k * hw; ++i) d[i] = keep * s[i] + sigma * e[i];
    }
  }
}

// The sampler's denoiser: the context frames are put into x before every model call.
class ContextDenoiser final : public Denoiser {
 public:
  ContextDenoiser(FlowDenoiser& inner, const WindowContext& context, const Tensor& noise)
      : inner_(inner), context_(context), noise_(noise) {}
  NoisePath path() const override { return NoisePath::flow; }
  float timestep(float sigma) const override { return inner_.timestep(sigma); }
  Denoised denoise(const Tensor& x, float sigma) override {
    Tensor in = x.clone();
    put_context(in, context_, noise_, sigma);
    return inner_.denoise(in, sigma);
  }

 private:
  FlowDenoiser& inner_;
  const WindowContext& context_;
  const Tensor& noise_;
};

class RunObserver final : public StepObserver {
 public:
  explicit RunObserver(Run& run) : run_(run) {}
  StepAction on_step(const StepInfo& info) override {
    run_.step_done(info.step + 1, info.seconds);  // throws cancelled when asked to stop
    return StepAction::proceed;
  }

 private:
  Run& run_;
};

}  // namespace

Tensor denoise_window(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs, const TextContext& text,
                      const WindowContext& context, uint64_t stream, Run& run) {
  const Shape shape{rs.channels, rs.latent_frames, rs.latent_height, rs.latent_width};
  const Tensor& c = context.latents;
  require(c.defined() && c.is_cpu() && c.dtype() == DType::f32 && c.rank() == 4 && c.dim(0) == shape[0] &&
              c.dim(1) >= 1 && c.dim(1) < shape[1] && c.dim(2) == shape[2] && c.dim(3) == shape[3],
          StatusCode::internal, "denoise_window: context latents " + c.shape().str() + " do not fit the window " +
                                    shape.str());
  Rng rng(r.seed, stream);
  const Tensor noise = rng.normal(shape);  // this stream; the sampler's own draws follow

  const StageModels models = stage_models(p);  // offload: uploaded for this window, freed after it
  const WindowModel model(p, models, r, rs, text, context, run);
  FlowDenoiser flow([&model](const Tensor& x, float t) { return model(x, t); },
                    schedule_timesteps(rs.sigmas, p.info.defaults.num_train_timesteps));
  ContextDenoiser denoiser(flow, context, noise);
  auto sampler = make_sampler(rs.sampler);
  RunObserver observer(run);
  run.begin_stage("denoise", rs.steps);
  Tensor latents = sampler->sample(denoiser, noise, rs.sigmas.sigmas, rng, observer);
  run.end_stage();
  put_context(latents, {context.latents, ContextConditioning::per_token}, Tensor(), 0.0f);  // exactly the context
  return latents;
}

}  // namespace reel::pipeline
