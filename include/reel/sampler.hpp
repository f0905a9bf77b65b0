// Samplers: one signature for all, a denoiser contract, typed step reports, cancel, a registry.
//
// The denoiser maps (x, σ) → x0, the clean-data prediction. Adapters turn a flow (velocity),
// eps or v model into one, so samplers never branch on the model; they only ask the
// denoiser's NoisePath for α(σ) (flow: x = (1−σ)·x0 + σ·ε; ve: x = x0 + σ·ε). A sampler is
//   Tensor sample(Denoiser&, Tensor x, std::span<const float> sigmas, Rng&, StepObserver&)
// with x the starting sample at sigmas[0] and N = sigmas.size() − 1 steps. Sampler math runs on
// CPU f32 tensors; element-wise loops run on reel::parallel_for, and each element's arithmetic
// is the same whatever the thread count, so results are bit-identical on 1 or 64 threads.
//
// Cancel: after each step the sampler calls observer.on_step(info). Returning
// StepAction::cancel makes the sampler throw reel::Error(StatusCode::cancelled) right away:
// no further model call is made (so it stops within one step).
//
//   reel::FlowDenoiser denoiser(
//       [&](const reel::Tensor& x, float t) { return model.forward(x, t, context); },  // velocity
//       reel::schedule_timesteps(schedule));
//   auto sampler = reel::make_sampler("unipc");           // or "euler", "dpmpp_2m:...", ...
//   reel::Rng rng(seed);
//   reel::Tensor x = rng.normal({1, 16, 21, 60, 104});
//   reel::CallbackObserver progress([](const reel::StepInfo& s) {
//     std::printf("step %d/%d sigma %.3f\n", s.step + 1, s.total, s.sigma);
//     return reel::StepAction::proceed;
//   });
//   reel::Tensor latents = sampler->sample(denoiser, x, schedule.sigmas, rng, progress);
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "reel/export.hpp"
#include "reel/options.hpp"
#include "reel/rng.hpp"
#include "reel/schedule.hpp"
#include "reel/tensor.hpp"

namespace reel {

// ---------------------------------------------------------------- denoiser contract

// How noise enters the sample: x_σ = α(σ)·x0 + σ·ε.
enum class NoisePath : uint8_t {
  flow = 0,  // rectified flow (Wan, SD3, Flux): α(σ) = 1 − σ, σ ∈ [0, 1]
  ve = 1,    // variance exploding (k-diffusion's convention; eps/v models after scaling): α = 1
};
inline float path_alpha(NoisePath path, float sigma) { return path == NoisePath::flow ? 1.0f - sigma : 1.0f; }

struct Denoised {
  Tensor x0;  // f32, CPU, the shape of x: the clean-data prediction at σ
  // Optional: dx/dσ as the model predicted it (a flow model's raw output v, in the model's
  // dtype). Euler-type samplers step along it directly when present, which is what diffusers
  // does (x + dσ·v), instead of recovering it as (x − x0)/σ; its dtype tells them the model
  // dtype for diffusers' casts.
  Tensor velocity;
};

class REEL_API Denoiser {
 public:
  virtual ~Denoiser() = default;
  virtual NoisePath path() const = 0;
  // The model timestep used at σ (reported in StepInfo).
  virtual float timestep(float sigma) const = 0;
  // x: f32 CPU. Must return x0 of x's shape (the sampler checks and names a mismatch).
  virtual Denoised denoise(const Tensor& x, float sigma) = 0;
  Tensor operator()(const Tensor& x, float sigma) { return denoise(x, sigma).x0; }
};

// A model called as model(x, timestep) → output (same shape as x; f32/bf16/f16; any device).
using ModelFn = std::function<Tensor(const Tensor& x, float timestep)>;
// σ → model timestep.
using TimestepFn = std::function<float(float sigma)>;

// t = σ·T (flow models; diffusers FlowMatchEuler's timesteps).
REEL_API TimestepFn flow_timesteps(int num_train_timesteps = 1000);
// The schedule's own timestep where σ is one of its sigmas (exact float match; UniPC's
// truncated integers), σ·T elsewhere (e.g. Heun's or a midpoint's intermediate sigmas).
REEL_API TimestepFn schedule_timesteps(const Schedule& schedule, int num_train_timesteps = 1000);

struct FlowDenoiserOptions {
  // diffusers computes σ·v in the model output's dtype (σ is a 0-d f32 tensor, v is bf16, and
  // torch rounds σ to bf16 too): x0 = x − rnd(rnd(σ)·v). true follows diffusers; false keeps
  // σ·v in f32.
  bool round_product_to_output_dtype = true;
};

// Flow (velocity) models: x0 = x − σ·v. NoisePath::flow. Also reports v as Denoised::velocity.
class REEL_API FlowDenoiser : public Denoiser {
 public:
  FlowDenoiser(ModelFn model, TimestepFn timestep, FlowDenoiserOptions options = {});
  NoisePath path() const override { return NoisePath::flow; }
  float timestep(float sigma) const override { return timestep_(sigma); }
  Denoised denoise(const Tensor& x, float sigma) override;

 private:
  ModelFn model_;
  TimestepFn timestep_;
  FlowDenoiserOptions options_;
};

// eps-prediction (VP-trained) models seen on the VE path (k-diffusion's convention): the model
// gets x/√(σ²+1) and x0 = x − σ·eps. Start from x = σ₀·noise.
class REEL_API EpsDenoiser : public Denoiser {
 public:
  EpsDenoiser(ModelFn model, TimestepFn timestep);
  NoisePath path() const override { return NoisePath::ve; }
  float timestep(float sigma) const override { return timestep_(sigma); }
  Denoised denoise(const Tensor& x, float sigma) override;

 private:
  ModelFn model_;
  TimestepFn timestep_;
};

// v-prediction models on the VE path: x0 = x/(σ²+1) − σ/√(σ²+1)·v(x/√(σ²+1)).
class REEL_API VDenoiser : public Denoiser {
 public:
  VDenoiser(ModelFn model, TimestepFn timestep);
  NoisePath path() const override { return NoisePath::ve; }
  float timestep(float sigma) const override { return timestep_(sigma); }
  Denoised denoise(const Tensor& x, float sigma) override;

 private:
  ModelFn model_;
  TimestepFn timestep_;
};

// ---------------------------------------------------------------- step reports and cancel

struct StepInfo {
  int step = 0;            // the step just finished, 0-based
  int total = 0;           // steps in this run
  float sigma = 0;         // noise level at the start of the step
  float sigma_next = 0;    // noise level the step went to
  float timestep = 0;      // model timestep at sigma
  double seconds = 0;      // wall time of this step (model calls included)
  int model_calls = 0;     // denoiser calls this step made
  // Views, valid during on_step only (the sampler may reuse the memory): clone() to keep.
  Tensor x;   // the sample after the step (at sigma_next)
  Tensor x0;  // the denoiser's prediction made at sigma
};

enum class StepAction : uint8_t { proceed = 0, cancel = 1 };

class REEL_API StepObserver {
 public:
  virtual ~StepObserver() = default;
  virtual StepAction on_step(const StepInfo& info) = 0;
};

// Observes nothing, never cancels.
class REEL_API NoObserver final : public StepObserver {
 public:
  StepAction on_step(const StepInfo&) override { return StepAction::proceed; }
};

// Wraps a callable StepAction(const StepInfo&).
class REEL_API CallbackObserver final : public StepObserver {
 public:
  explicit CallbackObserver(std::function<StepAction(const StepInfo&)> fn) : fn_(std::move(fn)) {}
  StepAction on_step(const StepInfo& info) override { return fn_ ? fn_(info) : StepAction::proceed; }

 private:
  std::function<StepAction(const StepInfo&)> fn_;
};

// ---------------------------------------------------------------- samplers

// A Sampler holds only its configuration: one object may run many samplings, also from
// several threads at once (each call keeps its state on its own stack).
class REEL_API Sampler {
 public:
  virtual ~Sampler() = default;
  // The spec that recreates this sampler, e.g. "unipc:order=2,variant=bh2".
  virtual std::string name() const = 0;
  // x: the sample at sigmas[0] (any dtype, CPU; the caller's tensor is never modified).
  // Returns the f32 sample at sigmas.back(). Throws invalid_argument for bad sigmas (fewer than
  // 2, not finite, negative, increasing; above 1 on the flow path), cancelled when the observer
  // cancels, and whatever the denoiser throws.
  virtual Tensor sample(Denoiser& denoiser, Tensor x, std::span<const float> sigmas, Rng& rng,
                        StepObserver& observer) = 0;
};

// ---------------------------------------------------------------- writing a sampler
// What every built-in sampler does around its own update rule, for samplers written outside
// the library (examples/custom_sampler.cpp). `sampler` names the sampler in messages.

// A private f32 CPU copy of the starting sample (the caller's tensor is never written);
// invalid_argument when x is undefined, empty or an integer tensor.
REEL_API Tensor start_sample(const Tensor& x, std::string_view sampler);
// At least 2 sigmas, finite, >= 0, strictly decreasing; <= 1 on the flow path; else invalid_argument.
REEL_API void check_sigmas(std::span<const float> sigmas, NoisePath path, std::string_view sampler);
// denoiser.denoise(x, σ) with the result checked (x0 defined, of x's shape) and brought to f32
// CPU; a velocity, when present, is checked and brought to the CPU (its dtype kept).
REEL_API Denoised denoise_checked(Denoiser& denoiser, const Tensor& x, float sigma, std::string_view sampler);

// Times each step and reports it to the observer as a StepInfo; throws Error(cancelled) when
// the observer asks to stop.
//   StepReporter report(observer, denoiser, sigmas, "midpoint");
//   for (int i = 0; i < steps; ++i) { report.begin_step(); ...; report.end_step(i, x, x0, 2); }
class REEL_API StepReporter {
 public:
  StepReporter(StepObserver& observer, const Denoiser& denoiser, std::span<const float> sigmas,
               std::string_view sampler);
  void begin_step();
  // step: 0-based; x: the sample after the step; x0: the prediction made at sigmas[step].
  void end_step(int step, const Tensor& x, const Tensor& x0, int model_calls);

 private:
  StepObserver& observer_;
  const Denoiser& denoiser_;
  std::span<const float> sigmas_;
  std::string sampler_;
  double start_ = 0;  // seconds on a steady clock
};

// ---------------------------------------------------------------- the registry
// A factory builds a sampler from its options (read each with a getter: the registry rejects
// options the factory did not read).
using SamplerFactory = std::function<std::unique_ptr<Sampler>(const Options& options)>;

// Throws invalid_argument if the name is taken (or empty, or contains ':' ',' '=' or a space).
// `schedule` (a schedule spec, e.g. "flow_euler") is what a pipeline pairs the sampler with
// when a request names a sampler but no schedule; empty: the model's default schedule.
REEL_API void register_sampler(std::string_view name, std::string_view description, SamplerFactory factory,
                               std::string_view schedule = {});
// "name" or "name:key=value,...", e.g. "unipc:order=3,variant=bh1". Unknown name: not_found.
REEL_API std::unique_ptr<Sampler> make_sampler(std::string_view spec);
REEL_API std::unique_ptr<Sampler> make_sampler(std::string_view name, const Options& options);
REEL_API std::vector<RegistryEntry> list_samplers();
// The entry of a registered sampler by name (not a spec); nullopt when there is none.
REEL_API std::optional<RegistryEntry> find_sampler(std::string_view name);

}  // namespace reel
