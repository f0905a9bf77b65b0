// CUDA element-wise ops and row reductions (host side): the support checks, and the launch of
// the kernels of cuda_pointwise.cu / cuda_norm.cu with the parameters cuda_params.cpp builds.
// Every op accepts f32, bf16 and f16 in any mix (computed in f32, one rounding on store).
#include "backend/cuda_ops.hpp"
#include "cuda_check.hpp"

namespace reel::cuda {

// ---------------------------------------------------------------- norms and softmax

Support supports(const op::LayerNorm& o, Device d) {
  return on_device(d, {{o.x, "x"},
                       {o.weight, "weight"},
                       {o.bias, "bias"},
                       {o.mod_scale, "mod_scale"},
                       {o.mod_shift, "mod_shift"},
                       {o.out, "out"}});
}
void execute(const op::LayerNorm& o, CudaContext& ctx) { launch_row_op(layer_norm_params(o), ctx.stream()); }

Support supports(const op::RmsNorm& o, Device d) {
  return on_device(d, {{o.x, "x"}, {o.weight, "weight"}, {o.out, "out"}});
}
void execute(const op::RmsNorm& o, CudaContext& ctx) {
  launch_row_op(row_params(RowOp::rms_norm, *o.x, o.weight, nullptr, *o.out, o.eps, 1.0f), ctx.stream());
}

Support supports(const op::Softmax& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Softmax& o, CudaContext& ctx) {
  launch_row_op(row_params(RowOp::softmax, *o.x, nullptr, nullptr, *o.out, 0.0f, o.scale), ctx.stream());
}

Support supports(const op::ChannelL2Norm& o, Device d) {
  return on_device(d, {{o.x, "x"}, {o.gamma, "gamma"}, {o.bias, "bias"}, {o.out, "out"}});
}
void execute(const op::ChannelL2Norm& o, CudaContext& ctx) { launch_channel_l2_norm(channel_norm_params(o), ctx.stream()); }

// ---------------------------------------------------------------- element-wise

Support supports(const op::Unary& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Unary& o, CudaContext& ctx) {
  launch_pointwise(pointwise_params(pointwise_op(o.kind), *o.out, {o.x}), ctx.stream());
}

Support supports(const op::Binary& o, Device d) { return on_device(d, {{o.a, "a"}, {o.b, "b"}, {o.out, "out"}}); }
void execute(const op::Binary& o, CudaContext& ctx) {
  launch_pointwise(pointwise_params(pointwise_op(o.kind), *o.out, {o.a, o.b}), ctx.stream());
}

Support supports(const op::MulAdd& o, Device d) {
  return on_device(d, {{o.a, "a"}, {o.b, "b"}, {o.c, "c"}, {o.out, "out"}});
}
void execute(const op::MulAdd& o, CudaContext& ctx) {
  launch_pointwise(pointwise_params(PointwiseOp::mul_add, *o.out, {o.a, o.b, o.c}), ctx.stream());
}

Support supports(const op::Modulate& o, Device d) {
  return on_device(d, {{o.x, "x"}, {o.scale, "scale"}, {o.shift, "shift"}, {o.out, "out"}});
}
void execute(const op::Modulate& o, CudaContext& ctx) {
  launch_pointwise(pointwise_params(PointwiseOp::modulate, *o.out, {o.x, o.scale, o.shift}), ctx.stream());
}

Support supports(const op::Affine& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Affine& o, CudaContext& ctx) {
  launch_pointwise(pointwise_params(PointwiseOp::affine, *o.out, {o.x}, o.alpha, o.beta), ctx.stream());
}

Support supports(const op::Fill& o, Device d) { return on_device(d, {{o.out, "out"}}); }
void execute(const op::Fill& o, CudaContext& ctx) {
  Tensor& out = *o.out;
  launch_fill(out.raw(), int(dtype_size(out.dtype())), fill_pattern(out.dtype(), o.value), out.numel(), ctx.stream());
}

Support supports(const op::Convert& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Convert& o, CudaContext& ctx) {
  const Tensor& x = *o.x;
  Tensor& out = *o.out;
  if (x.dtype() == out.dtype()) {  // a copy (i32 only ever takes this path: validate allows i32 -> i32 only)
    if (x.raw() != out.raw() && x.nbytes() > 0)
      REEL_CUDA_CHECK(cudaMemcpyAsync(out.raw(), x.raw(), x.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
    return;
  }
  launch_convert(x.raw(), int(x.dtype()), out.raw(), int(out.dtype()), x.numel(), ctx.stream());
}

Support supports(const op::Rope& o, Device d) {
  return on_device(d, {{o.x, "x"}, {o.cos, "cos"}, {o.sin, "sin"}, {o.out, "out"}});
}
void execute(const op::Rope& o, CudaContext& ctx) { launch_rope(rope_params(o), ctx.stream()); }

}  // namespace reel::cuda
