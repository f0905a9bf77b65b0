// The built-in samplers, with typed configurations (the registry names and their options in
// brackets). Each is an object behind reel::Sampler; make_sampler("name:opts") builds the same.
//
//   auto unipc = reel::make_unipc_sampler({.order = 3, .variant = reel::UniPCVariant::bh1});
//   auto same  = reel::make_sampler("unipc:order=3,variant=bh1");
//
// Which to use (see docs/samplers.md): Wan and other flow models: "unipc" (diffusers' default,
// 2nd order, best at 20–50 steps) or "euler" (FlowMatchEuler); "dpmpp_2m" matches diffusers'
// DPMSolverMultistep (original Wan's "dpm++"); "heun" costs two model calls a step;
// "euler_a", "dpmpp_2m_sde" add fresh noise each step; "lcm" is for distilled few-step models.
#pragma once
#include <memory>

#include "reel/sampler.hpp"

namespace reel {

// ["euler": follow_model_dtype=true] Euler on dx/dσ. With a flow denoiser this is diffusers'
// FlowMatchEulerDiscreteScheduler: x + (σ' − σ)·v, and when the model output is bf16/f16 and
// follow_model_dtype is set, dσ·v is rounded to that dtype and so is the new sample (diffusers
// casts prev_sample to the model dtype).
struct EulerConfig {
  bool follow_model_dtype = true;
};
REEL_API std::unique_ptr<Sampler> make_euler_sampler(const EulerConfig& config = {});

// ["euler_a": eta=1, s_noise=1] Euler ancestral: a deterministic step down to σ_down, then
// fresh noise up to σ' (k-diffusion's split, done in VE variables x/α, σ/α so it also holds on
// the flow path). eta = 0 is plain Euler.
struct EulerAncestralConfig {
  float eta = 1.0f;
  float s_noise = 1.0f;
};
REEL_API std::unique_ptr<Sampler> make_euler_ancestral_sampler(const EulerAncestralConfig& config = {});

// ["heun"] Heun's method (Karras et al. 2022, alg. 1): two model calls a step, Euler on the
// last step when it reaches σ = 0.
REEL_API std::unique_ptr<Sampler> make_heun_sampler();

// ["dpmpp_2m" (alias "dpm_flow"): lower_order_final=true] DPM-Solver++(2M) (Lu et al. 2022),
// in diffusers' DPMSolverMultistepScheduler form (midpoint, x0 prediction, α(σ) from the noise
// path). First order on the first step and on a last step to σ = 0, or (lower_order_final)
// on the last step of a run shorter than 15 steps.
struct DpmPP2MConfig {
  bool lower_order_final = true;
};
REEL_API std::unique_ptr<Sampler> make_dpmpp_2m_sampler(const DpmPP2MConfig& config = {});

// ["dpmpp_2m_sde": eta=1, s_noise=1] DPM-Solver++(2M) SDE, midpoint (diffusers'
// sde-dpmsolver++ with eta = 1; k-diffusion's sample_dpmpp_2m_sde). eta = 0 gives DPM++ 2M.
struct DpmPP2MSdeConfig {
  float eta = 1.0f;
  float s_noise = 1.0f;
};
REEL_API std::unique_ptr<Sampler> make_dpmpp_2m_sde_sampler(const DpmPP2MSdeConfig& config = {});

// ["unipc": order=2, variant=bh2, lower_order_final=true, corrector=true] UniPC (Zhao et al.
// 2023), predictor–corrector, exactly as diffusers' UniPCMultistepScheduler with predict_x0
// (reference/wan.md §3.1). Orders 1–3. One deliberate difference: diffusers' bh1 returns NaN
// on a last step to σ = 0 (α·B(h)·0 with B(h) = −∞); reel returns the x0 prediction there, as
// bh2 does. lower_order_final: the last steps use order min(order, steps left), as diffusers.
enum class UniPCVariant : uint8_t { bh1 = 1, bh2 = 2 };
struct UniPCConfig {
  int order = 2;
  UniPCVariant variant = UniPCVariant::bh2;
  bool lower_order_final = true;
  bool corrector = true;  // false: UniP only (diffusers' disable_corrector on every step)
};
REEL_API std::unique_ptr<Sampler> make_unipc_sampler(const UniPCConfig& config = {});

// ["lcm"] Consistency-model / LCM multistep sampling for distilled models: x0 = D(x, σ), then
// x' = α(σ')·x0 + σ'·ε with fresh noise ε (x' = x0 on the last step to σ = 0).
REEL_API std::unique_ptr<Sampler> make_lcm_sampler();

}  // namespace reel
