// Row reductions of the CUDA backend: layer norm, RMS norm and softmax over the last
// dimension (one block per row, warp-shuffle reductions, f32 statistics, the row read again
// from L1/L2 for each pass), and the Wan VAE's channel L2 norm over dimension 1 (one thread
// per (batch, position), looping over the channels: adjacent threads read adjacent memory).
#include <cmath>

#include "backend/cuda_device.cuh"
#include "cuda_check.hpp"

namespace reel::cuda {

namespace {

// Two passes for the variance (Σ(x − mean)², no cancellation), as the CPU kernel.
__global__ void row_kernel(RowParams p) {
  __shared__ float shared[32];
  for (int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) {
    const int64_t base = row * p.cols;
    const float n = float(p.cols);
    if (p.op == RowOp::softmax) {
      float m = -INFINITY;
      for (int64_t j = threadIdx.x; j < p.cols; j += blockDim.x) m = fmaxf(m, p.scale * load_f32(p.x, base + j));
      m = block_reduce<true>(m, shared);
      float s = 0.0f;
      for (int64_t j = threadIdx.x; j < p.cols; j += blockDim.x) s += expf(p.scale * load_f32(p.x, base + j) - m);
      const float inv = 1.0f / block_reduce<false>(s, shared);
      for (int64_t j = threadIdx.x; j < p.cols; j += blockDim.x)
        store_f32(p.out, p.out_dtype, base + j, expf(p.scale * load_f32(p.x, base + j) - m) * inv);
      continue;
    }
    float mean = 0.0f;
    if (p.op == RowOp::layer_norm) {
      float s = 0.0f;
      for (int64_t j = threadIdx.x; j < p.cols; j += blockDim.x) s += load_f32(p.x, base + j);
      mean = block_reduce<false>(s, shared) / n;
    }
    float sq = 0.0f;
    for (int64_t j = threadIdx.x; j < p.cols; j += blockDim.x) {
      const float v = load_f32(p.x, base + j) - mean;
      sq += v * v;
    }
    const float rstd = 1.0f / sqrtf(block_reduce<false>(sq, shared) / n + p.eps);
    for (int64_t j = threadIdx.x; j < p.cols; j += blockDim.x) {
      float v = (load_f32(p.x, base + j) - mean) * rstd;
      if (p.weight.ptr) v *= load_f32(p.weight, j);
      if (p.bias.ptr) v += load_f32(p.bias, j);
      store_f32(p.out, p.out_dtype, base + j, v);
    }
  }
}

__global__ void channel_l2_kernel(ChannelNormParams p) {
  const int64_t positions = p.batch * p.spatial;
  const float root_c = sqrtf(float(p.channels));
  for (int64_t i = global_index(); i < positions; i += grid_stride()) {
    const int64_t b = i / p.spatial, s = i % p.spatial;
    const int64_t base = b * p.channels * p.spatial + s;
    float acc = 0.0f;
    for (int64_t c = 0; c < p.channels; ++c) {
      const float v = load_f32(p.x, base + c * p.spatial);
      acc += v * v;
    }
    const float inv = 1.0f / fmaxf(sqrtf(acc), p.eps);
    for (int64_t c = 0; c < p.channels; ++c) {
      const int64_t e = base + c * p.spatial;
      const float g = load_f32(p.gamma, c) * root_c;
      const float bias = p.bias.ptr ? load_f32(p.bias, c) : 0.0f;
      store_f32(p.out, p.out_dtype, e, (load_f32(p.x, e) * inv) * g + bias);
    }
  }
}

}  // namespace

void launch_row_op(const RowParams& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.cols <= 0) return;
  // A power of two from 32 to 512, no larger than the row: short rows leave no block idle.
  int threads = 32;
  while (threads < 512 && threads < p.cols) threads *= 2;
  const unsigned grid = unsigned(p.rows < 1048576 ? p.rows : 1048576);
  row_kernel<<<grid, threads, 0, stream>>>(p);
  check_launch("row_kernel");
}

void launch_channel_l2_norm(const ChannelNormParams& p, cudaStream_t stream) {
  const int64_t positions = p.batch * p.spatial;
  if (positions <= 0 || p.channels <= 0) return;
  constexpr int kThreads = 256;
  channel_l2_kernel<<<grid_for(positions, kThreads), kThreads, 0, stream>>>(p);
  check_launch("channel_l2_kernel");
}

}  // namespace reel::cuda
