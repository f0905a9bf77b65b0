// cpu_flash AVX-512 block kernels (compiled for AVX-512 with a target pragma, called only
// after the run-time check in cpu_flash.cpp). Two variants:
//   bf16: Sᵀ = K·Qᵀ and Oᵀ += Vᵀ·Pᵀ with vdpbf16ps (pairs of bf16, f32 accumulation); P is
//         rounded to bf16 before P·V, as every bf16 flash kernel does;
//   f32:  the same tiling with f32 FMAs (f32 inputs; f16 and bf16 converted to f32 first).
// Layout of one block (64 query rows = 4 zmm of lanes, see cpu_flash.hpp):
//   Qᵀ (bf16: uint32 pairs [d/2][64], f32: [d][64]), Sᵀ [kv][64] f32, P (bf16 pairs
//   [kv/2][64] or f32 [kv][64]), Oᵀ [d][64] f32, running max m and sum l per lane.
// GCC 12's avx512fintrin.h trips -Wmaybe-uninitialized on its own _mm512_undefined_ps().
#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "attention/cpu_flash.hpp"
#include "reel/dtype.hpp"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma,f16c"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma,f16c")
#endif

namespace reel::attn {

namespace {

constexpr int QB = kFlashQBlock;  // 64 lanes = 4 vectors
constexpr int NK = kFlashKvBlock;
constexpr int kTileRows = kFlashTileRows;

// 2^x for x <= 0: x = n + f with n = round(x), f in [−0.5, 0.5]; 2^f by its Taylor series to
// degree 6 (truncation ≤ (ln2/2)^7/7! ≈ 1.2e-7 relative), 2^n applied exactly by vscalefps.
// Inputs below −126 are clamped (the result 2^−126 is negligible next to the row maximum's
// 2^0 = 1); NaN propagates.
inline __m512 exp2_nonpositive(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-126.0f), x);  // operand order: a NaN x is returned as is
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(1.5403530393381608e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146428443e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291076284772e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108664821580e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650695910071e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718055994531e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

inline __m512bh as_bh(__m512i x) { return (__m512bh)x; }

inline int32_t load_pair(const uint16_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// ---------------------------------------------------------------- bf16 micro-kernels

// Sᵀ rows [0, R) of this tile: s[r][q] = scale_log2 · Σ_d k[r][d]·q[q][d]; updates the lane max.
template <int R>
inline void qk_tile_bf16(const uint16_t* k, int64_t k_rs, const uint32_t* qp, int64_t pairs, float* s,
                         __m512 scale, __m512* mx) {
  __m512 acc[R][4];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_ps();
  for (int64_t dp = 0; dp < pairs; ++dp) {
    const uint32_t* qrow = qp + dp * QB;
    const __m512bh q0 = as_bh(_mm512_load_si512(qrow)), q1 = as_bh(_mm512_load_si512(qrow + 16));
    const __m512bh q2 = as_bh(_mm512_load_si512(qrow + 32)), q3 = as_bh(_mm512_load_si512(qrow + 48));
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh b = as_bh(_mm512_set1_epi32(load_pair(k + r * k_rs + 2 * dp)));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], b, q0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], b, q1);
      acc[r][2] = _mm512_dpbf16_ps(acc[r][2], b, q2);
      acc[r][3] = _mm512_dpbf16_ps(acc[r][3], b, q3);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) {
      const __m512 x = _mm512_mul_ps(acc[r][j], scale);
      mx[j] = _mm512_max_ps(mx[j], x);
      _mm512_store_ps(s + r * QB + 16 * j, x);
    }
}

// Oᵀ rows [0, R) (head-dim rows d0..d0+R): o[r][q] = alpha[q]·o[r][q] + Σ_t vp[t][r]·pp[t][q]
// over packed key pairs t.
template <int R>
inline void pv_tile_bf16(const uint32_t* vp, int64_t vp_rs, const uint32_t* pp, int64_t pairs, float* o,
                         const __m512* alpha) {
  __m512 acc[R][4];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_mul_ps(_mm512_load_ps(o + r * QB + 16 * j), alpha[j]);
  for (int64_t t = 0; t < pairs; ++t) {
    const uint32_t* prow = pp + t * QB;
    const __m512bh p0 = as_bh(_mm512_load_si512(prow)), p1 = as_bh(_mm512_load_si512(prow + 16));
    const __m512bh p2 = as_bh(_mm512_load_si512(prow + 32)), p3 = as_bh(_mm512_load_si512(prow + 48));
    const uint32_t* vrow = vp + t * vp_rs;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh b = as_bh(_mm512_set1_epi32(int32_t(vrow[r])));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], b, p0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], b, p1);
      acc[r][2] = _mm512_dpbf16_ps(acc[r][2], b, p2);
      acc[r][3] = _mm512_dpbf16_ps(acc[r][3], b, p3);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) _mm512_store_ps(o + r * QB + 16 * j, acc[r][j]);
}

// ---------------------------------------------------------------- f32 micro-kernels

// Sᵀ rows [0, R) from a K panel ([d][6]: the tile's key rows interleaved).
template <int R>
inline void qk_tile_f32(const float* kpanel, const float* qt, int64_t d, float* s, __m512 scale, __m512* mx) {
  __m512 acc[R][4];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_ps();
  for (int64_t c = 0; c < d; ++c) {
    const float* qrow = qt + c * QB;
    const __m512 q0 = _mm512_load_ps(qrow), q1 = _mm512_load_ps(qrow + 16);
    const __m512 q2 = _mm512_load_ps(qrow + 32), q3 = _mm512_load_ps(qrow + 48);
    const float* krow = kpanel + c * kTileRows;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 b = _mm512_set1_ps(krow[r]);
      acc[r][0] = _mm512_fmadd_ps(b, q0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(b, q1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(b, q2, acc[r][2]);
      acc[r][3] = _mm512_fmadd_ps(b, q3, acc[r][3]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) {
      const __m512 x = _mm512_mul_ps(acc[r][j], scale);
      mx[j] = _mm512_max_ps(mx[j], x);
      _mm512_store_ps(s + r * QB + 16 * j, x);
    }
}

// Oᵀ rows [0, R) from a V panel ([t][6]: the tile's head-dim columns interleaved, from key t0).
template <int R>
inline void pv_tile_f32(const float* vpanel, const float* p, int64_t n, float* o, const __m512* alpha) {
  __m512 acc[R][4];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_mul_ps(_mm512_load_ps(o + r * QB + 16 * j), alpha[j]);
  for (int64_t t = 0; t < n; ++t) {
    const float* prow = p + t * QB;
    const __m512 p0 = _mm512_load_ps(prow), p1 = _mm512_load_ps(prow + 16);
    const __m512 p2 = _mm512_load_ps(prow + 32), p3 = _mm512_load_ps(prow + 48);
    const float* vrow = vpanel + t * kTileRows;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 b = _mm512_set1_ps(vrow[r]);
      acc[r][0] = _mm512_fmadd_ps(b, p0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(b, p1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(b, p2, acc[r][2]);
      acc[r][3] = _mm512_fmadd_ps(b, p3, acc[r][3]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) _mm512_store_ps(o + r * QB + 16 * j, acc[r][j]);
}

// Calls tile<R>(row) over rows [0, n) in groups of kTileRows, with one smaller tail group.
template <class Full, class Tail>
inline void over_rows(int64_t n, Full&& full, Tail&& tail) {
  int64_t r = 0;
  for (; r + kTileRows <= n; r += kTileRows) full(r);
  if (r < n) tail(r, int(n - r));
}

#define REEL_TAIL_SWITCH(count, CALL) \
  switch (count) {                    \
    case 1: CALL(1); break;           \
    case 2: CALL(2); break;           \
    case 3: CALL(3); break;           \
    case 4: CALL(4); break;           \
    case 5: CALL(5); break;           \
    default: break;                   \
  }

// ---------------------------------------------------------------- shared block pieces


// out[i][c] = ot[c][i] / l[i] for the block's rows; lse[i] = (m[i] + log2 l[i])·ln 2.
void write_block(const FlashHead& h, int64_t q0, int64_t nq, const float* ot, const float* m, const float* l) {
  for (int64_t i = 0; i < nq; ++i) {
    const float inv = 1.0f / l[i];
    const int64_t row = (q0 + i) * h.o_rs;
    if (h.dtype == REEL_ATTENTION_BF16) {
      auto* o = static_cast<bf16*>(h.out) + row;
      for (int64_t c = 0; c < h.d; ++c) o[c] = bf16::from_float(ot[c * QB + i] * inv);
    } else if (h.dtype == REEL_ATTENTION_F16) {
      auto* o = static_cast<f16*>(h.out) + row;
      for (int64_t c = 0; c < h.d; ++c) o[c] = f16::from_float(ot[c * QB + i] * inv);
    } else {
      auto* o = static_cast<float*>(h.out) + row;
      for (int64_t c = 0; c < h.d; ++c) o[c] = ot[c * QB + i] * inv;
    }
    if (h.lse) h.lse[q0 + i] = (m[i] + std::log2(l[i])) * 0.69314718055994531f;
  }
}

}  // namespace

void flash_exp2_avx512(const float* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, exp2_nonpositive(_mm512_loadu_ps(in + i)));
  if (i < n) {
    const __mmask16 mask = __mmask16((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(out + i, mask, exp2_nonpositive(_mm512_maskz_loadu_ps(mask, in + i)));
  }
}

// ---------------------------------------------------------------- bf16 block

void flash_block_avx512_bf16(const FlashHead& h, int64_t q0) {
  const int64_t nq = std::min<int64_t>(QB, h.sq - q0), d = h.d, pairs = d / 2;
  float* base = flash_scratch(size_t(pairs * QB + NK * QB + (NK / 2) * QB + d * QB + 2 * QB));
  auto* qp = reinterpret_cast<uint32_t*>(base);              // [d/2][64] pairs of Q
  float* s = base + pairs * QB;                              // [NK][64] scores
  auto* pp = reinterpret_cast<uint32_t*>(s + NK * QB);       // [NK/2][64] pairs of P
  float* ot = s + NK * QB + (NK / 2) * QB;                   // [d][64] output, transposed
  float* m_out = ot + d * QB;
  float* l_out = m_out + QB;

  // Qᵀ as pairs: qp[dp][i] = (q[i][2dp], q[i][2dp+1]); lanes past the last row are zero.
  const auto* q = static_cast<const uint16_t*>(h.q);
  for (int64_t i = 0; i < QB; ++i)
    for (int64_t dp = 0; dp < pairs; ++dp)
      qp[dp * QB + i] = i < nq ? uint32_t(load_pair(q + (q0 + i) * h.q_rs + 2 * dp)) : 0u;
  std::memset(ot, 0, size_t(d * QB) * sizeof(float));

  const auto* k = static_cast<const uint16_t*>(h.k);
  const auto* vp = static_cast<const uint32_t*>(h.v);
  const __m512 scale = _mm512_set1_ps(h.scale_log2);
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                              22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  __m512 m[4], l[4];
  for (int j = 0; j < 4; ++j) m[j] = _mm512_set1_ps(neg_inf), l[j] = _mm512_setzero_ps();

  for (int64_t kv0 = 0; kv0 < h.skv; kv0 += NK) {
    const int64_t nk = std::min<int64_t>(NK, h.skv - kv0), np = (nk + 1) / 2;
    const uint16_t* kb = k + kv0 * h.k_rs;
    __m512 mx[4] = {m[0], m[1], m[2], m[3]};
    over_rows(
        nk, [&](int64_t r) { qk_tile_bf16<kTileRows>(kb + r * h.k_rs, h.k_rs, qp, pairs, s + r * QB, scale, mx); },
        [&](int64_t r, int count) {
#define REEL_CALL(R) qk_tile_bf16<R>(kb + r * h.k_rs, h.k_rs, qp, pairs, s + r * QB, scale, mx)
          REEL_TAIL_SWITCH(count, REEL_CALL)
#undef REEL_CALL
        });
    __m512 alpha[4], sum[4];
    for (int j = 0; j < 4; ++j) {
      alpha[j] = exp2_nonpositive(_mm512_sub_ps(m[j], mx[j]));  // m = −inf at the start: alpha → 0
      sum[j] = _mm512_setzero_ps();
    }
    for (int64_t t = 0; t < np; ++t) {
      const bool pad = 2 * t + 1 >= nk;  // odd tail: the second key of the pair does not exist
      for (int j = 0; j < 4; ++j) {
        const __m512 p0 = exp2_nonpositive(_mm512_sub_ps(_mm512_load_ps(s + (2 * t) * QB + 16 * j), mx[j]));
        const __m512 p1 = pad ? _mm512_setzero_ps()
                              : exp2_nonpositive(_mm512_sub_ps(_mm512_load_ps(s + (2 * t + 1) * QB + 16 * j), mx[j]));
        sum[j] = _mm512_add_ps(sum[j], _mm512_add_ps(p0, p1));
        const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(p1, p0);  // words 0-15: p0, 16-31: p1
        _mm512_store_si512(pp + t * QB + 16 * j, _mm512_permutexvar_epi16(interleave, both));
      }
    }
    for (int j = 0; j < 4; ++j) {
      l[j] = _mm512_fmadd_ps(l[j], alpha[j], sum[j]);
      m[j] = mx[j];
    }
    const uint32_t* vb = vp + (kv0 / 2) * h.v_rs;
    over_rows(
        d, [&](int64_t r) { pv_tile_bf16<kTileRows>(vb + r, h.v_rs, pp, np, ot + r * QB, alpha); },
        [&](int64_t r, int count) {
#define REEL_CALL(R) pv_tile_bf16<R>(vb + r, h.v_rs, pp, np, ot + r * QB, alpha)
          REEL_TAIL_SWITCH(count, REEL_CALL)
#undef REEL_CALL
        });
  }
  for (int j = 0; j < 4; ++j) _mm512_store_ps(m_out + 16 * j, m[j]), _mm512_store_ps(l_out + 16 * j, l[j]);
  write_block(h, q0, nq, ot, m_out, l_out);
}

// ---------------------------------------------------------------- f32 block

void flash_block_avx512_f32(const FlashHead& h, int64_t q0) {
  const int64_t nq = std::min<int64_t>(QB, h.sq - q0), d = h.d;
  float* qt = flash_scratch(size_t(d * QB + NK * QB + d * QB + 2 * QB));  // [d][64] Qᵀ
  float* s = qt + d * QB;                                                  // [NK][64] scores, then P
  float* ot = s + NK * QB;                                                 // [d][64] Oᵀ
  float* m_out = ot + d * QB;
  float* l_out = m_out + QB;

  const size_t elem = dtype_size(DType(h.dtype));
  for (int64_t i = 0; i < QB; ++i) {
    float* row = ot;  // Oᵀ is zeroed below: use it as the row buffer meanwhile
    if (i < nq) widen_row(static_cast<const char*>(h.q) + (q0 + i) * h.q_rs * int64_t(elem), h.dtype, row, d);
    for (int64_t c = 0; c < d; ++c) qt[c * QB + i] = i < nq ? row[c] : 0.0f;
  }
  std::memset(ot, 0, size_t(d * QB) * sizeof(float));

  const auto* k = static_cast<const float*>(h.k);
  const auto* v = static_cast<const float*>(h.v);
  const __m512 scale = _mm512_set1_ps(h.scale_log2);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  __m512 m[4], l[4];
  for (int j = 0; j < 4; ++j) m[j] = _mm512_set1_ps(neg_inf), l[j] = _mm512_setzero_ps();

  for (int64_t kv0 = 0; kv0 < h.skv; kv0 += NK) {
    const int64_t nk = std::min<int64_t>(NK, h.skv - kv0);
    // kv0 is a multiple of 6: the block starts at panel kv0 / 6.
    const float* kb = k + (kv0 / kTileRows) * kTileRows * d;
    __m512 mx[4] = {m[0], m[1], m[2], m[3]};
    over_rows(
        nk, [&](int64_t r) { qk_tile_f32<kTileRows>(kb + r * d, qt, d, s + r * QB, scale, mx); },
        [&](int64_t r, int count) {
#define REEL_CALL(R) qk_tile_f32<R>(kb + r * d, qt, d, s + r * QB, scale, mx)
          REEL_TAIL_SWITCH(count, REEL_CALL)
#undef REEL_CALL
        });
    __m512 alpha[4], sum[4];
    for (int j = 0; j < 4; ++j) {
      alpha[j] = exp2_nonpositive(_mm512_sub_ps(m[j], mx[j]));
      sum[j] = _mm512_setzero_ps();
    }
    for (int64_t t = 0; t < nk; ++t)
      for (int j = 0; j < 4; ++j) {
        float* row = s + t * QB + 16 * j;
        const __m512 p = exp2_nonpositive(_mm512_sub_ps(_mm512_load_ps(row), mx[j]));
        sum[j] = _mm512_add_ps(sum[j], p);
        _mm512_store_ps(row, p);
      }
    for (int j = 0; j < 4; ++j) {
      l[j] = _mm512_fmadd_ps(l[j], alpha[j], sum[j]);
      m[j] = mx[j];
    }
    // Panel r / 6 holds head-dim columns r..r+5 for every key, 6 floats per key.
    const float* vb = v + kv0 * kTileRows;
    over_rows(
        d, [&](int64_t r) { pv_tile_f32<kTileRows>(vb + r * h.skv, s, nk, ot + r * QB, alpha); },
        [&](int64_t r, int count) {
#define REEL_CALL(R) pv_tile_f32<R>(vb + r * h.skv, s, nk, ot + r * QB, alpha)
          REEL_TAIL_SWITCH(count, REEL_CALL)
#undef REEL_CALL
        });
  }
  for (int j = 0; j < 4; ++j) _mm512_store_ps(m_out + 16 * j, m[j]), _mm512_store_ps(l_out + 16 * j, l[j]);
  write_block(h, q0, nq, ot, m_out, l_out);
}

}  // namespace reel::attn

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#pragma GCC diagnostic pop
