// The denoising stage, one loop for every window (generate() and each chunk of a video
// session): the transformer(s) wrapped as the sampler's denoiser — the window's fixed latent
// frames put into x before every model call (clean with per-token timestep 0, or noised to the
// current σ), I2V's extra channels appended, classifier-free guidance with the conditional and
// unconditional passes in one batch of 2 or two calls, the A14B expert switch — then the
// sampler over the schedule.
#include "sampling/exact_float.hpp"  // first: the noising of replaced frames rounds op by op

#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <thread>

#include "pipeline/pipeline_impl.hpp"
#include "pipeline/rendezvous.hpp"
#include "pipeline/stage_models.hpp"
#include "pipeline/step_cache.hpp"
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

// The guided Wan transformer(s) for one window's conditioning: the velocities of n latents at
// timestep t from one model call (a batch of n, or 2n with batched CFG).
class GuidedWan {
 public:
  GuidedWan(const Pipeline::Impl& p, const StageModels& models, const GenerateRequest& r, const Resolved& rs,
            const TextContext& text, const Conditioning& cond, Run& run)
      : p_(p), models_(models), r_(r), rs_(rs), text_(text), cond_(cond), run_(run) {
    boundary_ = p.info.defaults.boundary_ratio * float(p.info.defaults.num_train_timesteps);
    const Patch& patch = p.info.transformer.patch;
    const int64_t token_frames = rs.latent_frames / patch.t;
    tokens_ = token_frames * (rs.latent_height / patch.h) * (rs.latent_width / patch.w);
    if (cond.fixed.defined() && cond.fixed_mode == ContextConditioning::per_token)
      fixed_tokens_ = tokens_ / token_frames * (cond.fixed.dim(1) / patch.t);
  }

  bool fixed_per_token() const { return fixed_tokens_ > 0; }

  // The guided flow predictions at timestep t, one per input; numerical_error when one is not finite.
  std::vector<Tensor> velocity(std::span<const Tensor* const> xs, float t) {
    run_.check_cancel();
    const int n = int(xs.size());
    // A14B: the high-noise expert while t >= boundary, the low-noise one after.
    const bool high = !models_.transformer_2 || t >= boundary_;
    const WanTransformer& model = high ? models_.transformer : *models_.transformer_2;
    const float g = high ? rs_.guidance : rs_.guidance_2;
    const bool cfg = rs_.cfg && g != 1.0f;
    const bool together = cfg && r_.batch_cfg && text_.batched.defined();
    std::vector<Tensor> ins;
    for (const Tensor* x : xs) ins.push_back(model_input(*x));
    const Tensor& in0 = ins[0];
    const Shape item{in0.dim(0), in0.dim(1), in0.dim(2), in0.dim(3)};
    const int copies = together ? 2 : 1;
    Tensor batch = Tensor::empty({int64_t(copies * n), item[0], item[1], item[2], item[3]}, DType::f32);
    for (int c = 0; c < copies; ++c)
      for (int i = 0; i < n; ++i) put(batch, int64_t(c * n + i) * in0.numel(), ins[size_t(i)]);
    const std::vector<float> ts = timesteps(t, copies * n);
    const Tensor out = model.forward(*p_.backend, batch, ts, text_for(together ? Text::both : Text::cond, n),
                                     image_for(copies * n))
                           .to(Device::cpu());
    Tensor uncond;
    if (cfg && !together) {
      run_.check_cancel();
      uncond = model.forward(*p_.backend, batch, ts, text_for(Text::uncond, n), image_for(n)).to(Device::cpu());
    }
    std::vector<Tensor> vs;
    for (int i = 0; i < n; ++i) {
      Tensor v = out.select(i);
      if (cfg) v = guide(v, together ? out.select(n + i) : uncond.select(i), g);
      require_finite(v, "the transformer's output at timestep " + std::to_string(t));
      vs.push_back(std::move(v));
    }
    return vs;
  }

 private:
  enum class Text { cond, uncond, both };

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

  // The text context of n items: the prompt's, the negative prompt's, or both (n of each).
  const Tensor& text_for(Text which, int n) {
    const Tensor& neg = text_.uncond.defined() ? text_.uncond : text_.cond;
    if (n == 1) return which == Text::both ? text_.batched : which == Text::cond ? text_.cond : neg;
    Tensor& cached = text_cache_[{int(which), n}];
    if (!cached.defined()) {
      std::vector<const Tensor*> parts;
      for (int i = 0; i < n; ++i) parts.push_back(which == Text::uncond ? &neg : &text_.cond);
      if (which == Text::both)
        for (int i = 0; i < n; ++i) parts.push_back(&neg);
      cached = ops::concat(*p_.backend, parts, 0);
    }
    return cached;
  }

  // Wan 2.1 I2V's image context repeated for a batch of `items`; null for other models.
  const Tensor* image_for(int items) {
    if (!cond_.image_context.defined()) return nullptr;
    if (items == 1) return &cond_.image_context;
    Tensor& cached = image_cache_[items];
    if (!cached.defined()) cached = ops::concat(*p_.backend, std::vector<const Tensor*>(size_t(items), &cond_.image_context), 0);
    return &cached;
  }

  const Pipeline::Impl& p_;
  const StageModels& models_;
  const GenerateRequest& r_;
  const Resolved& rs_;
  const TextContext& text_;
  const Conditioning& cond_;
  Run& run_;
  float boundary_ = 0;
  int64_t tokens_ = 0, fixed_tokens_ = 0;
  std::map<std::pair<int, int>, Tensor> text_cache_;
  std::map<int, Tensor> image_cache_;
};

// One window's denoiser for the sampler: the fixed frames put into x (clean, or noised to σ
// with the window's own noise), then x0 = x − σ·v with v from `velocity`.
class WindowDenoiser final : public Denoiser {
 public:
  WindowDenoiser(const Tensor& fixed, bool per_token, const Tensor& noise, ModelFn velocity, TimestepFn timestep)
      : fixed_(fixed), per_token_(per_token), noise_(noise), flow_(std::move(velocity), std::move(timestep)) {}
  NoisePath path() const override { return NoisePath::flow; }
  float timestep(float sigma) const override { return flow_.timestep(sigma); }
  Denoised denoise(const Tensor& x, float sigma) override {
    if (!fixed_.defined()) return flow_.denoise(x, sigma);
    Tensor in = x.clone();
    put_fixed(in, fixed_, per_token_ ? Tensor() : noise_, sigma);
    return flow_.denoise(in, sigma);
  }

 private:
  const Tensor& fixed_;
  bool per_token_;
  const Tensor& noise_;
  FlowDenoiser flow_;
};

// Each sampler step to the run's progress, with a preview of its x0 estimate when asked for.
// Steps are numbered from `offset` + 1 (variants in several groups: one stage for all).
class RunObserver final : public StepObserver {
 public:
  // `previews`: the pipeline that draws them (draw_preview), null for none.
  RunObserver(Run& run, const Pipeline::Impl* previews, const Tensor& fixed, int offset = 0, int total = 0)
      : run_(run), previews_(previews), fixed_(fixed), offset_(offset), total_(total) {}
  StepAction on_step(const StepInfo& info) override {
    const int step = offset_ + info.step + 1;
    if (!previews_) {
      run_.step_done(step, info.seconds);  // throws cancelled when asked to stop
      return StepAction::proceed;
    }
    Tensor x0 = info.x0.clone();
    if (fixed_.defined()) put_fixed(x0, fixed_, Tensor(), 0.0f);  // the model says nothing useful there
    const PreviewImage image = draw_preview(*previews_, x0);
    const Preview preview{step, total_ > 0 ? total_ : info.total, image.frames, image.height, image.width, image.rgb};
    run_.step_done(step, info.seconds, &preview);
    return StepAction::proceed;
  }

 private:
  Run& run_;
  const Pipeline::Impl* previews_;
  const Tensor& fixed_;
  int offset_, total_;
};

// The fixed latents must fit the window.
void check_fixed(const Conditioning& cond, const Shape& shape) {
  const Tensor& fixed = cond.fixed;
  require(!fixed.defined() || (fixed.is_cpu() && fixed.dtype() == DType::f32 && fixed.rank() == 4 &&
                               fixed.dim(0) == shape[0] && fixed.dim(1) >= 1 && fixed.dim(1) < shape[1] &&
                               fixed.dim(2) == shape[2] && fixed.dim(3) == shape[3]),
          StatusCode::internal,
          "denoise: fixed latents " + fixed.shape().str() + " do not fit the window " + shape.str());
}

// The starting noise of a window: the caller's, or Rng(seed, stream).normal (the sampler's own
// draws, for ancestral samplers, follow on `rng`).
Tensor window_noise(const GenerateRequest& r, const Shape& shape, Rng& rng) {
  if (!r.initial_noise.defined()) return rng.normal(shape);
  return host_f32(r.initial_noise.reshape(shape));
}

}  // namespace

Tensor denoise(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs, const TextContext& text,
               const Conditioning& cond, uint64_t stream, Run& run, GenerateResult* counts) {
  const Shape shape{rs.channels, rs.latent_frames, rs.latent_height, rs.latent_width};
  check_fixed(cond, shape);
  Rng rng(r.seed, stream);
  const Tensor noise = window_noise(r, shape, rng);
  auto sampler = make_sampler(rs.sampler);
  const StageModels models = stage_models(p, r);  // offload: uploaded for this stage, freed before the decode
  GuidedWan model(p, models, r, rs, text, cond, run);
  const TimestepFn timestep = schedule_timesteps(rs.sigmas, p.info.defaults.num_train_timesteps);
  std::optional<StepCache> cache;
  if (!r.step_cache.method.empty() && r.step_cache.threshold > 0)
    cache.emplace(r.step_cache, timestep(rs.sigmas.sigmas[size_t(rs.steps) - 1]));
  const StepCache::Model guided = [&](const Tensor& x, float t) {
    const Tensor* one[] = {&x};
    return std::move(model.velocity(one, t)[0]);
  };
  int calls = 0;
  WindowDenoiser denoiser(
      cond.fixed, model.fixed_per_token(), noise,
      [&](const Tensor& x, float t) {
        ++calls;
        return cache ? cache->velocity(x, t, guided) : guided(x, t);
      },
      timestep);
  RunObserver observer(run, r.previews ? &p : nullptr, cond.fixed);
  run.begin_stage("denoise", rs.steps);
  Tensor latents = sampler->sample(denoiser, noise, rs.sigmas.sigmas, rng, observer);
  run.end_stage();
  if (cond.fixed.defined()) put_fixed(latents, cond.fixed, Tensor(), 0.0f);  // exactly the fixed frames
  if (counts) {
    counts->transformer_calls = cache ? cache->computed() : calls;
    counts->skipped_calls = cache ? cache->skipped() : 0;
  }
  return latents;
}

std::vector<GenerateResult> denoise_variants(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs,
                                             const TextContext& text, const Conditioning& cond,
                                             std::span<const uint64_t> seeds, int batch, Run& run) {
  const Shape shape{rs.channels, rs.latent_frames, rs.latent_height, rs.latent_width};
  check_fixed(cond, shape);
  const int n = int(seeds.size());
  const int group = batch <= 0 ? n : std::min(batch, n);
  const StageModels models = stage_models(p, r);
  GuidedWan model(p, models, r, rs, text, cond, run);
  const Pipeline::Impl* previews = r.previews ? &p : nullptr;
  const int threads = num_threads();
  std::vector<GenerateResult> out(static_cast<size_t>(n));
  const int stage_steps = rs.steps * ((n + group - 1) / group);
  const bool caching = !r.step_cache.method.empty() && r.step_cache.threshold > 0;
  const TimestepFn timestep = schedule_timesteps(rs.sigmas, p.info.defaults.num_train_timesteps);
  run.begin_stage("denoise", stage_steps);
  for (int first = 0; first < n; first += group) {
    const int m = std::min(group, n - first);
    Rendezvous meet(m, [&](std::span<const Tensor* const> xs, float t) { return model.velocity(xs, t); });
    std::vector<std::exception_ptr> errors(static_cast<size_t>(m));
    auto loop = [&](int i) {
      std::exception_ptr failure;
      try {
        set_num_threads(threads);  // the caller's setting (it is per thread)
        Rng rng(seeds[size_t(first + i)], 0);
        const Tensor noise = rng.normal(shape);  // as generate() with this seed draws it
        auto sampler = make_sampler(rs.sampler);
        // Each variant caches on its own (it skips where its own inputs are predictable).
        std::optional<StepCache> cache;
        if (caching) cache.emplace(r.step_cache, timestep(rs.sigmas.sigmas[size_t(rs.steps) - 1]));
        int calls = 0;
        const auto velocity = [&](const Tensor& x, float t) {
          ++calls;
          if (!cache) return meet.call(i, &x, t);
          bool computed = false;
          Tensor v = cache->velocity(x, t, [&](const Tensor& in, float tt) {
            computed = true;
            return meet.call(i, &in, tt);
          });
          if (!computed) (void)meet.call(i, nullptr, t);  // skipped: meet the others all the same
          return v;
        };
        WindowDenoiser denoiser(cond.fixed, model.fixed_per_token(), noise, velocity, timestep);
        // The first variant of each group reports the steps (and its previews); the others are quiet.
        RunObserver reporter(run, previews, cond.fixed, rs.steps * (first / group), stage_steps);
        NoObserver quiet;
        StepObserver& observer = i == 0 ? static_cast<StepObserver&>(reporter) : quiet;
        Tensor latents = sampler->sample(denoiser, noise, rs.sigmas.sigmas, rng, observer);
        if (cond.fixed.defined()) put_fixed(latents, cond.fixed, Tensor(), 0.0f);
        GenerateResult& result = out[size_t(first + i)];
        result.latents = std::move(latents);
        result.transformer_calls = cache ? cache->computed() : calls;
        result.skipped_calls = cache ? cache->skipped() : 0;
      } catch (...) {
        failure = std::current_exception();
      }
      errors[size_t(i)] = failure;
      meet.leave(failure);
    };
    std::vector<std::thread> workers;
    for (int i = 1; i < m; ++i) workers.emplace_back(loop, i);
    loop(0);
    for (std::thread& w : workers) w.join();
    for (const std::exception_ptr& e : errors)
      if (e) std::rethrow_exception(e);
  }
  run.end_stage();
  return out;
}

}  // namespace reel::pipeline
