// Linear for few rows (M <= kSkinnyMaxRows) with bf16/f16 weights, when the backend computes
// low-precision GEMMs in f32 (CpuContext::native_low_precision false). Widening a whole weight
// matrix for a handful of rows would cost several times the product itself; this kernel widens
// one weight row at a time into L1 and takes f32 dot products with every input row, so the
// weights are read once, in their own type (memory-bound, as a GEMV should be).
#include <cstring>
#include <vector>

#include "cpu/cpu_dnnl.hpp"
#include "cpu/cpu_skinny_gemm.hpp"
#include "parallel.hpp"

namespace reel::cpu {

namespace {

constexpr int kLanes = 16;
constexpr int64_t kColumns = 64;  // output columns per work item

// 16 floats as one value (GCC vector extension): one zmm on AVX-512, two ymm on AVX2, four
// xmm on the baseline build, always the same lane-wise arithmetic.
using v16 = float __attribute__((vector_size(64)));
// By pointer, not by value: a 64-byte vector return would change the ABI between the clones.
__attribute__((always_inline)) inline void load16(v16& v, const float* p) { std::memcpy(&v, p, sizeof v); }

// out[r·ldo + c] = Σ_i x[r·k + i]·w[c·k + i] for an R×C block: R·C vector accumulators fed by
// R + C loads per step; lanes are summed in a fixed order, so results do not depend on threads.
// Always inlined, so each instruction-set clone of dot_rows gets its own vector code.
template <int R, int C>
__attribute__((always_inline)) inline void dot_block(const float* x, const float* w, int64_t k, float* out, int64_t ldo) {
  v16 acc[R][C] = {};
  int64_t i = 0;
  for (; i + kLanes <= k; i += kLanes) {
    v16 wv[C];
    for (int c = 0; c < C; ++c) load16(wv[c], w + c * k + i);
    for (int r = 0; r < R; ++r) {
      v16 xv;
      load16(xv, x + r * k + i);
      for (int c = 0; c < C; ++c) acc[r][c] += xv * wv[c];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float s = 0.0f;
      for (int64_t t = i; t < k; ++t) s += x[r * k + t] * w[c * k + t];
      for (int j = 0; j < kLanes; ++j) s += acc[r][c][j];
      out[r * ldo + c] = s;
    }
}

// All rows of x against `cols` (<= 4) widened weight rows: blocks of 4×4, then the edges.
REEL_CPU_CLONES void dot_rows(const float* x, int64_t rows, const float* w, int64_t cols, int64_t k, float* out,
                              int64_t ldo) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float* xr = x + r * k;
    float* o = out + r * ldo;
    switch (cols) {
      case 4: dot_block<4, 4>(xr, w, k, o, ldo); break;
      case 3: dot_block<4, 3>(xr, w, k, o, ldo); break;
      case 2: dot_block<4, 2>(xr, w, k, o, ldo); break;
      default: dot_block<4, 1>(xr, w, k, o, ldo); break;
    }
  }
  for (; r < rows; ++r) {
    const float* xr = x + r * k;
    float* o = out + r * ldo;
    switch (cols) {
      case 4: dot_block<1, 4>(xr, w, k, o, ldo); break;
      case 3: dot_block<1, 3>(xr, w, k, o, ldo); break;
      case 2: dot_block<1, 2>(xr, w, k, o, ldo); break;
      default: dot_block<1, 1>(xr, w, k, o, ldo); break;
    }
  }
}

}  // namespace

bool use_skinny_linear(const op::Linear& o, const CpuContext& ctx) {
  const int64_t k = o.weight->dim(1);
  const int64_t m = k == 0 ? 0 : o.x->numel() / k;
  return !ctx.native_low_precision() && o.weight->dtype() != DType::f32 && m >= 1 && m <= kSkinnyMaxRows;
}

void skinny_linear(const op::Linear& o) {
  const Tensor& w = *o.weight;
  Tensor& out = *o.out;
  const int64_t k = w.dim(1), n = w.dim(0), m = o.x->numel() / k;
  const float* x = static_cast<const float*>(data_as(*o.x, DType::f32, kScratchSrc));
  const float* bias = o.bias ? static_cast<const float*>(data_as(*o.bias, DType::f32, kScratchBias)) : nullptr;
  const int64_t items = (n + kColumns - 1) / kColumns;
  parallel_for_checked(items, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> wrows(static_cast<size_t>(4 * k));             // 4 widened weight rows
    std::vector<float> tile(static_cast<size_t>(m * kColumns));  // [m][kColumns]
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n0 = item * kColumns, cols = std::min(kColumns, n - n0);
      for (int64_t c = 0; c < cols; c += 4) {
        const int64_t cc = std::min<int64_t>(4, cols - c);
        load_f32(bytes_at(w, (n0 + c) * k), w.dtype(), wrows.data(), cc * k);
        dot_rows(x, m, wrows.data(), cc, k, tile.data() + c, kColumns);
      }
      for (int64_t r = 0; r < m; ++r) {
        float* t = tile.data() + r * kColumns;
        if (bias)
          for (int64_t c = 0; c < cols; ++c) t[c] += bias[n0 + c];
        store_f32(t, bytes_at(out, r * n + n0), out.dtype(), cols);
      }
    }
  });
}

}  // namespace reel::cpu
