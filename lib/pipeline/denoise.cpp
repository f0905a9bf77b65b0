// The denoising stage: the transformer(s) wrapped as one flow model for the samplers —
// image conditioning of the input (Wan 2.1/2.2 I2V channels, TI2V first-latent replacement
// with per-token timesteps), classifier-free guidance with the conditional and unconditional
// passes in one batch of 2, the A14B expert switch — then the sampler over the schedule.
#include "sampling/exact_float.hpp"  // first: diffusers' op-by-op rounding in the CFG combine

#include <chrono>
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

// x f32 [C, F, h, w] → the CPU f32 tensor the transformer takes for this variant.
Tensor model_input(const Tensor& x, const ImageCondition& image) {
  if (image.channels.defined()) {  // I2V: [latents, mask, condition] on channels
    Tensor in = Tensor::empty({x.dim(0) + image.channels.dim(0), x.dim(1), x.dim(2), x.dim(3)}, DType::f32);
    put(in, 0, x);
    put(in, x.numel(), image.channels);
    return in;
  }
  if (image.first_latent.defined()) {  // TI2V: (1 − m)·cond + m·x with m = 0 on latent frame 0, 1 elsewhere
    Tensor in = x.clone();
    const int64_t c = x.dim(0), f = x.dim(1), hw = x.dim(2) * x.dim(3);
    const float* cond = image.first_latent.data<float>();
    float* dst = in.data<float>();
    for (int64_t ci = 0; ci < c; ++ci) std::memcpy(dst + ci * f * hw, cond + ci * hw, size_t(hw) * sizeof(float));
    return in;
  }
  return x;
}

class WanFlowModel {
 public:
  WanFlowModel(const Pipeline::Impl& p, const StageModels& models, const GenerateRequest& r, const Resolved& rs,
               const TextContext& text, const ImageCondition& image, Run& run)
      : p_(p), models_(models), r_(r), rs_(rs), text_(text), image_(image), run_(run) {
    if (image.image_context.defined() && text.batched.defined() && r.batch_cfg)
      image_batched_ = ops::concat(*p.backend, {&image.image_context, &image.image_context}, 0);
    boundary_ = p.info.defaults.boundary_ratio * float(p.info.defaults.num_train_timesteps);
  }

  // The flow prediction at timestep t; numerical_error when it is not finite.
  Tensor operator()(const Tensor& x, float t) {
    Tensor v = predict(x, t);
    require_finite(v, "the transformer's output at timestep " + std::to_string(t));
    return v;
  }

 private:
  Tensor predict(const Tensor& x, float t) {
    run_.check_cancel();
    // A14B: the high-noise expert while t >= boundary, the low-noise one after.
    const bool high = !models_.transformer_2 || t >= boundary_;
    const WanTransformer& model = high ? models_.transformer : *models_.transformer_2;
    const float g = high ? rs_.guidance : rs_.guidance_2;
    const bool cfg = rs_.cfg && g != 1.0f;
    const Tensor in = model_input(x, image_);
    const Shape one{1, in.dim(0), in.dim(1), in.dim(2), in.dim(3)};
    const Patch& patch = p_.info.transformer.patch;
    const int64_t tokens = (x.dim(1) / patch.t) * (x.dim(2) / patch.h) * (x.dim(3) / patch.w);

    if (cfg && r_.batch_cfg && text_.batched.defined()) {
      Tensor both = Tensor::empty({2, in.dim(0), in.dim(1), in.dim(2), in.dim(3)}, DType::f32);
      put(both, 0, in);
      put(both, in.numel(), in);
      const Tensor out = forward(model, both, timesteps(t, 2, tokens), text_.batched,
                                 image_batched_.defined() ? &image_batched_ : nullptr);
      const Tensor cpu = out.is_cpu() ? out : out.to(Device::cpu());
      return guide(cpu.select(0), cpu.select(1), g);
    }
    const Tensor* img = image_.image_context.defined() ? &image_.image_context : nullptr;
    const std::vector<float> ts = timesteps(t, 1, tokens);
    Tensor c = forward(model, in.reshape(one), ts, text_.cond, img);
    c = (c.is_cpu() ? c : c.to(Device::cpu())).select(0);
    if (!cfg) return c;
    run_.check_cancel();
    const Tensor& neg = text_.uncond.defined() ? text_.uncond : text_.cond;
    Tensor u = forward(model, in.reshape(one), ts, neg, img);
    u = (u.is_cpu() ? u : u.to(Device::cpu())).select(0);
    return guide(c, u, g);
  }

  // One timestep per batch item, or per token (TI2V with an image: 0 on the first latent frame).
  std::vector<float> timesteps(float t, int batch, int64_t tokens) const {
    if (!image_.first_latent.defined()) return std::vector<float>(size_t(batch), t);
    std::vector<float> ts(size_t(batch * tokens), t);
    const int64_t first = tokens / (rs_.latent_frames / p_.info.transformer.patch.t);  // tokens of latent frame 0
    for (int b = 0; b < batch; ++b) std::fill_n(ts.begin() + b * tokens, first, 0.0f);
    return ts;
  }

  Tensor forward(const WanTransformer& model, const Tensor& x, const std::vector<float>& ts, const Tensor& text,
                 const Tensor* image) const {
    return model.forward(*p_.backend, x, ts, text, image);
  }

  const Pipeline::Impl& p_;
  const StageModels& models_;
  const GenerateRequest& r_;
  const Resolved& rs_;
  const TextContext& text_;
  const ImageCondition& image_;
  Run& run_;
  Tensor image_batched_;
  float boundary_ = 0;
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

Tensor denoise(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs, const TextContext& text,
               const ImageCondition& image, Run& run) {
  const Shape shape{rs.channels, rs.latent_frames, rs.latent_height, rs.latent_width};
  Rng rng(r.seed);
  Tensor noise;
  if (r.initial_noise.defined()) {
    noise = r.initial_noise.reshape(shape);
    if (noise.dtype() != DType::f32) noise = noise.to(DType::f32);
  } else {
    noise = rng.normal(shape);  // stream 0; the sampler's own noise (ancestral samplers) follows
  }

  auto sampler = make_sampler(rs.sampler);
  const StageModels models = stage_models(p);  // offload: uploaded for this stage, freed before the decode
  WanFlowModel model(p, models, r, rs, text, image, run);
  FlowDenoiser denoiser([&model](const Tensor& x, float t) { return model(x, t); },
                        schedule_timesteps(rs.sigmas, p.info.defaults.num_train_timesteps));
  RunObserver observer(run);
  run.begin_stage("denoise", rs.steps);
  Tensor latents = sampler->sample(denoiser, noise, rs.sigmas.sigmas, rng, observer);
  run.end_stage();

  if (image.first_latent.defined()) latents = model_input(latents, image);  // the first frame is the image's
  return latents;
}

}  // namespace reel::pipeline
