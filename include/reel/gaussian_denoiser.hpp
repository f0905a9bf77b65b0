// An exact denoiser for Gaussian data, for checking samplers: with x0 ~ N(μ, s²) (each element
// independent) and x_σ = α(σ)·x0 + σ·ε, the posterior mean is closed-form,
//   E[x0 | x] = μ + α·s² / (α²·s² + σ²) · (x − α·μ),
// and so is the probability-flow ODE: z = (x − α·μ) / √(α²·s² + σ²) stays constant along it,
// so transport() gives the exact solution a sampler should approach as steps grow.
//
//   reel::GaussianDenoiser d(reel::NoisePath::flow, /*mean=*/0.5, /*std=*/0.3);
//   reel::Tensor x = rng.normal({4096});                       // x at σ = 1 is pure noise
//   reel::Tensor got = sampler->sample(d, x, sigmas, rng, obs);
//   reel::Tensor want = d.transport(x, sigmas.front(), sigmas.back());
#pragma once
#include <atomic>
#include <cstdint>

#include "reel/sampler.hpp"

namespace reel {

class REEL_API GaussianDenoiser final : public Denoiser {
 public:
  GaussianDenoiser(NoisePath path, double mean, double std);
  NoisePath path() const override { return path_; }
  float timestep(float sigma) const override { return sigma * 1000.0f; }
  Denoised denoise(const Tensor& x, float sigma) override;
  // The exact probability-flow ODE solution from σ_from to σ_to, applied to every element of x.
  Tensor transport(const Tensor& x, double sigma_from, double sigma_to) const;
  int64_t calls() const { return calls_.load(); }  // denoise() calls so far

 private:
  NoisePath path_;
  double mean_, std_;
  std::atomic<int64_t> calls_{0};
  double alpha(double sigma) const { return path_ == NoisePath::flow ? 1.0 - sigma : 1.0; }
};

}  // namespace reel
