// Typed op wrappers: compute the output shape, allocate the output on the backend's device,
// and run the op through Backend::run (so validation and support checks always happen).
//
//   auto be = reel::make_cpu_backend();
//   reel::Tensor h = reel::ops::linear(*be, x, w1, &b1);     // [.., N]
//   h = reel::ops::gelu_tanh(*be, h);
//   reel::Tensor y = reel::ops::mul_add(*be, x, h, gate);    // x + h·gate
#pragma once
#include <array>
#include <initializer_list>
#include <optional>
#include <vector>

#include "reel/backend.hpp"

namespace reel::ops {

// out dtype: `out_dtype` when given, else x's dtype.
REEL_API Tensor linear(Backend& be, const Tensor& x, const Tensor& weight, const Tensor* bias = nullptr,
                       std::optional<DType> out_dtype = std::nullopt);
REEL_API Tensor batch_matmul(Backend& be, const Tensor& a, const Tensor& b, bool transpose_b = false,
                             float alpha = 1.0f);
REEL_API Tensor conv3d(Backend& be, const Tensor& x, const Tensor& weight, const Tensor* bias,
                       std::array<int, 3> stride = {1, 1, 1}, std::array<int, 3> padding = {0, 0, 0});
REEL_API Tensor conv2d(Backend& be, const Tensor& x, const Tensor& weight, const Tensor* bias,
                       std::array<int, 2> stride = {1, 1}, std::array<int, 2> padding = {0, 0});

REEL_API Tensor layer_norm(Backend& be, const Tensor& x, const Tensor* weight, const Tensor* bias, float eps);
REEL_API Tensor rms_norm(Backend& be, const Tensor& x, const Tensor* weight, float eps);
REEL_API Tensor channel_l2_norm(Backend& be, const Tensor& x, const Tensor& gamma, const Tensor* bias = nullptr);

REEL_API Tensor silu(Backend& be, const Tensor& x);
REEL_API Tensor gelu_tanh(Backend& be, const Tensor& x);
REEL_API Tensor gelu_erf(Backend& be, const Tensor& x);
REEL_API Tensor relu(Backend& be, const Tensor& x);
REEL_API Tensor tanh(Backend& be, const Tensor& x);
REEL_API Tensor softmax(Backend& be, const Tensor& x, float scale = 1.0f);

REEL_API Tensor modulate(Backend& be, const Tensor& x, const Tensor& scale, const Tensor& shift);
REEL_API Tensor rope(Backend& be, const Tensor& x, const Tensor& cos, const Tensor& sin);

// Binary ops broadcast both operands (NumPy rules); the result has a's dtype.
REEL_API Tensor add(Backend& be, const Tensor& a, const Tensor& b);
REEL_API Tensor sub(Backend& be, const Tensor& a, const Tensor& b);
REEL_API Tensor mul(Backend& be, const Tensor& a, const Tensor& b);
REEL_API Tensor mul_add(Backend& be, const Tensor& a, const Tensor& b, const Tensor& c);  // a + b·c
REEL_API Tensor affine(Backend& be, const Tensor& x, float alpha, float beta);             // αx + β
REEL_API Tensor full(Backend& be, const Shape& shape, DType dtype, float value);

REEL_API Tensor concat(Backend& be, const std::vector<const Tensor*>& inputs, int axis);
REEL_API Tensor pad(Backend& be, const Tensor& x, std::span<const int64_t> before, std::span<const int64_t> after,
                    float value = 0.0f);
REEL_API Tensor upsample_nearest(Backend& be, const Tensor& x, int scale_h, int scale_w);
REEL_API Tensor permute(Backend& be, const Tensor& x, std::span<const int> perm);
REEL_API Tensor slice(Backend& be, const Tensor& x, int axis, int64_t begin, int64_t end);
REEL_API Tensor convert(Backend& be, const Tensor& x, DType dtype);
// softmax(scale·q·kᵀ)·v, q [B, Sq, H, D], k/v [B, Skv, H, D], on the backend's stream;
// `kernel` names one (reel-cli kernels lists them), empty: the best for the device.
REEL_API Tensor attention(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                          std::string_view kernel = {});

// NumPy broadcast of two shapes; throws invalid_argument when they do not broadcast.
REEL_API Shape broadcast_shapes(const Shape& a, const Shape& b);

}  // namespace reel::ops
