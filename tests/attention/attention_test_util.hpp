// Helpers for the attention tests: seeded inputs for a shape, the double-precision references
// and the tolerance rule of DESIGN.md.
//
// Tolerance rule: max|out − ref| ≤ 2·max|ref_lowprec − ref| + 1e-5, where
//   ref         = exact (double) attention of the ORIGINAL f32 inputs,
//   ref_lowprec = exact (double) attention of the inputs rounded to the kernel's dtype (the
//                 tensors the kernel actually gets), with its output rounded to that dtype.
// So a bf16 kernel may be at most twice as far from the truth as an ideal bf16 computation
// (which loses precision only when rounding its inputs and its output), plus 1e-5 for f32
// accumulation order. For f32, ref_lowprec − ref is only the output rounding: the bound is
// ~1e-5 absolute on outputs of magnitude ≤ 1.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "attention/cpu_reference.hpp"
#include "common/test_util.hpp"
#include "reel/attention.hpp"

namespace reel::test {

struct AttnShape {
  int64_t batch, seq_q, seq_kv, heads, head_dim;
  std::string str() const {
    return "B" + std::to_string(batch) + " Sq" + std::to_string(seq_q) + " Skv" + std::to_string(seq_kv) + " H" +
           std::to_string(heads) + " D" + std::to_string(head_dim);
  }
};

// q ~ U(−4, 4), k ~ U(−2, 2), v ~ U(−1, 1): with scale 1/√D the scores have a standard
// deviation of about 2.7, so rows range from nearly flat to strongly peaked and the online
// softmax has to rescale as larger scores arrive.
struct AttnInputs {
  Tensor q32, k32, v32;  // the original f32 values
  Tensor q, k, v;        // rounded to the dtype under test (what the kernel reads)
  float scale = 1.0f;
};

inline AttnInputs make_attention_inputs(const AttnShape& s, DType dtype, uint64_t seed) {
  AttnInputs in;
  in.q32 = random_tensor({s.batch, s.seq_q, s.heads, s.head_dim}, seed, DType::f32, -4.0f, 4.0f);
  in.k32 = random_tensor({s.batch, s.seq_kv, s.heads, s.head_dim}, seed + 1, DType::f32, -2.0f, 2.0f);
  in.v32 = random_tensor({s.batch, s.seq_kv, s.heads, s.head_dim}, seed + 2, DType::f32, -1.0f, 1.0f);
  in.q = in.q32.to(dtype);
  in.k = in.k32.to(dtype);
  in.v = in.v32.to(dtype);
  in.scale = 1.0f / std::sqrt(float(s.head_dim));
  return in;
}

// The strided layout of the layout tests: q (and out) with rows of H·D + pad elements (the
// padding filled with 9), k and v head-major [B, H, Skv, D]; host values of the inputs.
struct StridedAttnValues {
  std::vector<float> q, k, v;
};
inline StridedAttnValues strided_attention_values(const AttnInputs& in, const AttnShape& s, int64_t pad) {
  const int64_t hd = s.heads * s.head_dim;
  const std::vector<float> qv = in.q.to_floats(), kv = in.k.to_floats(), vv = in.v.to_floats();
  StridedAttnValues out{std::vector<float>(size_t(s.batch * s.seq_q * (hd + pad)), 9.0f),
                        std::vector<float>(kv.size()), std::vector<float>(vv.size())};
  for (int64_t r = 0; r < s.batch * s.seq_q; ++r)
    for (int64_t c = 0; c < hd; ++c) out.q[size_t(r * (hd + pad) + c)] = qv[size_t(r * hd + c)];
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t j = 0; j < s.seq_kv; ++j)
      for (int64_t h = 0; h < s.heads; ++h)
        for (int64_t c = 0; c < s.head_dim; ++c) {
          const size_t src = size_t(((b * s.seq_kv + j) * s.heads + h) * s.head_dim + c);
          const size_t dst = size_t(((b * s.heads + h) * s.seq_kv + j) * s.head_dim + c);
          out.k[dst] = kv[src];
          out.v[dst] = vv[src];
        }
  return out;
}

// Sizes and strides (in elements) of that layout; pointers, dtype, device and scale are the caller's.
inline void set_strided_layout(AttentionParams& p, const AttnShape& s, int64_t pad) {
  const int64_t hd = s.heads * s.head_dim;
  p.batch = s.batch, p.heads = s.heads, p.head_dim = s.head_dim, p.seq_q = s.seq_q, p.seq_kv = s.seq_kv;
  p.q_row_stride = p.out_row_stride = hd + pad;
  p.q_head_stride = p.out_head_stride = s.head_dim;
  p.q_batch_stride = p.out_batch_stride = s.seq_q * (hd + pad);
  p.k_row_stride = p.v_row_stride = s.head_dim;
  p.k_head_stride = p.v_head_stride = s.seq_kv * s.head_dim;
  p.k_batch_stride = p.v_batch_stride = s.heads * s.seq_kv * s.head_dim;
}

// Exact attention of (q, k, v) [B, S, H, D] CPU tensors, as doubles in out's [B, Sq, H, D]
// order; lse (optional) gets [B, H, Sq].
inline std::vector<double> exact_attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                                           std::vector<double>* lse = nullptr) {
  Tensor dummy = Tensor::empty(q.shape(), q.dtype());
  AttentionParams p = attention_params(q, k, v, dummy, scale);
  std::vector<double> out(size_t(q.numel()));
  if (lse) lse->assign(size_t(p.batch * p.heads * p.seq_q), 0.0);
  std::vector<double> row(size_t(p.head_dim));
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t h = 0; h < p.heads; ++h)
      for (int64_t i = 0; i < p.seq_q; ++i) {
        const double l = attn::reference_attention_row(p, b, h, i, row.data());
        const int64_t o0 = b * p.out_batch_stride + i * p.out_row_stride + h * p.out_head_stride;
        std::copy(row.begin(), row.end(), out.begin() + o0);
        if (lse) (*lse)[size_t((b * p.heads + h) * p.seq_q + i)] = l;
      }
  return out;
}

struct Tolerance {
  std::vector<double> ref;  // exact, from the f32 originals
  double bound = 0;         // 2·max|ref_lowprec − ref| + 1e-5
};

inline Tolerance attention_tolerance(const AttnInputs& in, DType dtype) {
  Tolerance t;
  t.ref = exact_attention(in.q32, in.k32, in.v32, in.scale);
  const std::vector<double> lowprec = rounded(exact_attention(in.q, in.k, in.v, in.scale), dtype);
  t.bound = 2.0 * max_abs_diff(lowprec, t.ref) + 1e-5;
  return t;
}

}  // namespace reel::test
