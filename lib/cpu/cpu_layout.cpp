// CPU data-movement ops: concat, slice, pad, nearest upsampling and permute. They move
// elements without arithmetic, so they work on raw 2- or 4-byte elements of any dtype.
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/cpu_common.hpp"
#include "cpu/cpu_kernels.hpp"
#include "layout_plan.hpp"
#include "parallel.hpp"

namespace reel::cpu {

namespace {

constexpr int64_t kCopyChunk = 1 << 18;  // bytes per parallel piece of a long row copy

// rows × row_bytes from src (rows src_stride bytes apart) to dst (dst_stride apart), in parallel.
void copy_rows(std::byte* dst, int64_t dst_stride, const std::byte* src, int64_t src_stride, int64_t rows,
               int64_t row_bytes) {
  if (rows <= 0 || row_bytes <= 0) return;
  const int64_t pieces = (row_bytes + kCopyChunk - 1) / kCopyChunk;
  const int64_t grain = std::max<int64_t>(1, kCopyChunk / row_bytes);
  parallel_for(rows * pieces, grain, [&](int64_t b, int64_t e) {
    for (int64_t item = b; item < e; ++item) {
      const int64_t r = item / pieces, p = item % pieces;
      const int64_t off = p * kCopyChunk, len = std::min(kCopyChunk, row_bytes - off);
      std::memcpy(dst + r * dst_stride + off, src + r * src_stride + off, size_t(len));
    }
  });
}

// Product of dims [from, to).
int64_t span_of(const Shape& s, int from, int to) {
  int64_t n = 1;
  for (int i = from; i < to; ++i) n *= s[i];
  return n;
}

int norm_axis(int axis, int rank) { return axis < 0 ? axis + rank : axis; }

// Fills n elements of `type` at dst with `value`.
void fill_value(std::byte* dst, DType type, float value, int64_t n) {
  uint32_t pattern = 0;
  switch (type) {
    case DType::f32: pattern = std::bit_cast<uint32_t>(value); break;
    case DType::bf16: pattern = bf16::from_float(value).bits; break;
    case DType::f16: pattern = f16::from_float(value).bits; break;
    case DType::i32:  // truncated towards zero, saturated, NaN as 0
      pattern = std::isnan(value) ? 0u : uint32_t(int32_t(std::clamp(value, -2147483648.0f, 2147483520.0f)));
      break;
  }
  parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) {
    if (dtype_size(type) == 4) std::fill(reinterpret_cast<uint32_t*>(dst) + b, reinterpret_cast<uint32_t*>(dst) + e, pattern);
    else std::fill(reinterpret_cast<uint16_t*>(dst) + b, reinterpret_cast<uint16_t*>(dst) + e, uint16_t(pattern));
  });
}

// ---------------------------------------------------------------- permute

struct PermutePlan {
  int rank = 0;
  std::array<int64_t, kMaxRank> dims{};      // output dims (collapsed)
  std::array<int64_t, kMaxRank> x_stride{};  // input stride of each output dim
};

PermutePlan plan_permute(const Shape& x, const std::array<int, kMaxRank>& perm) {
  PermutePlan p;
  p.rank = plan_permuted_gather(x, perm, p.dims.data(), p.x_stride.data());
  return p;
}

template <class T>
void permute_elements(const T* x, T* out, const PermutePlan& p) {
  const int last = p.rank - 1;
  std::array<int64_t, kMaxRank> out_stride{};
  out_stride[last] = 1;
  for (int i = last - 1; i >= 0; --i) out_stride[i] = out_stride[i + 1] * p.dims[i + 1];

  if (p.x_stride[last] == 1) {  // rows stay contiguous: copy them whole
    const int64_t rows = out_stride[0] * p.dims[0] / p.dims[last];
    const int64_t len = p.dims[last];
    parallel_for(rows, std::max<int64_t>(1, 16384 / len), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        int64_t rem = r, xoff = 0;
        for (int i = last - 1; i >= 0; --i) {
          xoff += (rem % p.dims[i]) * p.x_stride[i];
          rem /= p.dims[i];
        }
        std::memcpy(out + r * len, x + xoff, size_t(len) * sizeof(T));
      }
    });
    return;
  }
  // A batched 2-D transpose: output dim j is x's innermost (stride 1), output's innermost is
  // strided in x. Move 32×32 tiles so both sides stay in cache.
  int j = 0;
  while (j < last && p.x_stride[j] != 1) ++j;
  constexpr int64_t kTile = 32;
  const int64_t ta = (p.dims[j] + kTile - 1) / kTile, tb = (p.dims[last] + kTile - 1) / kTile;
  int64_t outer = 1;
  for (int i = 0; i < last; ++i)
    if (i != j) outer *= p.dims[i];
  parallel_for(outer * ta * tb, 4, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t bt = item % tb, at = (item / tb) % ta;
      int64_t rem = item / (tb * ta), xoff = 0, ooff = 0;
      for (int i = last - 1; i >= 0; --i) {
        if (i == j) continue;
        const int64_t c = rem % p.dims[i];
        rem /= p.dims[i];
        xoff += c * p.x_stride[i];
        ooff += c * out_stride[i];
      }
      const int64_t a0 = at * kTile, a1 = std::min(p.dims[j], a0 + kTile);
      const int64_t b0 = bt * kTile, b1 = std::min(p.dims[last], b0 + kTile);
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t a = a0; a < a1; ++a) out[ooff + a * out_stride[j] + b] = x[xoff + a + b * p.x_stride[last]];
    }
  });
}

// ---------------------------------------------------------------- upsample

template <class T>
void upsample_elements(const T* x, T* out, int64_t planes, int64_t h, int64_t w, int sh, int sw) {
  const int64_t ow = w * sw;
  parallel_for(planes * h, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, ow * sh)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {  // r = plane·h + input row
      const T* src = x + r * w;
      T* dst = out + r * sh * ow;
      for (int64_t i = 0; i < w; ++i)
        for (int k = 0; k < sw; ++k) dst[i * sw + k] = src[i];
      for (int k = 1; k < sh; ++k) std::memcpy(dst + k * ow, dst, size_t(ow) * sizeof(T));
    }
  });
}

}  // namespace

Support supports(const op::Concat& o) {
  for (size_t i = 0; i < o.inputs.size(); ++i)
    if (auto s = cpu_tensors({{o.inputs[i], "an input"}}); !s) return s;
  return cpu_tensors({{o.out, "out"}});
}
void execute(const op::Concat& o, CpuContext&) {
  Tensor& out = *o.out;
  const int axis = norm_axis(o.axis, out.rank());
  const int64_t es = int64_t(dtype_size(out.dtype()));
  const int64_t outer = span_of(out.shape(), 0, axis), inner = span_of(out.shape(), axis + 1, out.rank());
  const int64_t out_row = out.dim(axis) * inner * es;
  int64_t offset = 0;
  for (const Tensor* t : o.inputs) {
    const int64_t row = t->dim(axis) * inner * es;
    copy_rows(bytes_at(out, 0) + offset, out_row, bytes_at(*t, 0), row, outer, row);
    offset += row;
  }
}

Support supports(const op::Slice& o) { return cpu_tensors({{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Slice& o, CpuContext&) {
  const Tensor& x = *o.x;
  Tensor& out = *o.out;
  const int axis = norm_axis(o.axis, x.rank());
  const int64_t es = int64_t(dtype_size(x.dtype()));
  const int64_t outer = span_of(x.shape(), 0, axis), inner = span_of(x.shape(), axis + 1, x.rank());
  const int64_t x_row = x.dim(axis) * inner * es, out_row = out.dim(axis) * inner * es;
  copy_rows(bytes_at(out, 0), out_row, bytes_at(x, 0) + o.begin * inner * es, x_row, outer, out_row);
}

Support supports(const op::Pad& o) { return cpu_tensors({{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Pad& o, CpuContext&) {
  const Tensor& x = *o.x;
  Tensor& out = *o.out;
  const int r = x.rank();
  fill_value(bytes_at(out, 0), out.dtype(), o.value, out.numel());
  if (x.numel() == 0) return;
  if (r == 0) {
    std::memcpy(out.raw(), x.raw(), x.nbytes());
    return;
  }
  const int64_t es = int64_t(dtype_size(x.dtype()));
  const int64_t last = x.dim(r - 1), rows = x.numel() / last;
  int64_t base = o.before[r - 1];  // offset of x's first element in out
  for (int i = 0; i < r - 1; ++i) base += o.before[i] * out.shape().stride(i);
  parallel_for(rows, std::max<int64_t>(1, 16384 / last), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      int64_t rem = row, off = base;
      for (int i = r - 2; i >= 0; --i) {
        off += (rem % x.dim(i)) * out.shape().stride(i);
        rem /= x.dim(i);
      }
      std::memcpy(bytes_at(out, off), bytes_at(x, row * last), size_t(last * es));
    }
  });
}

Support supports(const op::UpsampleNearest& o) { return cpu_tensors({{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::UpsampleNearest& o, CpuContext&) {
  const Tensor& x = *o.x;
  Tensor& out = *o.out;
  const int64_t h = x.dim(-2), w = x.dim(-1);
  if (x.numel() == 0) return;
  const int64_t planes = x.numel() / (h * w);
  if (dtype_size(x.dtype()) == 4)
    upsample_elements(static_cast<const uint32_t*>(x.raw()), static_cast<uint32_t*>(out.raw()), planes, h, w,
                      o.scale_h, o.scale_w);
  else
    upsample_elements(static_cast<const uint16_t*>(x.raw()), static_cast<uint16_t*>(out.raw()), planes, h, w,
                      o.scale_h, o.scale_w);
}

Support supports(const op::Permute& o) { return cpu_tensors({{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Permute& o, CpuContext&) {
  const Tensor& x = *o.x;
  Tensor& out = *o.out;
  if (x.numel() == 0) return;
  const PermutePlan p = plan_permute(x.shape(), o.perm);
  if (dtype_size(x.dtype()) == 4)
    permute_elements(static_cast<const uint32_t*>(x.raw()), static_cast<uint32_t*>(out.raw()), p);
  else
    permute_elements(static_cast<const uint16_t*>(x.raw()), static_cast<uint16_t*>(out.raw()), p);
}

}  // namespace reel::cpu
