// Internal: the per-element bodies of the CUDA backend's element-wise and data-movement
// kernels, as __host__ __device__ functions over the plain parameter structs of
// cuda_launch.hpp. The kernels (cuda_pointwise.cu, cuda_layout.cu) loop them over a grid;
// tests/cuda/test_cuda_kernel_logic.cpp loops them on the host, over host memory, with the
// parameters the same host code builds (cuda_params.hpp), so the index math, the op
// semantics and the dtype conversions are checked on machines without a GPU.
//
// Element types are run-time values (reel::DType's numbers): one switch per access, uniform
// across a warp, so one kernel serves every dtype combination.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>

#include <cstdint>

#include "backend/cuda_launch.hpp"

#if defined(__CUDACC__)
#define REEL_HD __host__ __device__ __forceinline__
#else
#define REEL_HD inline
#endif
#if defined(__CUDA_ARCH__)
#define REEL_UNROLL _Pragma("unroll")
#else
#define REEL_UNROLL
#endif

namespace reel::cuda {

enum : int { kF32 = 0, kBf16 = 1, kF16 = 2, kI32 = 3 };

REEL_HD float load_f32(const void* p, int dtype, int64_t i) {
  switch (dtype) {
    case kBf16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case kF16: return __half2float(static_cast<const __half*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

REEL_HD float load_f32(const Operand& o, int64_t i) { return load_f32(o.ptr, o.dtype, i); }

// Rounds to nearest even.
REEL_HD void store_f32(void* p, int dtype, int64_t i, float v) {
  switch (dtype) {
    case kBf16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v); break;
    case kF16: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
    default: static_cast<float*>(p)[i] = v; break;
  }
}

// ---------------------------------------------------------------- element-wise

REEL_HD float pointwise_apply(const PointwiseParams& p, float a, float b, float c) {
  switch (p.op) {
    case PointwiseOp::copy: return a;
    case PointwiseOp::silu: return a / (1.0f + expf(-a));
    case PointwiseOp::gelu_tanh: {
      // 0.5·a·(1 + tanh(u)) = a · sigmoid(2u): no cancellation near 0 (as the CPU kernel).
      const float u2 = 2.0f * 0.7978845608028654f * (a + 0.044715f * a * a * a);
      return a / (1.0f + expf(-u2));
    }
    case PointwiseOp::gelu_erf: return 0.5f * a * (1.0f + erff(a * 0.70710678118654752f));
    case PointwiseOp::relu: return a > 0.0f ? a : 0.0f;
    case PointwiseOp::tanh: return tanhf(a);
    case PointwiseOp::add: return a + b;
    case PointwiseOp::sub: return a - b;
    case PointwiseOp::mul: return a * b;
    case PointwiseOp::mul_add: return a + b * c;
    case PointwiseOp::modulate: return a * (1.0f + b) + c;
    case PointwiseOp::affine: return p.alpha * a + p.beta;
  }
  return a;
}

// Output element i: its operands' offsets (unrolled over the fixed maximum rank, so every
// index is a constant: registers, no local memory; strides of absent operands are 0).
REEL_HD void pointwise_element(const PointwiseParams& p, int64_t i) {
  int64_t off0 = 0, off1 = 0, off2 = 0, rem = i;
REEL_UNROLL
  for (int d = kMaxDims - 1; d >= 0; --d) {
    if (d < p.index.rank) {
      const int64_t c = rem % p.index.dims[d];
      rem /= p.index.dims[d];
      off0 += c * p.index.strides[0][d];
      off1 += c * p.index.strides[1][d];
      off2 += c * p.index.strides[2][d];
    }
  }
  const float a = load_f32(p.in[0], off0);
  const float b = p.inputs > 1 ? load_f32(p.in[1], off1) : 0.0f;
  const float c = p.inputs > 2 ? load_f32(p.in[2], off2) : 0.0f;
  store_f32(p.out, p.out_dtype, i, pointwise_apply(p, a, b, c));
}

REEL_HD void convert_element(const void* src, int src_dtype, void* dst, int dst_dtype, int64_t i) {
  store_f32(dst, dst_dtype, i, load_f32(src, src_dtype, i));
}

// out[r, c] = src[r, c] + bias[c] (src null: 0; bias.ptr null: no bias), element i = r·cols + c.
REEL_HD void bias_rows_element(const float* src, const Operand& bias, void* out, int out_dtype, int64_t cols,
                               int64_t i) {
  float v = src ? src[i] : 0.0f;
  if (bias.ptr) v += load_f32(bias, i % cols);
  store_f32(out, out_dtype, i, v);
}

// out[b, c, s] = src[b, c, s] + bias[c] (src.ptr null: 0), element i = (b·channels + c)·spatial + s.
REEL_HD void bias_channels_element(const Operand& src, const Operand& bias, void* out, int out_dtype, int64_t channels,
                                   int64_t spatial, int64_t i) {
  float v = src.ptr ? load_f32(src, i) : 0.0f;
  if (bias.ptr) v += load_f32(bias, (i / spatial) % channels);
  store_f32(out, out_dtype, i, v);
}

REEL_HD int64_t rope_pairs(const RopeParams& p) { return p.batch * p.seq * p.heads * (p.dim / 2); }

// Pair `i` = (token, head, j) of x [B, S, H, D]: elements 2i and 2i + 1 (D = 2·half).
REEL_HD void rope_element(const RopeParams& p, int64_t i) {
  const int64_t half = p.dim / 2;
  const int64_t j = i % half;
  const int64_t s = (i / (half * p.heads)) % p.seq;  // token = b·seq + s
  const int64_t e = 2 * i;
  const float x0 = load_f32(p.x, e), x1 = load_f32(p.x, e + 1);
  const float* c = p.cos + s * p.dim + 2 * j;
  const float* sn = p.sin + s * p.dim + 2 * j;
  store_f32(p.out, p.out_dtype, e, x0 * c[0] - x1 * sn[0]);
  store_f32(p.out, p.out_dtype, e + 1, x1 * c[1] + x0 * sn[1]);
}

// ---------------------------------------------------------------- data movement

// The unit (16, 8, 4, 2 or 1 bytes) a row copy moves: the largest dividing every address,
// stride and the row length.
inline int row_copy_unit(const RowCopyParams& p) {
  const uint64_t bits = uint64_t(reinterpret_cast<uintptr_t>(p.dst)) | uint64_t(reinterpret_cast<uintptr_t>(p.src)) |
                        uint64_t(p.dst_stride) | uint64_t(p.src_stride) | uint64_t(p.row_bytes);
  for (int unit = 16; unit > 1; unit /= 2)
    if (bits % uint64_t(unit) == 0) return unit;
  return 1;
}

// Element i of a copy of rows × row_units units (T: 1 to 16 bytes).
template <class T>
REEL_HD void row_copy_element(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t row_units,
                              int64_t i) {
  const int64_t r = i / row_units, c = i % row_units;
  dst[r * dst_stride + c] = src[r * src_stride + c];
}

REEL_HD int64_t element_count(const int64_t* dims, int rank) {
  int64_t n = 1;
REEL_UNROLL
  for (int d = 0; d < kMaxDims; ++d) n *= d < rank ? dims[d] : 1;
  return n;
}

template <class T>
REEL_HD void permute_element(const GatherParams& p, int64_t i) {
  int64_t rem = i, off = 0;
REEL_UNROLL
  for (int d = kMaxDims - 1; d >= 0; --d) {
    if (d < p.rank) {
      off += (rem % p.dims[d]) * p.x_stride[d];
      rem /= p.dims[d];
    }
  }
  static_cast<T*>(p.out)[i] = static_cast<const T*>(p.x)[off];
}

template <class T>
REEL_HD void pad_element(const PadParams& p, int64_t i) {
  int64_t rem = i, off = 0, x_stride = 1;
  bool inside = true;
REEL_UNROLL
  for (int d = kMaxDims - 1; d >= 0; --d) {
    if (d < p.rank) {
      const int64_t c = rem % p.out_dims[d] - p.before[d];
      rem /= p.out_dims[d];
      inside = inside && c >= 0 && c < p.x_dims[d];
      off += c * x_stride;
      x_stride *= p.x_dims[d];
    }
  }
  static_cast<T*>(p.out)[i] = inside ? static_cast<const T*>(p.x)[off] : T(p.pattern);
}

REEL_HD int64_t upsample_count(const UpsampleParams& p) { return p.planes * p.h * p.sh * p.w * p.sw; }

template <class T>
REEL_HD void upsample_element(const UpsampleParams& p, int64_t i) {
  const int64_t ow = p.w * p.sw, oh = p.h * p.sh;
  const int64_t col = i % ow, t = i / ow;
  const int64_t row = t % oh, plane = t / oh;
  static_cast<T*>(p.out)[i] = static_cast<const T*>(p.x)[(plane * p.h + row / p.sh) * p.w + col / p.sw];
}

}  // namespace reel::cuda
