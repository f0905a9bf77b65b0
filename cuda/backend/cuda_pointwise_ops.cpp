// CUDA element-wise ops and row reductions (host side): NumPy broadcast planning, operand
// descriptions, and the launch of the kernels in cuda_pointwise.cu / cuda_norm.cu. Every op
// accepts f32, bf16 and f16 in any mix (computed in f32, one rounding on store).
#include <algorithm>
#include <bit>
#include <cmath>

#include "backend/cuda_ops.hpp"
#include "cuda_check.hpp"

namespace reel::cuda {

uint32_t fill_pattern(DType type, float value) {
  switch (type) {
    case DType::f32: return std::bit_cast<uint32_t>(value);
    case DType::bf16: return bf16::from_float(value).bits;
    case DType::f16: return f16::from_float(value).bits;
    case DType::i32: return std::isnan(value) ? 0u : uint32_t(int32_t(std::clamp(value, -2147483648.0f, 2147483520.0f)));
  }
  return 0;
}

namespace {

// out's dims with each input's strides (0 along broadcast dimensions), after dropping size-1
// dims and merging neighbours that are contiguous for every operand.
BroadcastIndex plan_broadcast(const Shape& out, std::initializer_list<const Tensor*> inputs) {
  const int r = out.rank();
  const int count = int(inputs.size());
  int64_t st[kMaxOperands][kMaxDims] = {};
  int k = 0;
  for (const Tensor* t : inputs) {
    int64_t stride = 1;
    for (int i = r - 1; i >= 0; --i) {
      const int j = t->rank() - r + i;
      const int64_t d = j >= 0 ? t->dim(j) : 1;
      st[k][i] = d == 1 ? 0 : stride;
      stride *= d;
    }
    ++k;
  }
  BroadcastIndex b;
  b.rank = 0;
  for (int i = 0; i < r; ++i) {
    const int64_t d = out[i];
    if (d == 1) continue;
    if (b.rank > 0) {
      bool merge = true;
      for (int in = 0; in < count; ++in)
        if (b.strides[in][b.rank - 1] != st[in][i] * d) merge = false;
      if (merge) {
        b.dims[b.rank - 1] *= d;
        for (int in = 0; in < count; ++in) b.strides[in][b.rank - 1] = st[in][i];
        continue;
      }
    }
    b.dims[b.rank] = d;
    for (int in = 0; in < count; ++in) b.strides[in][b.rank] = st[in][i];
    ++b.rank;
  }
  if (b.rank == 0) {  // one element
    b.rank = 1;
    b.dims[0] = 1;
  }
  return b;
}

void pointwise(CudaContext& ctx, PointwiseOp op, Tensor& out, std::initializer_list<const Tensor*> inputs,
               float alpha = 1.0f, float beta = 0.0f) {
  PointwiseParams p;
  p.op = op;
  p.inputs = int(inputs.size());
  int k = 0;
  for (const Tensor* t : inputs) p.in[k++] = operand(*t);
  p.out = out.raw();
  p.out_dtype = int(out.dtype());
  p.n = out.numel();
  p.index = plan_broadcast(out.shape(), inputs);
  p.alpha = alpha;
  p.beta = beta;
  launch_pointwise(p, ctx.stream());
}

void row_op(CudaContext& ctx, RowOp op, const Tensor& x, const Tensor* weight, const Tensor* bias, Tensor& out,
            float eps, float scale) {
  RowParams p;
  p.op = op;
  p.x = operand(x);
  p.weight = operand(weight);
  p.bias = operand(bias);
  p.out = out.raw();
  p.out_dtype = int(out.dtype());
  p.cols = x.dim(-1);
  p.rows = p.cols == 0 ? 0 : x.numel() / p.cols;
  p.eps = eps;
  p.scale = scale;
  launch_row_op(p, ctx.stream());
}

}  // namespace

// ---------------------------------------------------------------- norms and softmax

Support supports(const op::LayerNorm& o, Device d) {
  return on_device(d, {{o.x, "x"}, {o.weight, "weight"}, {o.bias, "bias"}, {o.out, "out"}});
}
void execute(const op::LayerNorm& o, CudaContext& ctx) {
  row_op(ctx, RowOp::layer_norm, *o.x, o.weight, o.bias, *o.out, o.eps, 1.0f);
}

Support supports(const op::RmsNorm& o, Device d) {
  return on_device(d, {{o.x, "x"}, {o.weight, "weight"}, {o.out, "out"}});
}
void execute(const op::RmsNorm& o, CudaContext& ctx) {
  row_op(ctx, RowOp::rms_norm, *o.x, o.weight, nullptr, *o.out, o.eps, 1.0f);
}

Support supports(const op::Softmax& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Softmax& o, CudaContext& ctx) {
  row_op(ctx, RowOp::softmax, *o.x, nullptr, nullptr, *o.out, 0.0f, o.scale);
}

Support supports(const op::ChannelL2Norm& o, Device d) {
  return on_device(d, {{o.x, "x"}, {o.gamma, "gamma"}, {o.bias, "bias"}, {o.out, "out"}});
}
void execute(const op::ChannelL2Norm& o, CudaContext& ctx) {
  const Tensor& x = *o.x;
  ChannelNormParams p;
  p.x = operand(x);
  p.gamma = operand(o.gamma);
  p.bias = operand(o.bias);
  p.out = o.out->raw();
  p.out_dtype = int(o.out->dtype());
  p.batch = x.dim(0);
  p.channels = x.dim(1);
  p.spatial = p.batch * p.channels == 0 ? 0 : x.numel() / (p.batch * p.channels);
  p.eps = o.eps;
  launch_channel_l2_norm(p, ctx.stream());
}

// ---------------------------------------------------------------- element-wise

Support supports(const op::Unary& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Unary& o, CudaContext& ctx) {
  const PointwiseOp op = o.kind == op::UnaryKind::silu        ? PointwiseOp::silu
                         : o.kind == op::UnaryKind::gelu_tanh ? PointwiseOp::gelu_tanh
                                                              : PointwiseOp::gelu_erf;
  pointwise(ctx, op, *o.out, {o.x});
}

Support supports(const op::Binary& o, Device d) { return on_device(d, {{o.a, "a"}, {o.b, "b"}, {o.out, "out"}}); }
void execute(const op::Binary& o, CudaContext& ctx) {
  const PointwiseOp op = o.kind == op::BinaryKind::add   ? PointwiseOp::add
                         : o.kind == op::BinaryKind::sub ? PointwiseOp::sub
                                                         : PointwiseOp::mul;
  pointwise(ctx, op, *o.out, {o.a, o.b});
}

Support supports(const op::MulAdd& o, Device d) {
  return on_device(d, {{o.a, "a"}, {o.b, "b"}, {o.c, "c"}, {o.out, "out"}});
}
void execute(const op::MulAdd& o, CudaContext& ctx) { pointwise(ctx, PointwiseOp::mul_add, *o.out, {o.a, o.b, o.c}); }

Support supports(const op::Modulate& o, Device d) {
  return on_device(d, {{o.x, "x"}, {o.scale, "scale"}, {o.shift, "shift"}, {o.out, "out"}});
}
void execute(const op::Modulate& o, CudaContext& ctx) {
  pointwise(ctx, PointwiseOp::modulate, *o.out, {o.x, o.scale, o.shift});
}

Support supports(const op::Affine& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Affine& o, CudaContext& ctx) {
  pointwise(ctx, PointwiseOp::affine, *o.out, {o.x}, o.alpha, o.beta);
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
void execute(const op::Rope& o, CudaContext& ctx) {
  const Tensor& x = *o.x;
  RopeParams p;
  p.x = operand(x);
  p.cos = static_cast<const float*>(o.cos->raw());
  p.sin = static_cast<const float*>(o.sin->raw());
  p.out = o.out->raw();
  p.out_dtype = int(o.out->dtype());
  p.batch = x.dim(0);
  p.seq = x.dim(1);
  p.heads = x.dim(2);
  p.dim = x.dim(3);
  launch_rope(p, ctx.stream());
}

}  // namespace reel::cuda
