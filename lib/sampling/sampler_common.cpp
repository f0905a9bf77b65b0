// The sampler-writing helpers of reel/sampler.hpp: input checks, the checked denoiser call, the step reporter.
#include <chrono>
#include <cmath>
#include <string>

#include "reel/sampler.hpp"

namespace reel {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Tensor start_sample(const Tensor& x, std::string_view sampler) {
  require(x.defined(), StatusCode::invalid_argument, std::string(sampler) + ": the starting sample x is undefined");
  require(x.dtype() != DType::i32, StatusCode::invalid_argument,
          std::string(sampler) + ": the starting sample x must be a float tensor, got i32");
  require(x.numel() > 0, StatusCode::invalid_argument,
          std::string(sampler) + ": the starting sample x is empty " + x.shape().str());
  return x.to(Device::cpu()).to(DType::f32);  // to(DType) always copies
}

void check_sigmas(std::span<const float> sigmas, NoisePath path, std::string_view sampler) {
  const std::string who(sampler);
  require(sigmas.size() >= 2, StatusCode::invalid_argument,
          who + ": need at least 2 sigmas (N+1 for N steps), got " + std::to_string(sigmas.size()));
  for (size_t i = 0; i < sigmas.size(); ++i) {
    const float s = sigmas[i];
    require(std::isfinite(s) && s >= 0, StatusCode::invalid_argument,
            who + ": sigma[" + std::to_string(i) + "] = " + std::to_string(s) + " must be finite and >= 0");
    require(path != NoisePath::flow || s <= 1.0f, StatusCode::invalid_argument,
            who + ": sigma[" + std::to_string(i) + "] = " + std::to_string(s) +
                " is above 1, impossible on the flow path");
    // (the message reads sigma[i - 1], so it is built only for i > 0)
    if (i > 0 && !(s < sigmas[i - 1]))
      throw Error(StatusCode::invalid_argument, who + ": sigmas must strictly decrease, but sigma[" + std::to_string(i) +
                                                    "] = " + std::to_string(s) + " >= sigma[" + std::to_string(i - 1) +
                                                    "] = " + std::to_string(sigmas[i - 1]));
  }
}

Denoised denoise_checked(Denoiser& denoiser, const Tensor& x, float sigma, std::string_view sampler) {
  Denoised d = denoiser.denoise(x, sigma);
  const std::string who(sampler);
  require(d.x0.defined(), StatusCode::invalid_argument,
          who + ": the denoiser returned no x0 at sigma " + std::to_string(sigma));
  require(d.x0.shape() == x.shape(), StatusCode::invalid_argument,
          who + ": the denoiser returned x0 of shape " + d.x0.shape().str() + " for a sample of shape " +
              x.shape().str());
  require(d.x0.dtype() != DType::i32, StatusCode::invalid_argument, who + ": the denoiser returned an i32 x0");
  d.x0 = d.x0.to(Device::cpu());
  if (d.x0.dtype() != DType::f32) d.x0 = d.x0.to(DType::f32);
  if (d.velocity.defined()) {
    require(d.velocity.shape() == x.shape() && d.velocity.dtype() != DType::i32, StatusCode::invalid_argument,
            who + ": the denoiser's velocity has shape " + d.velocity.shape().str() + " / dtype " +
                std::string(dtype_name(d.velocity.dtype())) + "; expected a float tensor of shape " +
                x.shape().str());
    d.velocity = d.velocity.to(Device::cpu());
  }
  return d;
}

StepReporter::StepReporter(StepObserver& observer, const Denoiser& denoiser, std::span<const float> sigmas,
                           std::string_view sampler)
    : observer_(observer), denoiser_(denoiser), sigmas_(sigmas), sampler_(sampler) {}

void StepReporter::begin_step() { start_ = now_seconds(); }

void StepReporter::end_step(int step, const Tensor& x, const Tensor& x0, int model_calls) {
  StepInfo info;
  info.step = step;
  info.total = int(sigmas_.size()) - 1;
  info.sigma = sigmas_[size_t(step)];
  info.sigma_next = sigmas_[size_t(step) + 1];
  info.timestep = denoiser_.timestep(info.sigma);
  info.seconds = now_seconds() - start_;
  info.model_calls = model_calls;
  info.x = x;
  info.x0 = x0;
  if (observer_.on_step(info) == StepAction::cancel)
    throw Error(StatusCode::cancelled, sampler_ + ": cancelled by the step observer after step " +
                                           std::to_string(step + 1) + " of " + std::to_string(info.total));
}

}  // namespace reel
