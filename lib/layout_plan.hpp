// Internal, shared by the CPU and CUDA backends: the plan of a permute as a strided gather.
#pragma once
#include <array>
#include <cstdint>

#include "reel/tensor.hpp"

namespace reel {

// Output dims of x permuted by `perm`, with x's element stride for each, after dropping
// size-1 dims and merging neighbours that are also contiguous in x (fewer, longer loops).
// Writes rank entries of dims and x_stride and returns rank (>= 1; a single element gives
// dims {1}, stride {0}).
inline int plan_permuted_gather(const Shape& x, const std::array<int, kMaxRank>& perm, int64_t* dims,
                                int64_t* x_stride) {
  int rank = 0;
  for (int i = 0; i < x.rank(); ++i) {
    const int64_t d = x[perm[i]], s = x.stride(perm[i]);
    if (d == 1) continue;
    if (rank > 0 && x_stride[rank - 1] == s * d) {  // contiguous in x too: merge
      dims[rank - 1] *= d;
      x_stride[rank - 1] = s;
      continue;
    }
    dims[rank] = d;
    x_stride[rank] = s;
    ++rank;
  }
  if (rank == 0) {
    dims[0] = 1;
    x_stride[0] = 0;
    rank = 1;
  }
  return rank;
}

}  // namespace reel
