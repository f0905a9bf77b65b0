// CPU normalisations and softmax: layer norm (optionally fused with the adaLN modulation) and
// RMS norm over the last dimension, the Wan VAE's channel L2 norm over dimension 1, and
// softmax over the last dimension. Statistics in f32 with 16 independent partial sums
// (vectorised, and the same order for every thread count and every instruction set, so results
// are reproducible).
#include <cmath>
#include <vector>

#include "cpu/cpu_common.hpp"
#include "cpu/cpu_kernels.hpp"
#include "parallel.hpp"

namespace reel::cpu {

namespace {

constexpr int kLanes = 16;

REEL_CPU_CLONES float row_sum(const float* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += x[i + j];
  float s = 0.0f;
  for (; i < n; ++i) s += x[i];
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

// Σ (x − c)²
REEL_CPU_CLONES float row_sum_sq(const float* x, float c, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const float v = x[i + j] - c;
      acc[j] += v * v;
    }
  float s = 0.0f;
  for (; i < n; ++i) s += (x[i] - c) * (x[i] - c);
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

REEL_CPU_CLONES float row_max(const float* x, int64_t n) {
  float acc[kLanes];
  for (int j = 0; j < kLanes; ++j) acc[j] = -INFINITY;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] = acc[j] > x[i + j] ? acc[j] : x[i + j];
  float m = -INFINITY;
  for (; i < n; ++i) m = m > x[i] ? m : x[i];
  for (int j = 0; j < kLanes; ++j) m = m > acc[j] ? m : acc[j];
  return m;
}

// o = (x − mean)·rstd [· w + b]
REEL_CPU_CLONES void normalize_row(const float* x, float mean, float rstd, const float* w, const float* b, float* o,
                                   int64_t n) {
  if (w && b) {
    for (int64_t i = 0; i < n; ++i) o[i] = ((x[i] - mean) * rstd) * w[i] + b[i];
  } else if (w) {
    for (int64_t i = 0; i < n; ++i) o[i] = ((x[i] - mean) * rstd) * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = (x[i] - mean) * rstd;
  }
}

// o = y·(1 + scale) + shift with y = (x − mean)·rstd [· w + b]: the statements of normalize_row
// followed by those of cpu_elementwise.cpp's modulate_row, so the fused op rounds (and, on
// FMA builds, contracts) exactly as op::LayerNorm into f32 then op::Modulate did.
REEL_CPU_CLONES void normalize_modulate_row(const float* x, float mean, float rstd, const float* w, const float* b,
                                            const float* scale, const float* shift, float* o, int64_t n) {
  if (w && b) {
    for (int64_t i = 0; i < n; ++i) {
      const float y = ((x[i] - mean) * rstd) * w[i] + b[i];
      const float m = y * (1.0f + scale[i]);
      o[i] = m + shift[i];
    }
  } else if (w) {
    for (int64_t i = 0; i < n; ++i) {
      const float y = ((x[i] - mean) * rstd) * w[i];
      const float m = y * (1.0f + scale[i]);
      o[i] = m + shift[i];
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const float y = (x[i] - mean) * rstd;
      const float m = y * (1.0f + scale[i]);
      o[i] = m + shift[i];
    }
  }
}

REEL_CPU_CLONES void scale_row(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

// e[i] = exp(s·x[i] − m), returns Σ e (16 partial sums, as row_sum)
REEL_CPU_CLONES float exp_row(const float* x, float s, float m, float* e, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      e[i + j] = fast_exp(s * x[i + j] - m);
      acc[j] += e[i + j];
    }
  float sum = 0.0f;
  for (; i < n; ++i) {
    e[i] = fast_exp(s * x[i] - m);
    sum += e[i];
  }
  for (int j = 0; j < kLanes; ++j) sum += acc[j];
  return sum;
}

REEL_CPU_CLONES float row_min(const float* x, int64_t n) {
  float acc[kLanes];
  for (int j = 0; j < kLanes; ++j) acc[j] = INFINITY;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] = acc[j] < x[i + j] ? acc[j] : x[i + j];
  float m = INFINITY;
  for (; i < n; ++i) m = m < x[i] ? m : x[i];
  for (int j = 0; j < kLanes; ++j) m = m < acc[j] ? m : acc[j];
  return m;
}

// acc[i] += v[i]²
REEL_CPU_CLONES void accumulate_squares(float* acc, const float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += v[i] * v[i];
}

// acc[i] = 1 / max(√acc[i], eps)
REEL_CPU_CLONES void inverse_norms(float* acc, float eps, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float r = std::sqrt(acc[i]);
    acc[i] = 1.0f / (r > eps ? r : eps);
  }
}

// o[i] = (v[i]·inv[i])·g + b
REEL_CPU_CLONES void scale_channel(const float* v, const float* inv, float g, float b, float* o, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = (v[i] * inv[i]) * g + b;
}

std::vector<float> param_f32(const Tensor* t) {
  if (!t) return {};
  std::vector<float> v(size_t(t->numel()));
  load_f32(t->raw(), t->dtype(), v.data(), t->numel());
  return v;
}

// Runs fn(x row as f32, out row f32 scratch) over the rows of the last dimension; stores out.
template <class F>
void for_each_row(const Tensor& x, Tensor& out, F&& fn) {
  const int64_t d = x.dim(-1);
  const int64_t rows = d == 0 ? 0 : x.numel() / d;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, d));
  parallel_for_checked(rows, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> in_buf(static_cast<size_t>(d)), out_buf(static_cast<size_t>(d));
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = f32_view(bytes_at(x, r * d), x.dtype(), in_buf.data(), d);
      fn(xr, out_buf.data(), d);
      store_f32(out_buf.data(), bytes_at(out, r * d), out.dtype(), d);
    }
  });
}

}  // namespace

Support supports(const op::LayerNorm& o) {
  return cpu_tensors({{o.x, "x"},
                      {o.weight, "weight"},
                      {o.bias, "bias"},
                      {o.mod_scale, "mod_scale"},
                      {o.mod_shift, "mod_shift"},
                      {o.out, "out"}});
}
void execute(const op::LayerNorm& o, CpuContext&) {
  const std::vector<float> w = param_f32(o.weight), b = param_f32(o.bias);
  const float* wp = o.weight ? w.data() : nullptr;
  const float* bp = o.bias ? b.data() : nullptr;
  const std::vector<float> scale = param_f32(o.mod_scale), shift = param_f32(o.mod_shift);
  const bool modulated = o.mod_scale != nullptr;  // validate: both or neither
  for_each_row(*o.x, *o.out, [&](const float* x, float* out, int64_t d) {
    const float mean = row_sum(x, d) / float(d);
    const float var = row_sum_sq(x, mean, d) / float(d);
    const float rstd = 1.0f / std::sqrt(var + o.eps);
    if (modulated) normalize_modulate_row(x, mean, rstd, wp, bp, scale.data(), shift.data(), out, d);
    else normalize_row(x, mean, rstd, wp, bp, out, d);
  });
}

Support supports(const op::RmsNorm& o) {
  return cpu_tensors({{o.x, "x"}, {o.weight, "weight"}, {o.out, "out"}});
}
void execute(const op::RmsNorm& o, CpuContext&) {
  const std::vector<float> w = param_f32(o.weight);
  const float* wp = o.weight ? w.data() : nullptr;
  for_each_row(*o.x, *o.out, [&](const float* x, float* out, int64_t d) {
    const float ms = row_sum_sq(x, 0.0f, d) / float(d);
    const float rstd = 1.0f / std::sqrt(ms + o.eps);
    normalize_row(x, 0.0f, rstd, wp, nullptr, out, d);
  });
}

Support supports(const op::Softmax& o) { return cpu_tensors({{o.x, "x"}, {o.out, "out"}}); }
void execute(const op::Softmax& o, CpuContext&) {
  for_each_row(*o.x, *o.out, [&](const float* x, float* out, int64_t d) {
    // max of scale·x is scale·max(x) for scale >= 0, scale·min(x) otherwise (exact: one rounding).
    const float m = o.scale >= 0.0f ? o.scale * row_max(x, d) : o.scale * row_min(x, d);
    const float sum = exp_row(x, o.scale, m, out, d);
    scale_row(out, 1.0f / sum, d);
  });
}

Support supports(const op::ChannelL2Norm& o) {
  return cpu_tensors({{o.x, "x"}, {o.gamma, "gamma"}, {o.bias, "bias"}, {o.out, "out"}});
}
void execute(const op::ChannelL2Norm& o, CpuContext&) {
  const Tensor& x = *o.x;
  Tensor& out = *o.out;
  const int64_t n = x.dim(0), c = x.dim(1);
  const int64_t spatial = c == 0 || n == 0 ? 0 : x.numel() / (n * c);
  // Per-channel factor sqrt(C)·gamma[c], as the reference multiplies by scale then gamma.
  std::vector<float> g = param_f32(o.gamma);
  const float root_c = std::sqrt(float(c));
  for (float& v : g) v *= root_c;
  const std::vector<float> bias = param_f32(o.bias);
  const int64_t blocks = (spatial + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, std::min(spatial, kBlock) * c));
  parallel_for(n * blocks, grain, [&](int64_t begin, int64_t end) {
    float in[kBlock], acc[kBlock], res[kBlock];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / blocks, s0 = (item % blocks) * kBlock;
      const int64_t len = std::min(kBlock, spatial - s0);
      std::fill_n(acc, len, 0.0f);
      for (int64_t ch = 0; ch < c; ++ch)
        accumulate_squares(acc, f32_view(bytes_at(x, (b * c + ch) * spatial + s0), x.dtype(), in, len), len);
      inverse_norms(acc, o.eps, len);
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t off = (b * c + ch) * spatial + s0;
        const float* v = f32_view(bytes_at(x, off), x.dtype(), in, len);
        scale_channel(v, acc, g[size_t(ch)], o.bias ? bias[size_t(ch)] : 0.0f, res, len);
        store_f32(res, bytes_at(out, off), out.dtype(), len);
      }
    }
  });
}

}  // namespace reel::cpu
