// Single-step samplers: Euler (diffusers FlowMatchEuler on the flow path), Euler ancestral,
// Heun and LCM. Each step is one screen; all share the loop shape of sampler_common.hpp.
#include "sampling/exact_float.hpp"
// (first: Euler's x + dσ·v must round like torch)
#include <cmath>
#include <string>

#include "reel/samplers.hpp"
#include "sampling/sampler_common.hpp"

namespace reel {

namespace {

using detail::for_each_element;

// dx/dσ at (x, σ): the denoiser's velocity when it has one, else (x − x0)/σ (exact on both
// the flow and the VE path).
void derivative(const Tensor& x, const Denoised& d, float sigma, float* out) {
  const float* xp = x.data<float>();
  if (d.velocity.defined()) {
    const Tensor v = d.velocity.dtype() == DType::f32 ? d.velocity : d.velocity.to(DType::f32);
    const float* vp = v.data<float>();
    for_each_element(x.numel(), [&](int64_t i) { out[i] = vp[i]; });
    return;
  }
  const float* x0 = d.x0.data<float>();
  for_each_element(x.numel(), [&](int64_t i) { out[i] = float((double(xp[i]) - x0[i]) / sigma); });
}

class EulerSampler final : public Sampler {
 public:
  explicit EulerSampler(EulerConfig c) : c_(c) {}
  std::string name() const override {
    return std::string("euler:follow_model_dtype=") + (c_.follow_model_dtype ? "true" : "false");
  }
  Tensor sample(Denoiser& denoiser, Tensor x_in, std::span<const float> sigmas, Rng&, StepObserver& observer) override {
    Tensor x = start_sample(x_in, "euler");
    check_sigmas(sigmas, denoiser.path(), "euler");
    StepReporter report(observer, denoiser, sigmas, "euler");
    Tensor d = Tensor::empty(x.shape(), DType::f32);
    for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
      report.begin_step();
      const float sigma = sigmas[i];
      const Denoised den = denoise_checked(denoiser, x, sigma, "euler");
      // diffusers: prev = sample + dt·v with dt a 0-d f32 tensor; with v in bf16/f16, torch
      // rounds dt to that dtype, rounds dt·v to it, and prev is cast to it at the end.
      const DType model_dtype =
          den.velocity.defined() && c_.follow_model_dtype ? den.velocity.dtype() : DType::f32;
      const float dt = round_to(model_dtype, sigmas[i + 1] - sigmas[i]);
      derivative(x, den, sigma, d.data<float>());
      float* xp = x.data<float>();
      const float* dp = d.data<float>();
      for_each_element(x.numel(), [&](int64_t j) {
        xp[j] = round_to(model_dtype, xp[j] + round_to(model_dtype, dt * dp[j]));
      });
      report.end_step(int(i), x, den.x0, 1);
    }
    return x;
  }

 private:
  EulerConfig c_;
};

class EulerAncestralSampler final : public Sampler {
 public:
  explicit EulerAncestralSampler(EulerAncestralConfig c) : c_(c) {
    require(std::isfinite(c.eta) && c.eta >= 0 && std::isfinite(c.s_noise) && c.s_noise >= 0,
            StatusCode::invalid_argument, "euler_a: eta and s_noise must be finite and >= 0");
  }
  std::string name() const override {
    return "euler_a:eta=" + std::to_string(c_.eta) + ",s_noise=" + std::to_string(c_.s_noise);
  }
  Tensor sample(Denoiser& denoiser, Tensor x_in, std::span<const float> sigmas, Rng& rng,
                StepObserver& observer) override {
    Tensor x = start_sample(x_in, "euler_a");
    const NoisePath path = denoiser.path();
    check_sigmas(sigmas, path, "euler_a");
    StepReporter report(observer, denoiser, sigmas, "euler_a");
    for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
      report.begin_step();
      const double s = sigmas[i], sn = sigmas[i + 1];
      const double a = path_alpha(path, float(s)), an = path_alpha(path, float(sn));
      const Denoised den = denoise_checked(denoiser, x, float(s), "euler_a");
      float* xp = x.data<float>();
      const float* x0 = den.x0.data<float>();
      if (sn == 0) {
        for_each_element(x.numel(), [&](int64_t j) { xp[j] = x0[j]; });
      } else {
        // VE variables x̃ = x/α, σ̃ = σ/α: σ̃_up = min(σ̃', η·σ̃'·√(1 − (σ̃'/σ̃)²)), σ̃_down = √(σ̃'² − σ̃_up²);
        // x' = α'·x0 + α'·σ̃_down/σ·(x − α·x0) + α'·σ̃_up·ε (finite even when α(σ) = 0).
        const double q = sn * a / (s * an);  // σ̃'/σ̃
        const double up_frac = std::min(1.0, c_.eta * std::sqrt(std::max(0.0, 1.0 - q * q)));
        const double sn_ve = sn / an;
        const double c_x = an * sn_ve * std::sqrt(1.0 - up_frac * up_frac) / s;
        const double c_noise = an * sn_ve * up_frac * c_.s_noise;
        Tensor noise = rng.normal(x.shape());
        const float* np_ = noise.data<float>();
        for_each_element(x.numel(), [&](int64_t j) {
          xp[j] = float(an * x0[j] + c_x * (double(xp[j]) - a * x0[j]) + c_noise * np_[j]);
        });
      }
      report.end_step(int(i), x, den.x0, 1);
    }
    return x;
  }

 private:
  EulerAncestralConfig c_;
};

class HeunSampler final : public Sampler {
 public:
  std::string name() const override { return "heun"; }
  Tensor sample(Denoiser& denoiser, Tensor x_in, std::span<const float> sigmas, Rng&, StepObserver& observer) override {
    Tensor x = start_sample(x_in, "heun");
    check_sigmas(sigmas, denoiser.path(), "heun");
    StepReporter report(observer, denoiser, sigmas, "heun");
    Tensor d = Tensor::empty(x.shape(), DType::f32), d2 = Tensor::empty(x.shape(), DType::f32);
    Tensor x2 = Tensor::empty(x.shape(), DType::f32);
    for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
      report.begin_step();
      const float sigma = sigmas[i], sn = sigmas[i + 1];
      const double dt = double(sn) - sigma;
      const Denoised den = denoise_checked(denoiser, x, sigma, "heun");
      derivative(x, den, sigma, d.data<float>());
      float* xp = x.data<float>();
      const float* dp = d.data<float>();
      int calls = 1;
      if (sn == 0) {  // Euler on the last step (the derivative at σ = 0 is undefined)
        for_each_element(x.numel(), [&](int64_t j) { xp[j] = float(xp[j] + dt * dp[j]); });
      } else {
        float* x2p = x2.data<float>();
        for_each_element(x.numel(), [&](int64_t j) { x2p[j] = float(xp[j] + dt * dp[j]); });
        const Denoised den2 = denoise_checked(denoiser, x2, sn, "heun");
        derivative(x2, den2, sn, d2.data<float>());
        const float* d2p = d2.data<float>();
        for_each_element(x.numel(), [&](int64_t j) { xp[j] = float(xp[j] + dt * 0.5 * (double(dp[j]) + d2p[j])); });
        calls = 2;
      }
      report.end_step(int(i), x, den.x0, calls);
    }
    return x;
  }
};

class LcmSampler final : public Sampler {
 public:
  std::string name() const override { return "lcm"; }
  Tensor sample(Denoiser& denoiser, Tensor x_in, std::span<const float> sigmas, Rng& rng,
                StepObserver& observer) override {
    Tensor x = start_sample(x_in, "lcm");
    const NoisePath path = denoiser.path();
    check_sigmas(sigmas, path, "lcm");
    StepReporter report(observer, denoiser, sigmas, "lcm");
    for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
      report.begin_step();
      const float sn = sigmas[i + 1];
      const Denoised den = denoise_checked(denoiser, x, sigmas[i], "lcm");
      float* xp = x.data<float>();
      const float* x0 = den.x0.data<float>();
      if (sn == 0) {
        for_each_element(x.numel(), [&](int64_t j) { xp[j] = x0[j]; });
      } else {
        const double an = path_alpha(path, sn);
        Tensor noise = rng.normal(x.shape());
        const float* np_ = noise.data<float>();
        for_each_element(x.numel(), [&](int64_t j) { xp[j] = float(an * x0[j] + double(sn) * np_[j]); });
      }
      report.end_step(int(i), x, den.x0, 1);
    }
    return x;
  }
};

}  // namespace

std::unique_ptr<Sampler> make_euler_sampler(const EulerConfig& config) { return std::make_unique<EulerSampler>(config); }
std::unique_ptr<Sampler> make_euler_ancestral_sampler(const EulerAncestralConfig& config) {
  return std::make_unique<EulerAncestralSampler>(config);
}
std::unique_ptr<Sampler> make_heun_sampler() { return std::make_unique<HeunSampler>(); }
std::unique_ptr<Sampler> make_lcm_sampler() { return std::make_unique<LcmSampler>(); }

}  // namespace reel
