// Internal: walks an output shape with up to three NumPy-broadcast inputs, in row blocks.
//
// The output is viewed as [outer..., inner] after dropping size-1 dimensions and merging
// dimensions that are contiguous for every operand; each input's inner stride is then 1
// (it varies along the row) or 0 (one value repeated along the row). Rows are cut into
// blocks of at most kBlock elements and the blocks are spread over threads; every element is
// computed by exactly one call, so results do not depend on the thread count.
#pragma once
#include <algorithm>
#include <array>

#include "cpu/cpu_common.hpp"
#include "parallel.hpp"

namespace reel::cpu {

inline constexpr int kMaxInputs = 3;

struct BroadcastPlan {
  int rank = 0;                                           // collapsed rank, >= 1
  std::array<int64_t, kMaxRank> dims{};                   // collapsed output dims
  std::array<std::array<int64_t, kMaxRank>, kMaxInputs> strides{};  // element strides, 0 = broadcast
  int inputs = 0;
};

inline BroadcastPlan plan_broadcast(const Shape& out, std::initializer_list<const Shape*> inputs) {
  BroadcastPlan p;
  p.inputs = int(inputs.size());
  // Full-rank strides per input, aligned to the right of out.
  std::array<int64_t, kMaxRank> dims{};
  std::array<std::array<int64_t, kMaxRank>, kMaxInputs> st{};
  const int r = out.rank();
  for (int i = 0; i < r; ++i) dims[i] = out[i];
  int k = 0;
  for (const Shape* s : inputs) {
    int64_t stride = 1;
    for (int i = r - 1; i >= 0; --i) {
      const int j = s->rank() - r + i;
      const int64_t d = j >= 0 ? (*s)[j] : 1;
      st[k][i] = (d == 1) ? 0 : stride;
      stride *= d;
    }
    ++k;
  }
  // Drop size-1 output dims, then merge neighbours that are contiguous for every operand.
  for (int i = 0; i < r; ++i) {
    if (dims[i] == 1) continue;
    if (p.rank > 0) {
      bool merge = true;
      for (int in = 0; in < p.inputs; ++in)
        if (p.strides[in][p.rank - 1] != st[in][i] * dims[i]) merge = false;
      if (merge) {
        p.dims[p.rank - 1] *= dims[i];
        for (int in = 0; in < p.inputs; ++in) p.strides[in][p.rank - 1] = st[in][i];
        continue;
      }
    }
    p.dims[p.rank] = dims[i];
    for (int in = 0; in < p.inputs; ++in) p.strides[in][p.rank] = st[in][i];
    ++p.rank;
  }
  if (p.rank == 0) {  // every dim is 1 (or a scalar): one element
    p.rank = 1;
    p.dims[0] = 1;
    for (int in = 0; in < p.inputs; ++in) p.strides[in][0] = 1;
  }
  return p;
}

// One block of a row: `len` output elements starting at `out_offset`; input i starts at
// in_offset[i] and advances by inner_stride[i] (0 or 1) per element.
struct RowBlock {
  int64_t out_offset;
  int64_t len;
  std::array<int64_t, kMaxInputs> in_offset;
  std::array<int64_t, kMaxInputs> inner_stride;
};

// Calls fn(const RowBlock&) for every block, in parallel.
template <class F>
void for_each_block(const BroadcastPlan& p, F&& fn) {
  const int last = p.rank - 1;
  const int64_t inner = p.dims[last];
  const int64_t blocks_per_row = (inner + kBlock - 1) / kBlock;
  int64_t rows = 1;
  for (int i = 0; i < last; ++i) rows *= p.dims[i];
  const int64_t items = rows * blocks_per_row;
  const int64_t block_len = std::min(inner, kBlock);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, block_len));
  parallel_for(items, grain, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t row = item / blocks_per_row, blk = item % blocks_per_row;
      RowBlock rb{};
      // Decode the row index into outer coordinates (row-major over dims[0..last)).
      int64_t rem = row;
      std::array<int64_t, kMaxInputs> off{};
      for (int i = last - 1; i >= 0; --i) {
        const int64_t c = rem % p.dims[i];
        rem /= p.dims[i];
        for (int in = 0; in < p.inputs; ++in) off[in] += c * p.strides[in][i];
      }
      const int64_t start = blk * kBlock;
      rb.out_offset = row * inner + start;
      rb.len = std::min(kBlock, inner - start);
      for (int in = 0; in < p.inputs; ++in) {
        rb.inner_stride[in] = p.strides[in][last];
        rb.in_offset[in] = off[in] + start * p.strides[in][last];
      }
      fn(rb);
    }
  });
}

// Operand row as f32: a view of the tensor (f32, stride 1), a converted copy, or one value
// repeated (stride 0) written into scratch.
inline const float* operand_row(const Tensor& t, const RowBlock& rb, int input, float* scratch) {
  const std::byte* src = bytes_at(t, rb.in_offset[input]);
  if (rb.inner_stride[input] == 1) return f32_view(src, t.dtype(), scratch, rb.len);
  float v;
  load_f32(src, t.dtype(), &v, 1);
  std::fill_n(scratch, rb.len, v);
  return scratch;
}

}  // namespace reel::cpu
