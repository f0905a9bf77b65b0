// Q8_0 weights and the CPU product on them (q8_0.hpp): packing, activation quantisation, and
// the kernel in two forms that compute the same numbers: AVX-512 VNNI (16 output columns per
// vector, 4 activation rows per pass sharing each weight load) and portable C++.
#include "quant/q8_0.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "parallel.hpp"
#include "reel/dtype.hpp"

namespace reel::quant {

namespace {

constexpr int64_t B = Q8Matrix::kBlock;
constexpr int64_t G = Q8Matrix::kGroup;

// ggml's quantize_row_q8_0 for one block: d = amax / 127, q = round(x / d).
float quantize_block(const float* x, int8_t* q) {
  float amax = 0.0f;
  for (int64_t i = 0; i < B; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int64_t i = 0; i < B; ++i) q[i] = int8_t(std::lround(x[i] * id));
  return d;
}

// Where the parts of one packed (group, block) live.
struct Packed {
  const int8_t* q;       // [8][16][4]
  const float* scale;    // [16]
  const int32_t* comp;   // [16]
};
Packed parts(const std::byte* p) {
  return {reinterpret_cast<const int8_t*>(p), reinterpret_cast<const float*>(p + 512),
          reinterpret_cast<const int32_t*>(p + 512 + 64)};
}

// Output rows [m0, m0 + rows) of column group g (portable).
void group_portable(const Q8Activations& xa, int64_t m0, int64_t rows, const Q8Matrix& w, int64_t g, const float* bias,
                    float* y) {
  const int64_t nb = w.blocks(), cols = std::min(G, w.rows() - g * G);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t m = m0 + r;
    float acc[G] = {};
    for (int64_t b = 0; b < nb; ++b) {
      const Packed pk = parts(w.block(g, b));
      const uint8_t* xq = xa.q.data() + m * xa.cols + b * B;
      const float sx = xa.scale[size_t(m * nb + b)];
      for (int64_t n = 0; n < G; ++n) {
        int32_t isum = 0;
        for (int64_t j = 0; j < 8; ++j)
          for (int64_t k = 0; k < 4; ++k) isum += int32_t(xq[4 * j + k]) * int32_t(pk.q[(j * G + n) * 4 + k]);
        isum -= pk.comp[n];
        acc[n] = std::fma(float(isum), pk.scale[n] * sx, acc[n]);
      }
    }
    float* out = y + m * w.rows() + g * G;
    for (int64_t n = 0; n < cols; ++n) out[n] = bias ? acc[n] + bias[g * G + n] : acc[n];
  }
}

// int32 → f32 lanes. GCC 12's _mm512_cvtepi32_ps passes an undefined vector as its unused
// merge source, which -Wmaybe-uninitialized reports; the masked form with a zero source does not.
__attribute__((target("avx512f"))) inline __m512 to_float(__m512i v) {
  return _mm512_maskz_cvtepi32_ps(__mmask16(0xffff), v);
}

// The same with AVX-512 VNNI: 4 rows at a time share each block's 8 weight vectors.
__attribute__((target("avx512f,avx512bw,avx512vnni")))
void group_vnni(const Q8Activations& xa, int64_t m0, int64_t rows, const Q8Matrix& w, int64_t g, const float* bias,
                float* y) {
  const int64_t nb = w.blocks(), cols = std::min(G, w.rows() - g * G);
  const __mmask16 keep = __mmask16((1u << cols) - 1u);
  const __m512 bias_v = bias ? _mm512_maskz_loadu_ps(keep, bias + g * G) : _mm512_setzero_ps();
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    const int64_t m = m0 + r;
    for (int64_t b = 0; b < nb; ++b) {
      const Packed pk = parts(w.block(g, b));
      __m512i wq[8];
      for (int j = 0; j < 8; ++j) wq[j] = _mm512_loadu_si512(pk.q + j * 64);
      const __m512 sw = _mm512_loadu_ps(pk.scale);
      const __m512i comp = _mm512_loadu_si512(pk.comp);
      for (int i = 0; i < 4; ++i) {
        const uint8_t* xq = xa.q.data() + (m + i) * xa.cols + b * B;
        __m512i isum = _mm512_setzero_si512();
        for (int j = 0; j < 8; ++j) {
          int32_t four;
          std::memcpy(&four, xq + 4 * j, 4);
          isum = _mm512_dpbusd_epi32(isum, _mm512_set1_epi32(four), wq[j]);
        }
        isum = _mm512_sub_epi32(isum, comp);
        const __m512 s = _mm512_mul_ps(sw, _mm512_set1_ps(xa.scale[size_t((m + i) * nb + b)]));
        acc[i] = _mm512_fmadd_ps(to_float(isum), s, acc[i]);
      }
    }
    for (int i = 0; i < 4; ++i) {
      const __m512 out = bias ? _mm512_add_ps(acc[i], bias_v) : acc[i];
      _mm512_mask_storeu_ps(y + (m + i) * w.rows() + g * G, keep, out);
    }
  }
  if (r < rows) group_portable(xa, m0 + r, rows - r, w, g, bias, y);
}

}  // namespace

bool q8_has_vnni() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vnni");
  return yes;
}

Q8Matrix Q8Matrix::pack(int64_t rows, int64_t cols, const float* scales, const int8_t* q) {
  Q8Matrix m;
  m.rows_ = rows;
  m.cols_ = cols;
  m.data_ = std::shared_ptr<std::byte[]>(new std::byte[m.bytes()]());
  const int64_t nb = m.blocks();
  parallel_for(m.groups(), 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g)
      for (int64_t b = 0; b < nb; ++b) {
        std::byte* p = m.data_.get() + (size_t(g) * size_t(nb) + size_t(b)) * kBlockBytes;
        auto* pq = reinterpret_cast<int8_t*>(p);
        auto* ps = reinterpret_cast<float*>(p + 512);
        auto* pc = reinterpret_cast<int32_t*>(p + 512 + 64);
        for (int64_t n = 0; n < G; ++n) {
          const int64_t row = g * G + n;
          if (row >= rows) break;  // padding rows stay zero
          const int8_t* src = q + row * cols + b * B;
          int32_t sum = 0;
          for (int64_t j = 0; j < 8; ++j)
            for (int64_t k = 0; k < 4; ++k) {
              pq[(j * G + n) * 4 + k] = src[4 * j + k];
              sum += src[4 * j + k];
            }
          ps[n] = scales[row * nb + b];
          pc[n] = 128 * sum;
        }
      }
  });
  return m;
}

Q8Matrix Q8Matrix::quantize(const float* w, int64_t rows, int64_t cols) {
  const int64_t nb = cols / B;
  std::vector<float> scales(size_t(rows * nb));
  std::vector<int8_t> q(size_t(rows * cols));
  parallel_for(rows * nb, 256, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) scales[size_t(i)] = quantize_block(w + i * B, q.data() + i * B);
  });
  return pack(rows, cols, scales.data(), q.data());
}

Q8Matrix Q8Matrix::from_gguf(const std::byte* blocks, int64_t rows, int64_t cols) {
  const int64_t nb = cols / B;
  std::vector<float> scales(size_t(rows * nb));
  std::vector<int8_t> q(size_t(rows * cols));
  for (int64_t i = 0; i < rows * nb; ++i) {
    const std::byte* blk = blocks + i * 34;
    uint16_t bits;
    std::memcpy(&bits, blk, 2);
    scales[size_t(i)] = f16::from_bits(bits).to_float();
    std::memcpy(q.data() + i * B, blk + 2, B);
  }
  return pack(rows, cols, scales.data(), q.data());
}

std::vector<float> Q8Matrix::dequantize() const {
  std::vector<float> out(size_t(rows_ * cols_));
  for (int64_t row = 0; row < rows_; ++row)
    for (int64_t b = 0; b < blocks(); ++b) {
      const Packed pk = parts(block(row / G, b));
      const int64_t n = row % G;
      for (int64_t j = 0; j < 8; ++j)
        for (int64_t k = 0; k < 4; ++k)
          out[size_t(row * cols_ + b * B + 4 * j + k)] = pk.scale[n] * float(pk.q[(j * G + n) * 4 + k]);
    }
  return out;
}

Q8Activations quantize_activations(const float* x, int64_t rows, int64_t cols) {
  Q8Activations a;
  a.rows = rows;
  a.cols = cols;
  a.q.resize(size_t(rows * cols));
  a.scale.resize(size_t(rows * (cols / B)));
  parallel_for(rows * (cols / B), 256, [&](int64_t i0, int64_t i1) {
    int8_t q[B];
    for (int64_t i = i0; i < i1; ++i) {
      a.scale[size_t(i)] = quantize_block(x + i * B, q);
      for (int64_t k = 0; k < B; ++k) a.q[size_t(i * B + k)] = uint8_t(int32_t(q[k]) + 128);
    }
  });
  return a;
}

void q8_linear(const float* x, int64_t M, const Q8Matrix& w, const float* bias, float* y, bool force_portable) {
  const Q8Activations xa = quantize_activations(x, M, w.cols());
  const bool vnni = q8_has_vnni() && !force_portable;
  // Work items: (column group, block of 64 rows); a group's weights stay in cache across rows.
  constexpr int64_t kRows = 64;
  const int64_t row_blocks = (M + kRows - 1) / kRows, groups = w.groups();
  parallel_for(groups * row_blocks, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t g = i / row_blocks, m0 = (i % row_blocks) * kRows, rows = std::min(kRows, M - m0);
      if (vnni) group_vnni(xa, m0, rows, w, g, bias, y);
      else group_portable(xa, m0, rows, w, g, bias, y);
    }
  });
}

}  // namespace reel::quant
