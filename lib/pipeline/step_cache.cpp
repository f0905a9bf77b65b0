// Step caching: the EasyCache and TeaCache criteria over the whole guided model (step_cache.hpp).
#include "pipeline/step_cache.hpp"

#include <cmath>

#include "pipeline/pipeline_impl.hpp"
#include "reel/status.hpp"

namespace reel::pipeline {

namespace {

double l1(const Tensor& a) {
  const float* p = a.data<float>();
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += std::fabs(p[i]);
  return s;
}

double l1_diff(const Tensor& a, const Tensor& b) {
  const float* p = a.data<float>();
  const float* q = b.data<float>();
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += std::fabs(double(p[i]) - q[i]);
  return s;
}

// |a − b|₁ / |b|₁ (0 when b is 0).
double relative_change(const Tensor& a, const Tensor& b) {
  const double base = l1(b);
  return base > 0 ? l1_diff(a, b) / base : 0.0;
}

}  // namespace

void StepCache::check(const StepCacheOptions& o) {
  require(o.method.empty() || o.method == "easycache" || o.method == "teacache", StatusCode::invalid_argument,
          "step_cache.method must be \"\", \"easycache\" or \"teacache\", got \"" + o.method + "\"");
  require(std::isfinite(o.threshold) && o.threshold >= 0.0f, StatusCode::invalid_argument,
          "step_cache.threshold must be a finite number >= 0");
  require(o.warmup >= 0 && o.warmup <= 10000, StatusCode::invalid_argument, "step_cache.warmup must be in [0, 10000]");
}

StepCache::StepCache(const StepCacheOptions& options, float last_timestep)
    : options_(options), last_timestep_(last_timestep) {}

bool StepCache::can_skip(const Tensor& x, float t) {
  if (!delta_.defined() || computed_ < std::max(options_.warmup, 1) || t == last_timestep_) return false;
  if (options_.method == "teacache") {
    accumulated_ += relative_change(x, x_prev_);
  } else {  // easycache
    if (rate_ < 0) return false;
    accumulated_ += rate_ * relative_change(x, x_prev_);
  }
  return accumulated_ < double(options_.threshold);
}

Tensor StepCache::velocity(const Tensor& x_in, float t, const Model& model) {
  const Tensor x = host_f32(x_in);
  if (can_skip(x, t)) {
    ++skipped_;
    Tensor v = Tensor::empty(x.shape(), DType::f32);
    const float* px = x.data<float>();
    const float* pd = delta_.data<float>();
    float* pv = v.data<float>();
    for (int64_t i = 0; i < v.numel(); ++i) pv[i] = px[i] + pd[i];
    x_prev_ = x.clone();  // the sampler updates its x in place
    return v;
  }
  const Tensor out = model(x_in, t);
  const Tensor v = host_f32(out);
  ++computed_;
  if (options_.method == "easycache" && x_done_.defined()) {
    const double dx = relative_change(x, x_done_), dv = relative_change(v, v_done_);
    rate_ = dx > 0 ? dv / dx : -1;
  }
  Tensor delta = Tensor::empty(x.shape(), DType::f32);
  const float* px = x.data<float>();
  const float* pv = v.data<float>();
  float* pd = delta.data<float>();
  for (int64_t i = 0; i < delta.numel(); ++i) pd[i] = pv[i] - px[i];
  delta_ = std::move(delta);
  x_done_ = x.clone();  // the sampler updates its x in place
  v_done_ = v.clone();
  x_prev_ = x_done_;
  accumulated_ = 0;
  return out;
}

}  // namespace reel::pipeline
