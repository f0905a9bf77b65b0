// DPM-Solver++(2M) (Lu et al. 2022, arXiv:2211.01095), as diffusers' DPMSolverMultistepScheduler
// computes it (f32 scalars, op by op), and its SDE variant (midpoint, k-diffusion's form).
#include "sampling/exact_float.hpp"
// (first: the update must round like torch, op by op)
#include <cmath>
#include <string>

#include "reel/samplers.hpp"
#include "sampling/sampler_common.hpp"

namespace reel {

namespace {

using detail::for_each_element;

// λ(σ) = log α − log σ in f32, as diffusers (torch.log on 0-d f32 tensors).
// Each log is rounded to f32 from double: torch's f32 log is correctly rounded in nearly all
// cases, glibc's logf is not always (measured: 3 of 504 schedule sigmas differ by an ulp).
float log_f32(float v) { return float(std::log(double(v))); }
float lambda_of(NoisePath path, float sigma) { return log_f32(path_alpha(path, sigma)) - log_f32(sigma); }

class DpmPP2MSampler final : public Sampler {
 public:
  explicit DpmPP2MSampler(DpmPP2MConfig c) : c_(c) {}
  std::string name() const override {
    return std::string("dpmpp_2m:lower_order_final=") + (c_.lower_order_final ? "true" : "false");
  }
  Tensor sample(Denoiser& denoiser, Tensor x_in, std::span<const float> sigmas, Rng&, StepObserver& observer) override {
    Tensor x = start_sample(x_in, "dpmpp_2m");
    const NoisePath path = denoiser.path();
    check_sigmas(sigmas, path, "dpmpp_2m");
    StepReporter report(observer, denoiser, sigmas, "dpmpp_2m");
    const size_t steps = sigmas.size() - 1;
    Tensor m1;  // the previous step's x0
    for (size_t i = 0; i < steps; ++i) {
      report.begin_step();
      const Denoised den = denoise_checked(denoiser, x, sigmas[i], "dpmpp_2m");
      const Tensor& m0 = den.x0;
      const bool last = i + 1 == steps;
      const bool first_order =
          !m1.defined() || (last && (sigmas.back() == 0.0f || (c_.lower_order_final && steps < 15)));
      const float sigma_t = sigmas[i + 1], sigma_s0 = sigmas[i];
      const float alpha_t = path_alpha(path, sigma_t);
      const float lambda_t = lambda_of(path, sigma_t), lambda_s0 = lambda_of(path, sigma_s0);
      const float h = lambda_t - lambda_s0;
      const float c_x = sigma_t / sigma_s0;
      const float c_d0 = alpha_t * (std::exp(-h) - 1.0f);
      float* xp = x.data<float>();
      const float* m0p = m0.data<float>();
      if (first_order) {
        for_each_element(x.numel(), [&](int64_t j) { xp[j] = c_x * xp[j] - c_d0 * m0p[j]; });
      } else {
        const float lambda_s1 = lambda_of(path, sigmas[i - 1]);
        const float r0 = (lambda_s0 - lambda_s1) / h;
        const float c_r = 1.0f / r0;
        const float c_d1 = 0.5f * c_d0;
        const float* m1p = m1.data<float>();
        for_each_element(x.numel(), [&](int64_t j) {
          const float d1 = c_r * (m0p[j] - m1p[j]);
          xp[j] = (c_x * xp[j] - c_d0 * m0p[j]) - c_d1 * d1;
        });
      }
      m1 = m0;
      report.end_step(int(i), x, m0, 1);
    }
    return x;
  }

 private:
  DpmPP2MConfig c_;
};

class DpmPP2MSdeSampler final : public Sampler {
 public:
  explicit DpmPP2MSdeSampler(DpmPP2MSdeConfig c) : c_(c) {
    require(std::isfinite(c.eta) && c.eta >= 0 && std::isfinite(c.s_noise) && c.s_noise >= 0,
            StatusCode::invalid_argument, "dpmpp_2m_sde: eta and s_noise must be finite and >= 0");
  }
  std::string name() const override {
    return "dpmpp_2m_sde:eta=" + std::to_string(c_.eta) + ",s_noise=" + std::to_string(c_.s_noise);
  }
  Tensor sample(Denoiser& denoiser, Tensor x_in, std::span<const float> sigmas, Rng& rng,
                StepObserver& observer) override {
    Tensor x = start_sample(x_in, "dpmpp_2m_sde");
    const NoisePath path = denoiser.path();
    check_sigmas(sigmas, path, "dpmpp_2m_sde");
    StepReporter report(observer, denoiser, sigmas, "dpmpp_2m_sde");
    Tensor old_x0;
    double h_last = 0;
    for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
      report.begin_step();
      const double s = sigmas[i], sn = sigmas[i + 1];
      const Denoised den = denoise_checked(denoiser, x, float(s), "dpmpp_2m_sde");
      float* xp = x.data<float>();
      const float* x0 = den.x0.data<float>();
      if (sn == 0) {  // the exponential step to σ = 0 lands on x0
        for_each_element(x.numel(), [&](int64_t j) { xp[j] = x0[j]; });
      } else {
        const double an = path_alpha(path, float(sn));
        const double lam_s = std::log(double(path_alpha(path, float(s)))) - std::log(s);
        const double h = std::log(an) - std::log(sn) - lam_s;
        const double eta_h = c_.eta == 0 ? 0.0 : c_.eta * h;
        const double c_x = sn / s * std::exp(-eta_h);
        const double c_d = -an * std::expm1(-h - eta_h);
        const double c_noise = sn * std::sqrt(-std::expm1(-2.0 * eta_h)) * c_.s_noise;
        const double c_mid = old_x0.defined() ? 0.5 * c_d * h / h_last : 0.0;  // 0.5·c_d·(1/r), r = h_last/h
        const float* old = old_x0.defined() ? old_x0.data<float>() : x0;
        Tensor noise = c_noise > 0 ? rng.normal(x.shape()) : Tensor::zeros(x.shape(), DType::f32);
        const float* np_ = noise.data<float>();
        for_each_element(x.numel(), [&](int64_t j) {
          xp[j] = float(c_x * xp[j] + c_d * x0[j] + c_mid * (double(x0[j]) - old[j]) + c_noise * np_[j]);
        });
        h_last = h;
      }
      old_x0 = den.x0;
      report.end_step(int(i), x, den.x0, 1);
    }
    return x;
  }

 private:
  DpmPP2MSdeConfig c_;
};

}  // namespace

std::unique_ptr<Sampler> make_dpmpp_2m_sampler(const DpmPP2MConfig& config) {
  return std::make_unique<DpmPP2MSampler>(config);
}
std::unique_ptr<Sampler> make_dpmpp_2m_sde_sampler(const DpmPP2MSdeConfig& config) {
  return std::make_unique<DpmPP2MSdeSampler>(config);
}

}  // namespace reel
