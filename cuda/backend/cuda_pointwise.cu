// Element-wise kernels of the CUDA backend: activations, binary ops, mul_add, modulate,
// affine and convert with NumPy broadcasting (one kernel, the op chosen by a uniform switch);
// fill; the bias epilogues of the GEMM and convolution paths; rotary embedding.
// Simple grid-stride loops, one element per thread step, f32 math, one rounding on store.
#include <cmath>

#include "backend/cuda_device.cuh"
#include "cuda_check.hpp"

namespace reel::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float apply(const PointwiseParams& p, float a, float b, float c) {
  switch (p.op) {
    case PointwiseOp::copy: return a;
    case PointwiseOp::silu: return a / (1.0f + expf(-a));
    case PointwiseOp::gelu_tanh: {
      // 0.5·a·(1 + tanh(u)) = a · sigmoid(2u): no cancellation near 0 (as the CPU kernel).
      const float u2 = 2.0f * 0.7978845608028654f * (a + 0.044715f * a * a * a);
      return a / (1.0f + expf(-u2));
    }
    case PointwiseOp::gelu_erf: return 0.5f * a * (1.0f + erff(a * 0.70710678118654752f));
    case PointwiseOp::add: return a + b;
    case PointwiseOp::sub: return a - b;
    case PointwiseOp::mul: return a * b;
    case PointwiseOp::mul_add: return a + b * c;
    case PointwiseOp::modulate: return a * (1.0f + b) + c;
    case PointwiseOp::affine: return p.alpha * a + p.beta;
  }
  return a;
}

__global__ void pointwise_kernel(PointwiseParams p) {
  for (int64_t i = global_index(); i < p.n; i += grid_stride()) {
    int64_t off[kMaxOperands] = {0, 0, 0};
    int64_t rem = i;
    for (int d = p.index.rank - 1; d >= 0; --d) {
      const int64_t c = rem % p.index.dims[d];
      rem /= p.index.dims[d];
      for (int k = 0; k < p.inputs; ++k) off[k] += c * p.index.strides[k][d];
    }
    const float a = load_f32(p.in[0], off[0]);
    const float b = p.inputs > 1 ? load_f32(p.in[1], off[1]) : 0.0f;
    const float c = p.inputs > 2 ? load_f32(p.in[2], off[2]) : 0.0f;
    store_f32(p.out, p.out_dtype, i, apply(p, a, b, c));
  }
}

__global__ void convert_kernel(const void* src, int src_dtype, void* dst, int dst_dtype, int64_t n) {
  for (int64_t i = global_index(); i < n; i += grid_stride()) store_f32(dst, dst_dtype, i, load_f32(src, src_dtype, i));
}

template <class T>
__global__ void fill_kernel(T* out, T value, int64_t n) {
  for (int64_t i = global_index(); i < n; i += grid_stride()) out[i] = value;
}

__global__ void bias_rows_kernel(const float* src, Operand bias, void* out, int out_dtype, int64_t rows,
                                 int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = global_index(); i < n; i += grid_stride()) {
    float v = src ? src[i] : 0.0f;
    if (bias.ptr) v += load_f32(bias, i % cols);
    store_f32(out, out_dtype, i, v);
  }
}

__global__ void bias_channels_kernel(Operand src, Operand bias, void* out, int out_dtype, int64_t channels,
                                     int64_t spatial, int64_t n) {
  for (int64_t i = global_index(); i < n; i += grid_stride()) {
    float v = load_f32(src, i);
    if (bias.ptr) v += load_f32(bias, (i / spatial) % channels);
    store_f32(out, out_dtype, i, v);
  }
}

// One thread per pair (2j, 2j+1) of one head of one token.
__global__ void rope_kernel(RopeParams p) {
  const int64_t half = p.dim / 2;
  const int64_t pairs = p.batch * p.seq * p.heads * half;
  for (int64_t i = global_index(); i < pairs; i += grid_stride()) {
    const int64_t j = i % half;
    const int64_t token = i / (half * p.heads);  // b·seq + s
    const int64_t s = token % p.seq;
    const int64_t e = 2 * i;  // element index of the pair's first member in x / out
    const float x0 = load_f32(p.x, e), x1 = load_f32(p.x, e + 1);
    const float* c = p.cos + s * p.dim + 2 * j;
    const float* sn = p.sin + s * p.dim + 2 * j;
    store_f32(p.out, p.out_dtype, e, x0 * c[0] - x1 * sn[0]);
    store_f32(p.out, p.out_dtype, e + 1, x1 * c[1] + x0 * sn[1]);
  }
}

}  // namespace

void launch_pointwise(const PointwiseParams& p, cudaStream_t stream) {
  if (p.n <= 0) return;
  pointwise_kernel<<<grid_for(p.n, kThreads), kThreads, 0, stream>>>(p);
  check_launch("pointwise_kernel");
}

void launch_convert(const void* src, int src_dtype, void* dst, int dst_dtype, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  convert_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(src, src_dtype, dst, dst_dtype, n);
  check_launch("convert_kernel");
}

void launch_fill(void* out, int elem_bytes, uint32_t pattern, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  if (elem_bytes == 4)
    fill_kernel<uint32_t><<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<uint32_t*>(out), pattern, n);
  else
    fill_kernel<uint16_t><<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<uint16_t*>(out),
                                                                        uint16_t(pattern), n);
  check_launch("fill_kernel");
}

void launch_bias_rows(const float* src, Operand bias, void* out, int out_dtype, int64_t rows, int64_t cols,
                      cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  bias_rows_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, stream>>>(src, bias, out, out_dtype, rows, cols);
  check_launch("bias_rows_kernel");
}

void launch_bias_channels(Operand src, Operand bias, void* out, int out_dtype, int64_t batch, int64_t channels,
                          int64_t spatial, cudaStream_t stream) {
  const int64_t n = batch * channels * spatial;
  if (n <= 0) return;
  bias_channels_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(src, bias, out, out_dtype, channels, spatial,
                                                                       n);
  check_launch("bias_channels_kernel");
}

void launch_rope(const RopeParams& p, cudaStream_t stream) {
  const int64_t pairs = p.batch * p.seq * p.heads * (p.dim / 2);
  if (pairs <= 0) return;
  rope_kernel<<<grid_for(pairs, kThreads), kThreads, 0, stream>>>(p);
  check_launch("rope_kernel");
}

}  // namespace reel::cuda
