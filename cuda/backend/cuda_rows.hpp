// Internal: the row reductions of the CUDA backend (layer norm, optionally fused with the adaLN
// modulation, RMS norm, softmax over the last dimension; the channel L2 norm over dimension 1),
// written once for the GPU and the host.
//
// A row is processed by a "team" of threads: `sum`/`max` give every member the reduction of
// the partial values the members compute (member t of `size` takes indices t, t + size, ...),
// `for_each` spreads the row's indices over the members. On the GPU the team is a thread block
// (warp shuffles + shared memory, cuda_norm.cu); tests/cuda/test_cuda_kernel_logic.cpp plays
// every member in turn on the host, so the same code is checked against the CPU backend.
#pragma once
#include "backend/cuda_elements.hpp"

namespace reel::cuda {

// Statistics in f32; two passes for the variance (Σ(x − mean)², no cancellation), as the CPU.
#ifdef __CUDACC__
#pragma nv_exec_check_disable
#endif
template <class Team>
REEL_HD void row_op_row(const RowParams& p, int64_t row, Team& team) {
  const int64_t base = row * p.cols, cols = p.cols;
  const float n = float(cols);
  if (p.op == RowOp::softmax) {
    const float m = team.max([&](int t, int size) {
      float v = -INFINITY;
      for (int64_t j = t; j < cols; j += size) v = fmaxf(v, p.scale * load_f32(p.x, base + j));
      return v;
    });
    const float s = team.sum([&](int t, int size) {
      float v = 0.0f;
      for (int64_t j = t; j < cols; j += size) v += expf(p.scale * load_f32(p.x, base + j) - m);
      return v;
    });
    const float inv = 1.0f / s;
    team.for_each(cols, [&](int64_t j) {
      store_f32(p.out, p.out_dtype, base + j, expf(p.scale * load_f32(p.x, base + j) - m) * inv);
    });
    return;
  }
  float mean = 0.0f;
  if (p.op == RowOp::layer_norm)
    mean = team.sum([&](int t, int size) {
      float v = 0.0f;
      for (int64_t j = t; j < cols; j += size) v += load_f32(p.x, base + j);
      return v;
    }) / n;
  const float sq = team.sum([&](int t, int size) {
    float v = 0.0f;
    for (int64_t j = t; j < cols; j += size) {
      const float d = load_f32(p.x, base + j) - mean;
      v += d * d;
    }
    return v;
  });
  const float rstd = 1.0f / sqrtf(sq / n + p.eps);
  team.for_each(cols, [&](int64_t j) {
    float v = (load_f32(p.x, base + j) - mean) * rstd;
    if (p.weight.ptr) v *= load_f32(p.weight, j);
    if (p.bias.ptr) v += load_f32(p.bias, j);
    if (p.mod_scale.ptr) v = v * (1.0f + load_f32(p.mod_scale, j)) + load_f32(p.mod_shift, j);
    store_f32(p.out, p.out_dtype, base + j, v);
  });
}

REEL_HD int64_t channel_positions(const ChannelNormParams& p) { return p.batch * p.spatial; }

// Position i = b·spatial + s: the norm over the channels at that position, then every channel.
REEL_HD void channel_l2_position(const ChannelNormParams& p, int64_t i) {
  const float root_c = sqrtf(float(p.channels));
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

}  // namespace reel::cuda
