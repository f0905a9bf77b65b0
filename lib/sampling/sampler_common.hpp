// Internal: what every built-in sampler shares: input checks, a checked denoiser call, the
// per-step report (timing, observer, cancel) and the parallel element-wise loop.
#pragma once
#include <chrono>
#include <cstdint>
#include <span>

#include "parallel.hpp"
#include "reel/sampler.hpp"

namespace reel::detail {

// A private f32 CPU copy of the starting sample (the caller's tensor is never written).
Tensor start_sample(const Tensor& x, const char* sampler);
// At least 2 sigmas, finite, >= 0, strictly decreasing; <= 1 on the flow path.
void check_sigmas(std::span<const float> sigmas, NoisePath path, const char* sampler);
// denoiser.denoise(x, σ) with the result checked (x0 defined, x's shape) and brought to f32 CPU;
// a velocity, when present, is checked and brought to the CPU (its dtype kept).
Denoised denoise_checked(Denoiser& denoiser, const Tensor& x, float sigma, const char* sampler);

// Calls fn(i) for every element index; deterministic: fn(i) must only touch element i.
// The grain is large: these loops are memory-bound, threads pay off only on big latents.
template <class F>
void for_each_element(int64_t n, F&& fn) {
  parallel_for(n, 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) fn(i);
  });
}

// Times each step and reports it; throws Error(cancelled) when the observer asks.
class StepReporter {
 public:
  StepReporter(StepObserver& observer, const Denoiser& denoiser, std::span<const float> sigmas, const char* sampler)
      : observer_(observer), denoiser_(denoiser), sigmas_(sigmas), sampler_(sampler) {}
  void begin_step() { start_ = std::chrono::steady_clock::now(); }
  void end_step(int step, const Tensor& x, const Tensor& x0, int model_calls);

 private:
  StepObserver& observer_;
  const Denoiser& denoiser_;
  std::span<const float> sigmas_;
  const char* sampler_;
  std::chrono::steady_clock::time_point start_{};
};

}  // namespace reel::detail
