// Element-wise kernels of the CUDA backend: activations, binary ops, mul_add, modulate,
// affine and convert with NumPy broadcasting (one kernel, the op chosen by a uniform switch);
// fill; the bias epilogues of the GEMM and convolution paths; rotary embedding. Grid-stride
// loops over the per-element bodies of cuda_elements.hpp (f32 math, one rounding on store).
#include "backend/cuda_device.cuh"
#include "cuda_check.hpp"

namespace reel::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void pointwise_kernel(PointwiseParams p) {
  for (int64_t i = global_index(); i < p.n; i += grid_stride()) pointwise_element(p, i);
}

__global__ void convert_kernel(const void* src, int src_dtype, void* dst, int dst_dtype, int64_t n) {
  for (int64_t i = global_index(); i < n; i += grid_stride()) convert_element(src, src_dtype, dst, dst_dtype, i);
}

template <class T>
__global__ void fill_kernel(T* out, T value, int64_t n) {
  for (int64_t i = global_index(); i < n; i += grid_stride()) out[i] = value;
}

__global__ void bias_rows_kernel(const float* src, Operand bias, void* out, int out_dtype, int64_t cols, int64_t n) {
  for (int64_t i = global_index(); i < n; i += grid_stride()) bias_rows_element(src, bias, out, out_dtype, cols, i);
}

__global__ void bias_channels_kernel(Operand src, Operand bias, void* out, int out_dtype, int64_t channels,
                                     int64_t spatial, int64_t n) {
  for (int64_t i = global_index(); i < n; i += grid_stride())
    bias_channels_element(src, bias, out, out_dtype, channels, spatial, i);
}

__global__ void rope_kernel(RopeParams p) {
  const int64_t pairs = rope_pairs(p);
  for (int64_t i = global_index(); i < pairs; i += grid_stride()) rope_element(p, i);
}

}  // namespace

cudaError_t probe_kernel_image() {
  cudaFuncAttributes attr{};
  const cudaError_t err = cudaFuncGetAttributes(&attr, pointwise_kernel);
  if (err != cudaSuccess) (void)cudaGetLastError();
  return err;
}

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
  const int64_t n = rows * cols;
  bias_rows_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(src, bias, out, out_dtype, cols, n);
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
  const int64_t pairs = rope_pairs(p);
  if (pairs <= 0) return;
  rope_kernel<<<grid_for(pairs, kThreads), kThreads, 0, stream>>>(p);
  check_launch("rope_kernel");
}

}  // namespace reel::cuda
