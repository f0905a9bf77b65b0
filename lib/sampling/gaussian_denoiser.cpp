// GaussianDenoiser: the closed-form posterior mean and probability-flow transport for Gaussian data.
#include "reel/gaussian_denoiser.hpp"

#include <cmath>
#include <string>

#include "sampling/sampler_common.hpp"

namespace reel {

GaussianDenoiser::GaussianDenoiser(NoisePath path, double mean, double std) : path_(path), mean_(mean), std_(std) {
  require(std::isfinite(mean) && std::isfinite(std) && std >= 0, StatusCode::invalid_argument,
          "GaussianDenoiser: mean must be finite and std finite and >= 0");
}

Denoised GaussianDenoiser::denoise(const Tensor& x, float sigma) {
  require(x.defined() && x.is_cpu() && x.dtype() == DType::f32, StatusCode::invalid_argument,
          "GaussianDenoiser: x must be a defined f32 CPU tensor");
  ++calls_;
  const double a = alpha(sigma), s2 = std_ * std_;
  const double var = a * a * s2 + double(sigma) * sigma;
  const double gain = var > 0 ? a * s2 / var : 0.0;
  Tensor x0 = Tensor::empty(x.shape(), DType::f32);
  const float* xp = x.data<float>();
  float* out = x0.data<float>();
  detail::for_each_element(x.numel(), [&](int64_t i) { out[i] = float(mean_ + gain * (xp[i] - a * mean_)); });
  return {x0, {}};
}

Tensor GaussianDenoiser::transport(const Tensor& x, double sigma_from, double sigma_to) const {
  require(x.defined() && x.is_cpu(), StatusCode::invalid_argument, "GaussianDenoiser::transport: x must be a CPU tensor");
  const Tensor xf = x.dtype() == DType::f32 ? x : x.to(DType::f32);
  const double s2 = std_ * std_;
  const double a0 = alpha(sigma_from), a1 = alpha(sigma_to);
  const double sd0 = std::sqrt(a0 * a0 * s2 + sigma_from * sigma_from);
  const double sd1 = std::sqrt(a1 * a1 * s2 + sigma_to * sigma_to);
  require(sd0 > 0, StatusCode::invalid_argument, "GaussianDenoiser::transport: zero spread at sigma_from");
  Tensor out = Tensor::empty(x.shape(), DType::f32);
  const float* xp = xf.data<float>();
  float* op = out.data<float>();
  detail::for_each_element(x.numel(), [&](int64_t i) {
    op[i] = float(a1 * mean_ + sd1 * (xp[i] - a0 * mean_) / sd0);
  });
  return out;
}

}  // namespace reel
