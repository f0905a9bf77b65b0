// The denoiser adapters (flow, eps, v models → x0) and the σ → timestep maps.
#include "sampling/exact_float.hpp"
// (first: no FMA contraction below; x0 = x − σ·v must round like torch)
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "reel/sampler.hpp"
#include "sampling/sampler_common.hpp"

namespace reel {

namespace {

// Calls the model and checks its output against x: defined, same shape, a float dtype; CPU.
Tensor call_model(const ModelFn& model, const Tensor& x, float timestep, const char* adapter) {
  Tensor out = model(x, timestep);
  const std::string who(adapter);
  require(out.defined(), StatusCode::invalid_argument, who + ": the model returned no tensor");
  require(out.shape() == x.shape(), StatusCode::invalid_argument,
          who + ": the model returned shape " + out.shape().str() + " for an input of shape " + x.shape().str());
  require(out.dtype() != DType::i32, StatusCode::invalid_argument, who + ": the model returned an i32 tensor");
  return out.to(Device::cpu());
}

Tensor as_f32(const Tensor& t) { return t.dtype() == DType::f32 ? t : t.to(DType::f32); }

void check_x(const Tensor& x, const char* adapter) {
  require(x.defined() && x.is_cpu() && x.dtype() == DType::f32, StatusCode::invalid_argument,
          std::string(adapter) + ": x must be a defined f32 CPU tensor");
}

}  // namespace

TimestepFn flow_timesteps(int num_train_timesteps) {
  require(num_train_timesteps >= 1, StatusCode::invalid_argument, "flow_timesteps: num_train_timesteps must be >= 1");
  const float T = float(num_train_timesteps);
  return [T](float sigma) { return sigma * T; };
}

TimestepFn schedule_timesteps(const Schedule& schedule, int num_train_timesteps) {
  require(schedule.sigmas.size() >= schedule.timesteps.size(), StatusCode::invalid_argument,
          "schedule_timesteps: the schedule has more timesteps than sigmas");
  require(num_train_timesteps >= 1, StatusCode::invalid_argument,
          "schedule_timesteps: num_train_timesteps must be >= 1");
  auto table = std::make_shared<std::vector<std::pair<float, float>>>();
  for (size_t i = 0; i < schedule.timesteps.size(); ++i) table->push_back({schedule.sigmas[i], schedule.timesteps[i]});
  const float T = float(num_train_timesteps);
  return [table, T](float sigma) {
    for (const auto& [s, t] : *table)
      if (s == sigma) return t;
    return sigma * T;
  };
}

FlowDenoiser::FlowDenoiser(ModelFn model, TimestepFn timestep, FlowDenoiserOptions options)
    : model_(std::move(model)), timestep_(std::move(timestep)), options_(options) {
  require(bool(model_) && bool(timestep_), StatusCode::invalid_argument,
          "FlowDenoiser: the model and timestep functions must be set");
}

Denoised FlowDenoiser::denoise(const Tensor& x, float sigma) {
  check_x(x, "FlowDenoiser");
  const Tensor v = call_model(model_, x, timestep_(sigma), "FlowDenoiser");
  const Tensor vf = as_f32(v);
  const DType round_to_type = options_.round_product_to_output_dtype ? v.dtype() : DType::f32;
  Tensor x0 = Tensor::empty(x.shape(), DType::f32);
  const float* xp = x.data<float>();
  const float* vp = vf.data<float>();
  float* out = x0.data<float>();
  // torch: sigma (a 0-d f32 tensor) * v (model dtype) rounds sigma to v's dtype, multiplies in
  // f32 and rounds the product to v's dtype; it is then subtracted from the f32 sample.
  const float s = round_to(round_to_type, sigma);
  detail::for_each_element(x.numel(), [&](int64_t i) { out[i] = xp[i] - round_to(round_to_type, s * vp[i]); });
  return {x0, v};
}

EpsDenoiser::EpsDenoiser(ModelFn model, TimestepFn timestep) : model_(std::move(model)), timestep_(std::move(timestep)) {
  require(bool(model_) && bool(timestep_), StatusCode::invalid_argument,
          "EpsDenoiser: the model and timestep functions must be set");
}

Denoised EpsDenoiser::denoise(const Tensor& x, float sigma) {
  check_x(x, "EpsDenoiser");
  const double c_in = 1.0 / std::sqrt(double(sigma) * sigma + 1.0);
  Tensor x_in = Tensor::empty(x.shape(), DType::f32);
  const float* xp = x.data<float>();
  float* ip = x_in.data<float>();
  detail::for_each_element(x.numel(), [&](int64_t i) { ip[i] = float(xp[i] * c_in); });
  const Tensor eps = as_f32(call_model(model_, x_in, timestep_(sigma), "EpsDenoiser"));
  Tensor x0 = Tensor::empty(x.shape(), DType::f32);
  const float* ep = eps.data<float>();
  float* out = x0.data<float>();
  detail::for_each_element(x.numel(), [&](int64_t i) { out[i] = float(double(xp[i]) - double(sigma) * ep[i]); });
  return {x0, {}};
}

VDenoiser::VDenoiser(ModelFn model, TimestepFn timestep) : model_(std::move(model)), timestep_(std::move(timestep)) {
  require(bool(model_) && bool(timestep_), StatusCode::invalid_argument,
          "VDenoiser: the model and timestep functions must be set");
}

Denoised VDenoiser::denoise(const Tensor& x, float sigma) {
  check_x(x, "VDenoiser");
  const double s2 = double(sigma) * sigma + 1.0;
  const double c_in = 1.0 / std::sqrt(s2), c_skip = 1.0 / s2, c_out = -double(sigma) / std::sqrt(s2);
  Tensor x_in = Tensor::empty(x.shape(), DType::f32);
  const float* xp = x.data<float>();
  float* ip = x_in.data<float>();
  detail::for_each_element(x.numel(), [&](int64_t i) { ip[i] = float(xp[i] * c_in); });
  const Tensor v = as_f32(call_model(model_, x_in, timestep_(sigma), "VDenoiser"));
  Tensor x0 = Tensor::empty(x.shape(), DType::f32);
  const float* vp = v.data<float>();
  float* out = x0.data<float>();
  detail::for_each_element(x.numel(), [&](int64_t i) { out[i] = float(c_skip * xp[i] + c_out * vp[i]); });
  return {x0, {}};
}

}  // namespace reel
