// The Wan condition embedder (reel/wan.md §1.3c): the timestep sinusoid and time MLP (f32,
// rounded to the model dtype afterwards), the time projection to the six modulation rows, and
// the text and image (I2V) embedders.
#include <cmath>

#include "reel/ops.hpp"
#include "wan/wan_model.hpp"

namespace reel::wan {

Tensor timestep_sinusoid(std::span<const float> timesteps, int64_t freq_dim) {
  const int64_t half = freq_dim / 2;
  Tensor out = Tensor::empty({int64_t(timesteps.size()), freq_dim}, DType::f32);
  float* o = out.data<float>();
  // diffusers get_timestep_embedding in f32: exponent = (−ln 10000 · i) / half, freq = exp(exponent),
  // arg = t · freq; each f32 step is rounded as torch rounds it (exp/sin/cos computed in double
  // and rounded once, i.e. correctly rounded).
  const float neg_log_period = float(-std::log(10000.0));
  std::vector<float> freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = (neg_log_period * float(i)) / float(half);
    freq[size_t(i)] = float(std::exp(double(exponent)));
  }
  for (size_t n = 0; n < timesteps.size(); ++n)
    for (int64_t i = 0; i < half; ++i) {
      const float arg = timesteps[n] * freq[size_t(i)];
      o[int64_t(n) * freq_dim + i] = float(std::cos(double(arg)));  // flip_sin_to_cos: cos first
      o[int64_t(n) * freq_dim + half + i] = float(std::sin(double(arg)));
    }
  return out;
}

TimeEmbedding embed_timesteps(Backend& be, const WanWeights& w, std::span<const float> unique_timesteps, DType act) {
  Tensor sinus = timestep_sinusoid(unique_timesteps, w.time_in.weight.dim(1));
  if (be.device() != Device::cpu()) sinus = sinus.to(be.device());
  // The time embedder stays f32 in every precision (diffusers _keep_in_fp32_modules).
  Tensor h = linear(be, sinus, w.time_in, DType::f32);
  be.run(op::Unary{op::UnaryKind::silu, &h, &h});
  const Tensor temb32 = linear(be, h, w.time_out, DType::f32);
  TimeEmbedding te;
  te.temb = act == DType::f32 ? temb32 : ops::convert(be, temb32, act);  // .type_as(encoder_hidden_states)
  const Tensor act_in = ops::silu(be, te.temb);
  te.projection = linear(be, act_in, w.time_proj, act);
  return te;
}

Tensor embed_text(Backend& be, const WanWeights& w, const Tensor& text, DType act) {
  const Tensor x = text.dtype() == act ? text : ops::convert(be, text, act);
  Tensor h = linear(be, x, w.text_in, act);
  be.run(op::Unary{op::UnaryKind::gelu_tanh, &h, &h});
  return linear(be, h, w.text_out, act);
}

Tensor embed_image(Backend& be, const WanWeights& w, const Tensor& image, DType act) {
  constexpr float kEps = 1e-5f;  // FP32LayerNorm default (wan.md §1.3c)
  const Tensor x = image.dtype() == act ? image : ops::convert(be, image, act);
  // LayerNorm in f32 (f32 parameters), stored in the activation dtype, as FP32LayerNorm does.
  const Tensor n = ops::layer_norm(be, x, &w.image_norm_in.weight, &w.image_norm_in.bias, kEps);
  Tensor h = linear(be, n, w.image_in, act);
  be.run(op::Unary{op::UnaryKind::gelu_erf, &h, &h});
  const Tensor y = linear(be, h, w.image_out, act);
  return ops::layer_norm(be, y, &w.image_norm_out.weight, &w.image_norm_out.bias, kEps);
}

}  // namespace reel::wan
