// Noise schedules: the sigmas a sampler walks down, and the model timestep of each step.
//
// A Schedule holds N+1 sigmas (non-increasing; the last is usually 0) and N timesteps, the
// value the model is called with at each step (UniPC truncates σ·1000 to an integer, Euler
// keeps σ·1000 as is, so the sigma alone does not say it). The flow_* schedules reproduce
// diffusers to the bit (reference/wan.md §3); the others are the usual sigma shapes.
// Every schedule is also registered by name, for the CLI and the C API:
//   flow_unipc flow_euler flow_dpm flow uniform karras exponential beta
// and more can be added with register_schedule() without touching the library.
//
//   reel::Schedule s = reel::flow_unipc_schedule(50, /*shift=*/3.0);
//   // s.sigmas = {0.999999, 0.99325, ..., 0.0604, 0}, s.timesteps = {999, 993, ..., 60}
//   reel::Schedule k = reel::make_schedule("karras:sigma_min=0.03,sigma_max=14.6", 25);
//   sampler->sample(denoiser, noise, s.sigmas, rng, observer);
#pragma once
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "reel/export.hpp"
#include "reel/options.hpp"

namespace reel {

struct Schedule {
  std::vector<float> sigmas;     // N+1 noise levels, non-increasing
  std::vector<float> timesteps;  // N model timesteps, timesteps[i] belongs to sigmas[i]
  int steps() const { return int(timesteps.size()); }
};

// The flow shift map S(σ) = s·σ / (1 + (s − 1)·σ) (in double, as diffusers computes it).
constexpr double flow_shift(double sigma, double shift) { return shift * sigma / (1.0 + (shift - 1.0) * sigma); }

// diffusers UniPCMultistepScheduler(use_flow_sigmas, flow_shift): σ_k = S(linspace(1, 1/T, N+1)[k]),
// k < N, σ₀ = 1 − 1e-6 when it would be 1; timesteps = int(σ_k·T) (truncated); final σ = 0.
REEL_API Schedule flow_unipc_schedule(int steps, double shift, int num_train_timesteps = 1000);
// diffusers FlowMatchEulerDiscreteScheduler(shift): linspace over [T·σ_max, T·σ_min] of the
// already-shifted training sigmas, shifted again; timesteps = σ·T in f32 (not rounded); final 0.
REEL_API Schedule flow_euler_schedule(int steps, double shift, int num_train_timesteps = 1000);
// diffusers DPMSolverMultistepScheduler(use_flow_sigmas, flow_shift): reverse(S(1 − linspace(1,
// 1/T, N+1)))[:N]; timesteps = int(σ·T); final 0.
REEL_API Schedule flow_dpm_schedule(int steps, double shift, int num_train_timesteps = 1000);

// σ_k = S(linspace(σ_max, σ_min, N+1)[k]) for k = 0..N (the last is S(σ_min)); timesteps σ·T.
// Original Wan's solvers use flow_schedule(N, shift, 0.999, 0).
REEL_API Schedule flow_schedule(int steps, double shift, double sigma_max = 1.0, double sigma_min = 0.0,
                                int num_train_timesteps = 1000);
// flow_schedule with shift 1: sigmas evenly spaced from σ_max down to σ_min.
REEL_API Schedule uniform_schedule(int steps, double sigma_max = 1.0, double sigma_min = 0.0,
                                   int num_train_timesteps = 1000);

// The sigma shapes below give N sigmas from σ_max down to σ_min, then a final 0 (as diffusers'
// _convert_to_*). Their timesteps use the flow convention t = σ·T; a model with another
// convention maps sigmas itself (its Denoiser's timestep function).
// Karras et al. 2022 (EDM), eq. 5: (σ_max^(1/ρ) + k/(N−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ.
REEL_API Schedule karras_schedule(int steps, double sigma_min, double sigma_max, double rho = 7.0,
                                  int num_train_timesteps = 1000);
// Evenly spaced in log σ.
REEL_API Schedule exponential_schedule(int steps, double sigma_min, double sigma_max,
                                       int num_train_timesteps = 1000);
// Lee et al. 2024, "Beta sampling is all you need": σ_min + ppf_Beta(α,β)(1 − k/(N−1))·(σ_max − σ_min).
REEL_API Schedule beta_schedule(int steps, double sigma_min, double sigma_max, double alpha = 0.6,
                                double beta = 0.6, int num_train_timesteps = 1000);

// Caller-given sigmas (N+1 values: finite, >= 0, non-increasing); timesteps σ·T.
REEL_API Schedule custom_schedule(std::span<const float> sigmas, int num_train_timesteps = 1000);

// Inverse CDF of the Beta(a, b) distribution (bisection on the regularized incomplete beta).
REEL_API double beta_ppf(double p, double a, double b);

// ---------------------------------------------------------------- registry
// A factory builds a schedule of `steps` steps from its options (reading each with a getter;
// the registry rejects options it did not read).
using ScheduleFactory = std::function<Schedule(int steps, const Options& options)>;

// A sampler's or schedule's entry in its registry, with what a pipeline needs to use it.
struct RegistryEntry {
  std::string name;
  std::string description;
  // Samplers: the schedule spec a pipeline pairs the sampler with by default ("" = the model's).
  std::string schedule;
  // Schedules: a flow schedule, taking the options `shift` and `num_train_timesteps`, which a
  // pipeline fills from the request and the model when the spec leaves them out.
  bool flow_shift = false;
};

// Throws invalid_argument if the name is taken (or empty, or contains ':' or ',').
// `flow_shift`: see RegistryEntry.
REEL_API void register_schedule(std::string_view name, std::string_view description, ScheduleFactory factory,
                                bool flow_shift = false);
// "name" or "name:key=value,...", e.g. "flow_unipc:shift=5". Unknown name: not_found.
REEL_API Schedule make_schedule(std::string_view spec, int steps);
REEL_API Schedule make_schedule(std::string_view name, int steps, const Options& options);
REEL_API std::vector<RegistryEntry> list_schedules();
// The entry of a registered schedule by name (not a spec); nullopt when there is none.
REEL_API std::optional<RegistryEntry> find_schedule(std::string_view name);

}  // namespace reel
