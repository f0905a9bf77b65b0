// CUDA data-movement ops (host side): concat and slice as strided row copies, pad, nearest
// upsampling and permute as gathers (cuda_layout.cu). Any dtype (they move raw elements).
#include "backend/cuda_ops.hpp"

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

Support supports(const op::Concat& o, Device d) {
  for (size_t i = 0; i < o.inputs.size(); ++i)
    if (auto s = on_device(d, {{o.inputs[i], "an input"}}); !s) return s;
  return on_device(d, {{o.out, "out"}});
}
void execute(const op::Concat& o, CudaContext& ctx) {
  Tensor& out = *o.out;
  const int axis = norm_axis(o.axis, out.rank());
  const int64_t es = int64_t(dtype_size(out.dtype()));
  const int64_t outer = span_of(out.shape(), 0, axis), inner = span_of(out.shape(), axis + 1, out.rank());
  const int64_t out_row = out.dim(axis) * inner * es;
  int64_t offset = 0;
  for (const Tensor* t : o.inputs) {
    const int64_t row = t->dim(axis) * inner * es;
    launch_row_copy({bytes(out) + offset, out_row, bytes(*t), row, outer, row}, ctx.stream());
    offset += row;
  }
}

Support supports(const op::Slice& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Slice& o, CudaContext& ctx) {
  const Tensor& x = *o.x;
  Tensor& out = *o.out;
  const int axis = norm_axis(o.axis, x.rank());
  const int64_t es = int64_t(dtype_size(x.dtype()));
  const int64_t outer = span_of(x.shape(), 0, axis), inner = span_of(x.shape(), axis + 1, x.rank());
  const int64_t x_row = x.dim(axis) * inner * es, out_row = out.dim(axis) * inner * es;
  launch_row_copy({bytes(out), out_row, bytes(x) + o.begin * inner * es, x_row, outer, out_row}, ctx.stream());
}

Support supports(const op::Pad& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Pad& o, CudaContext& ctx) {
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
  launch_pad(p, ctx.stream());
}

Support supports(const op::UpsampleNearest& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::UpsampleNearest& o, CudaContext& ctx) {
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
  launch_upsample_nearest(p, ctx.stream());
}

Support supports(const op::Permute& o, Device d) { return on_device(d, {{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Permute& o, CudaContext& ctx) {
  const Tensor& x = *o.x;
  GatherParams p;
  p.x = x.raw();
  p.out = o.out->raw();
  p.elem_bytes = int(dtype_size(x.dtype()));
  // Out dims with x's strides; size-1 dims dropped and neighbours contiguous in x merged.
  p.rank = 0;
  for (int i = 0; i < x.rank(); ++i) {
    const int64_t d = x.dim(o.perm[i]), s = x.shape().stride(o.perm[i]);
    if (d == 1) continue;
    if (p.rank > 0 && p.x_stride[p.rank - 1] == s * d) {
      p.dims[p.rank - 1] *= d;
      p.x_stride[p.rank - 1] = s;
      continue;
    }
    p.dims[p.rank] = d;
    p.x_stride[p.rank] = s;
    ++p.rank;
  }
  if (p.rank == 0) {
    p.rank = 1;
    p.dims[0] = 1;
    p.x_stride[0] = 0;
  }
  launch_permute(p, ctx.stream());
}

}  // namespace reel::cuda
