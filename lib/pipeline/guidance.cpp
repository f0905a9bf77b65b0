// Classifier-free guidance combine, shared by generate() and the endless-video windows so the
// two give the same bits.
#include "sampling/exact_float.hpp"  // first: diffusers' op-by-op rounding, no fused multiply-add

#include "pipeline/pipeline_impl.hpp"

namespace reel::pipeline {

Tensor guide(const Tensor& cond, const Tensor& uncond, float g) {
  const DType dt = cond.dtype();
  const std::vector<float> c = cond.to_floats(), u = uncond.to_floats();
  std::vector<float> v(c.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const float d = round_to(dt, c[i] - u[i]);
    const float p = round_to(dt, g * d);
    v[i] = round_to(dt, u[i] + p);
  }
  return Tensor::from_floats(cond.shape(), v, dt);
}

}  // namespace reel::pipeline
