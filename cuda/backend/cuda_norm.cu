// Row reductions of the CUDA backend: layer norm, RMS norm and softmax over the last
// dimension (one block per row, warp-shuffle reductions, f32 statistics, the row read again
// from L1/L2 for each pass), and the Wan VAE's channel L2 norm over dimension 1 (one thread
// per (batch, position), looping over the channels: adjacent threads read adjacent memory).
// The algorithms are in cuda_rows.hpp; this file supplies the thread-block team.
#include "backend/cuda_device.cuh"
#include "backend/cuda_rows.hpp"
#include "cuda_check.hpp"

namespace reel::cuda {

namespace {

// The threads of one block as the team of cuda_rows.hpp.
struct BlockTeam {
  float* shared;  // 32 floats
  template <class F>
  __device__ float sum(F partial) {
    return block_reduce<false>(partial(int(threadIdx.x), int(blockDim.x)), shared);
  }
  template <class F>
  __device__ float max(F partial) {
    return block_reduce<true>(partial(int(threadIdx.x), int(blockDim.x)), shared);
  }
  template <class F>
  __device__ void for_each(int64_t n, F body) {
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) body(j);
  }
};

__global__ void row_kernel(RowParams p) {
  __shared__ float shared[32];
  BlockTeam team{shared};
  for (int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) row_op_row(p, row, team);
}

__global__ void channel_l2_kernel(ChannelNormParams p) {
  const int64_t positions = channel_positions(p);
  for (int64_t i = global_index(); i < positions; i += grid_stride()) channel_l2_position(p, i);
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
  const int64_t positions = channel_positions(p);
  if (positions <= 0 || p.channels <= 0) return;
  constexpr int kThreads = 256;
  channel_l2_kernel<<<grid_for(positions, kThreads), kThreads, 0, stream>>>(p);
  check_launch("channel_l2_kernel");
}

}  // namespace reel::cuda
