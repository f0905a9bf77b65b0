// Kernel parameters from op structs (see cuda_params.hpp).
#include "backend/cuda_params.hpp"

#include "layout_plan.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace reel::cuda {

namespace {

int64_t span_of(const Shape& s, int from, int to) {
  int64_t n = 1;
  for (int i = from; i < to; ++i) n *= s[i];
  return n;
}

int norm_axis(int axis, int rank) { return axis < 0 ? axis + rank : axis; }

std::byte* bytes(Tensor& t) { return static_cast<std::byte*>(t.raw()); }
const std::byte* bytes(const Tensor& t) { return static_cast<const std::byte*>(t.raw()); }

}  // namespace

uint32_t fill_pattern(DType type, float value) {
  switch (type) {
    case DType::f32: return std::bit_cast<uint32_t>(value);
    case DType::bf16: return bf16::from_float(value).bits;
    case DType::f16: return f16::from_float(value).bits;
    case DType::i32: return std::isnan(value) ? 0u : uint32_t(int32_t(std::clamp(value, -2147483648.0f, 2147483520.0f)));
  }
  return 0;
}

BroadcastIndex plan_broadcast(const Shape& out, const std::vector<const Shape*>& inputs) {
  const int r = out.rank();
  const int count = int(inputs.size());
  int64_t st[kMaxOperands][kMaxDims] = {};
  int k = 0;
  for (const Shape* s : inputs) {
    int64_t stride = 1;
    for (int i = r - 1; i >= 0; --i) {
      const int j = s->rank() - r + i;
      const int64_t d = j >= 0 ? (*s)[j] : 1;
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

PointwiseParams pointwise_params(PointwiseOp op, Tensor& out, std::initializer_list<const Tensor*> inputs,
                                 float alpha, float beta) {
  PointwiseParams p;
  p.op = op;
  p.inputs = int(inputs.size());
  std::vector<const Shape*> shapes;
  int k = 0;
  for (const Tensor* t : inputs) {
    p.in[k++] = operand(*t);
    shapes.push_back(&t->shape());
  }
  p.out = out.raw();
  p.out_dtype = int(out.dtype());
  p.n = out.numel();
  p.index = plan_broadcast(out.shape(), shapes);
  p.alpha = alpha;
  p.beta = beta;
  return p;
}

PointwiseOp pointwise_op(op::UnaryKind kind) {
  switch (kind) {
    case op::UnaryKind::silu: return PointwiseOp::silu;
    case op::UnaryKind::gelu_tanh: return PointwiseOp::gelu_tanh;
    case op::UnaryKind::gelu_erf: return PointwiseOp::gelu_erf;
    case op::UnaryKind::relu: return PointwiseOp::relu;
    case op::UnaryKind::tanh: return PointwiseOp::tanh;
  }
  return PointwiseOp::copy;
}

PointwiseOp pointwise_op(op::BinaryKind kind) {
  switch (kind) {
    case op::BinaryKind::add: return PointwiseOp::add;
    case op::BinaryKind::sub: return PointwiseOp::sub;
    case op::BinaryKind::mul: return PointwiseOp::mul;
  }
  return PointwiseOp::copy;
}

RowParams row_params(RowOp op, const Tensor& x, const Tensor* weight, const Tensor* bias, Tensor& out, float eps,
                     float scale) {
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
  return p;
}

RowParams layer_norm_params(const op::LayerNorm& o) {
  RowParams p = row_params(RowOp::layer_norm, *o.x, o.weight, o.bias, *o.out, o.eps, 1.0f);
  p.mod_scale = operand(o.mod_scale);
  p.mod_shift = operand(o.mod_shift);
  return p;
}

ChannelNormParams channel_norm_params(const op::ChannelL2Norm& o) {
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
  return p;
}

RopeParams rope_params(const op::Rope& o) {
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
  return p;
}

std::vector<RowCopyParams> concat_params(const op::Concat& o) {
  Tensor& out = *o.out;
  const int axis = norm_axis(o.axis, out.rank());
  const int64_t es = int64_t(dtype_size(out.dtype()));
  const int64_t outer = span_of(out.shape(), 0, axis), inner = span_of(out.shape(), axis + 1, out.rank());
  const int64_t out_row = out.dim(axis) * inner * es;
  std::vector<RowCopyParams> copies;
  int64_t offset = 0;
  for (const Tensor* t : o.inputs) {
    const int64_t row = t->dim(axis) * inner * es;
    copies.push_back({bytes(out) + offset, out_row, bytes(*t), row, outer, row});
    offset += row;
  }
  return copies;
}

RowCopyParams slice_params(const op::Slice& o) {
  const Tensor& x = *o.x;
  Tensor& out = *o.out;
  const int axis = norm_axis(o.axis, x.rank());
  const int64_t es = int64_t(dtype_size(x.dtype()));
  const int64_t outer = span_of(x.shape(), 0, axis), inner = span_of(x.shape(), axis + 1, x.rank());
  const int64_t x_row = x.dim(axis) * inner * es, out_row = out.dim(axis) * inner * es;
  return {bytes(out), out_row, bytes(x) + o.begin * inner * es, x_row, outer, out_row};
}

PadParams pad_params(const op::Pad& o) {
  const Tensor& x = *o.x;
  Tensor& out = *o.out;
  PadParams p;
  p.x = x.raw();
  p.out = out.raw();
  p.elem_bytes = int(dtype_size(x.dtype()));
  p.pattern = fill_pattern(out.dtype(), o.value);
  p.rank = x.rank();
  for (int i = 0; i < x.rank(); ++i) {
    p.out_dims[i] = out.dim(i);
    p.x_dims[i] = x.dim(i);
    p.before[i] = o.before[i];
  }
  return p;
}

UpsampleParams upsample_params(const op::UpsampleNearest& o) {
  const Tensor& x = *o.x;
  UpsampleParams p;
  p.x = x.raw();
  p.out = o.out->raw();
  p.elem_bytes = int(dtype_size(x.dtype()));
  p.h = x.dim(-2);
  p.w = x.dim(-1);
  p.planes = p.h * p.w == 0 ? 0 : x.numel() / (p.h * p.w);
  p.sh = o.scale_h;
  p.sw = o.scale_w;
  return p;
}

GatherParams permute_params(const op::Permute& o) {
  const Tensor& x = *o.x;
  GatherParams p;
  p.x = x.raw();
  p.out = o.out->raw();
  p.elem_bytes = int(dtype_size(x.dtype()));
  p.rank = plan_permuted_gather(x.shape(), o.perm, p.dims, p.x_stride);
  return p;
}

}  // namespace reel::cuda
