// Layer norm (plain and fused with the adaLN modulation), RMS norm, the Wan VAE channel L2
// norm and softmax of the CPU backend against double-precision references (statistics in
// double), f32/bf16/f16, odd shapes.
//
// Bounds (u = 2^-24; γ_d = d·u/(1−d·u) bounds a d-term f32 sum relative to Σ|terms|):
//  * rms_norm  y = x·r, r = 1/√(mean x² + eps): mean x² carries γ_d + 2u, √ halves it and adds
//    u, 1/ adds u, the product u  ->  |ŷ − y| <= (γ_d + 8u)·|y|; weight: ·|w| plus u·|out|.
//  * layer_norm: as above for the variance, plus the mean's error |μ̂ − μ| <= (γ_d + u)·mean|x|
//    scaled by r  ->  (γ_d + 8u)·(|y| + r·mean|x|), then ·|w| and u·(|y·w| + |out|) for affine.
//  * layer_norm with the fused modulation, o = y·(1 + s) + h: y carries the layer-norm bound e_y;
//    1 + s, the product and the sum round once each (fewer with FMA)  ->
//    |1 + s|·e_y·(1 + 3u) + 3u·|y·(1 + s)| + 2u·|o|. It must also equal, bit for bit, layer
//    norm into an f32 tensor followed by op::Modulate: the same f32 operations in the same order.
//  * channel_l2_norm: Σ over C channels (γ_C + 2u), √, 1/, ·x, ·√C·γ (√C rounded, 3 products)
//    ->  (γ_C + 10u)·|y| + u·|out| with the bias.
//  * softmax p_i = e^{s·x_i − m}/Σ: the exponent s·x_i − m is off by at most 4u·R with
//    R = max|s·x|, exp adds 2u, the sum γ_d, the reciprocal and product 2u  ->
//    (γ_d + 8u + 8u·R)·p_i.
// Low-precision outputs are compared with the reference rounded to their type: + 2·u_t·|ref|.
#include <cmath>

#include "core/op_test_util.hpp"

using namespace reel;
using namespace reel::test;

namespace {

void finish_lowp(std::vector<double>& ref, std::vector<double>& tol, DType t) {
  if (t == DType::f32) return;
  const double ut = unit_roundoff(t);
  for (size_t i = 0; i < ref.size(); ++i) {
    tol[i] = 2 * ut * std::abs(ref[i]) + tol[i] * (1 + ut);
    ref[i] = round_to(t, float(ref[i]));
  }
}

const DType kFloatTypes[] = {DType::f32, DType::bf16, DType::f16};

}  // namespace

TEST(LayerNorm, MatchesDoubleReference) {
  auto be = make_cpu_backend({.threads = 2});
  for (DType t : kFloatTypes)
    for (const Shape& s : {Shape{7, 33}, Shape{3, 5, 1031}, Shape{13}})
      for (int affine = 0; affine < 3; ++affine) {  // none, weight only, weight + bias
        const int64_t d = s[-1];
        const Tensor x = random_nonzero(s, 1, t, 0.05f, 3.0f);
        const Tensor w = random_nonzero({d}, 2, t), b = random_nonzero({d}, 3, DType::f32);
        const float eps = 1e-5f;
        const Tensor out =
            ops::layer_norm(*be, x, affine >= 1 ? &w : nullptr, affine == 2 ? &b : nullptr, eps);
        const std::vector<double> xv = to_doubles(x), wv = to_doubles(w), bv = to_doubles(b);
        std::vector<double> ref(xv.size()), tol(xv.size());
        for (int64_t r = 0; r < int64_t(xv.size()) / d; ++r) {
          double mean = 0, mean_abs = 0, var = 0;
          for (int64_t i = 0; i < d; ++i) mean += xv[size_t(r * d + i)], mean_abs += std::abs(xv[size_t(r * d + i)]);
          mean /= double(d);
          mean_abs /= double(d);
          for (int64_t i = 0; i < d; ++i) var += (xv[size_t(r * d + i)] - mean) * (xv[size_t(r * d + i)] - mean);
          var /= double(d);
          const double rs = 1 / std::sqrt(var + double(eps));
          for (int64_t i = 0; i < d; ++i) {
            const size_t k = size_t(r * d + i);
            const double y = (xv[k] - mean) * rs;
            const double by = (gamma_f32(d) + 8 * kU32) * (std::abs(y) + rs * mean_abs);
            const double wi = affine >= 1 ? wv[size_t(i)] : 1.0, bi = affine == 2 ? bv[size_t(i)] : 0.0;
            ref[k] = y * wi + bi;
            tol[k] = std::abs(wi) * by + 2 * kU32 * (std::abs(y * wi) + std::abs(ref[k]));
          }
        }
        finish_lowp(ref, tol, t);
        expect_within(out, ref, tol, std::string("layer_norm ") + dname(t) + " " + s.str() + " affine " +
                                         std::to_string(affine));
      }
}

TEST(LayerNormModulate, MatchesDoubleReferenceAndTheTwoOps) {
  auto be = make_cpu_backend({.threads = 2});
  uint64_t seed = 100;
  for (DType t : kFloatTypes)
    for (DType out_t : {t, DType::f32})
      for (DType param_t : {DType::f32, t})
        for (const Shape& s : {Shape{7, 33}, Shape{3, 5, 1031}, Shape{2, 13}})
          for (int affine = 0; affine < 3; ++affine) {  // none, weight only, weight + bias
            const int64_t d = s[-1];
            const float eps = 1e-6f;
            const Tensor x = random_nonzero(s, seed++, t, 0.05f, 3.0f);
            const Tensor w = random_nonzero({d}, seed++, t), b = random_nonzero({d}, seed++, DType::f32);
            const Tensor scale = random_nonzero({d}, seed++, param_t), shift = random_nonzero({d}, seed++, param_t);
            const Tensor* wp = affine >= 1 ? &w : nullptr;
            const Tensor* bp = affine == 2 ? &b : nullptr;
            const std::string what = std::string("layer_norm+modulate ") + dname(t) + " -> " + dname(out_t) +
                                     ", params " + dname(param_t) + " " + s.str() + " affine " + std::to_string(affine);

            Tensor fused = Tensor::empty(s, out_t);
            be->run(op::LayerNorm{&x, wp, bp, &fused, eps, &scale, &shift});

            // The two ops the fused one replaces (lib/wan's old layer_norm_modulate).
            Tensor normed = Tensor::empty(s, DType::f32), two_ops = Tensor::empty(s, out_t);
            be->run(op::LayerNorm{&x, wp, bp, &normed, eps});
            be->run(op::Modulate{&normed, &scale, &shift, &two_ops});
            expect_identical(fused, two_ops, what + " vs LayerNorm then Modulate");

            if (out_t == t) {  // in place (x is out)
              Tensor inplace = x.clone();
              be->run(op::LayerNorm{&inplace, wp, bp, &inplace, eps, &scale, &shift});
              expect_identical(inplace, fused, what + " in place");
            }

            const std::vector<double> xv = to_doubles(x), wv = to_doubles(w), bv = to_doubles(b);
            const std::vector<double> sv = to_doubles(scale), hv = to_doubles(shift);
            std::vector<double> ref(xv.size()), tol(xv.size());
            for (int64_t r = 0; r < int64_t(xv.size()) / d; ++r) {
              double mean = 0, mean_abs = 0, var = 0;
              for (int64_t i = 0; i < d; ++i) mean += xv[size_t(r * d + i)], mean_abs += std::abs(xv[size_t(r * d + i)]);
              mean /= double(d);
              mean_abs /= double(d);
              for (int64_t i = 0; i < d; ++i) var += (xv[size_t(r * d + i)] - mean) * (xv[size_t(r * d + i)] - mean);
              var /= double(d);
              const double rs = 1 / std::sqrt(var + double(eps));
              for (int64_t i = 0; i < d; ++i) {
                const size_t k = size_t(r * d + i);
                const double n = (xv[k] - mean) * rs;
                const double wi = affine >= 1 ? wv[size_t(i)] : 1.0, bi = affine == 2 ? bv[size_t(i)] : 0.0;
                const double y = n * wi + bi;
                const double ey = std::abs(wi) * (gamma_f32(d) + 8 * kU32) * (std::abs(n) + rs * mean_abs) +
                                  2 * kU32 * (std::abs(n * wi) + std::abs(y));
                const double g = 1 + sv[size_t(i)];
                ref[k] = y * g + hv[size_t(i)];
                tol[k] = std::abs(g) * ey * (1 + 3 * kU32) + 3 * kU32 * std::abs(y * g) + 2 * kU32 * std::abs(ref[k]);
              }
            }
            finish_lowp(ref, tol, out_t);
            expect_within(fused, ref, tol, what);
          }
}

TEST(RmsNorm, MatchesDoubleReference) {
  auto be = make_cpu_backend({.threads = 2});
  for (DType t : kFloatTypes)
    for (const Shape& s : {Shape{7, 33}, Shape{2, 3, 1031}})
      for (bool weighted : {false, true}) {
        const int64_t d = s[-1];
        const Tensor x = random_nonzero(s, 4, t, 0.05f, 3.0f), w = random_nonzero({d}, 5, DType::f32);
        const Tensor out = ops::rms_norm(*be, x, weighted ? &w : nullptr, 1e-6f);
        const std::vector<double> xv = to_doubles(x), wv = to_doubles(w);
        std::vector<double> ref(xv.size()), tol(xv.size());
        for (int64_t r = 0; r < int64_t(xv.size()) / d; ++r) {
          double ms = 0;
          for (int64_t i = 0; i < d; ++i) ms += xv[size_t(r * d + i)] * xv[size_t(r * d + i)];
          const double rs = 1 / std::sqrt(ms / double(d) + 1e-6);
          for (int64_t i = 0; i < d; ++i) {
            const size_t k = size_t(r * d + i);
            const double y = xv[k] * rs, wi = weighted ? wv[size_t(i)] : 1.0;
            ref[k] = y * wi;
            tol[k] = std::abs(wi) * (gamma_f32(d) + 8 * kU32) * std::abs(y) + kU32 * std::abs(ref[k]);
          }
        }
        finish_lowp(ref, tol, t);
        expect_within(out, ref, tol, std::string("rms_norm ") + dname(t) + " " + s.str());
      }
}

TEST(ChannelL2Norm, MatchesDoubleReference) {
  auto be = make_cpu_backend({.threads = 2});
  for (DType t : kFloatTypes)
    for (const Shape& s : {Shape{2, 7, 3, 5, 4}, Shape{1, 13, 1}, Shape{2, 5, 33, 37}})
      for (bool with_bias : {false, true}) {
        const int64_t n = s[0], c = s[1], sp = s.numel() / (n * c);
        const Tensor x = random_nonzero(s, 6, t, 0.05f, 3.0f);
        const Tensor gamma = random_nonzero({c, 1, 1}, 7, t), bias = random_nonzero({c}, 8, t);
        Tensor out = Tensor::empty(s, t);
        be->run(op::ChannelL2Norm{&x, &gamma, with_bias ? &bias : nullptr, &out});
        const std::vector<double> xv = to_doubles(x), gv = to_doubles(gamma), bv = to_doubles(bias);
        std::vector<double> ref(xv.size()), tol(xv.size());
        for (int64_t b = 0; b < n; ++b)
          for (int64_t p = 0; p < sp; ++p) {
            double ss = 0;
            for (int64_t ch = 0; ch < c; ++ch) ss += xv[size_t((b * c + ch) * sp + p)] * xv[size_t((b * c + ch) * sp + p)];
            const double inv = 1 / std::max(std::sqrt(ss), 1e-12);
            for (int64_t ch = 0; ch < c; ++ch) {
              const size_t k = size_t((b * c + ch) * sp + p);
              const double y = xv[k] * inv * std::sqrt(double(c)) * gv[size_t(ch)];
              ref[k] = y + (with_bias ? bv[size_t(ch)] : 0.0);
              tol[k] = (gamma_f32(c) + 10 * kU32) * std::abs(y) + kU32 * std::abs(ref[k]);
            }
          }
        finish_lowp(ref, tol, t);
        expect_within(out, ref, tol, std::string("channel_l2_norm ") + dname(t) + " " + s.str());
      }
}

TEST(Softmax, MatchesDoubleReference) {
  auto be = make_cpu_backend({.threads = 2});
  for (DType t : kFloatTypes)
    for (const Shape& s : {Shape{7, 33}, Shape{2, 3, 1031}, Shape{1}})
      for (float scale : {1.0f, 0.125f, -2.5f}) {
        const int64_t d = s[-1];
        const Tensor x = random_nonzero(s, 9, t, 0.05f, 6.0f);
        const Tensor out = ops::softmax(*be, x, scale);
        const std::vector<double> xv = to_doubles(x);
        std::vector<double> ref(xv.size()), tol(xv.size());
        for (int64_t r = 0; r < int64_t(xv.size()) / d; ++r) {
          double m = -INFINITY, range = 0, sum = 0;
          for (int64_t i = 0; i < d; ++i) {
            m = std::max(m, double(scale) * xv[size_t(r * d + i)]);
            range = std::max(range, std::abs(double(scale) * xv[size_t(r * d + i)]));
          }
          for (int64_t i = 0; i < d; ++i) sum += std::exp(double(scale) * xv[size_t(r * d + i)] - m);
          for (int64_t i = 0; i < d; ++i) {
            const size_t k = size_t(r * d + i);
            ref[k] = std::exp(double(scale) * xv[k] - m) / sum;
            tol[k] = (gamma_f32(d) + 8 * kU32 + 8 * kU32 * range) * ref[k];
          }
        }
        finish_lowp(ref, tol, t);
        expect_within(out, ref, tol, std::string("softmax ") + dname(t) + " " + s.str() + " scale " +
                                         std::to_string(scale));
      }
}

TEST(Norms, OneAndTwoThreadsGiveIdenticalBits) {
  const Tensor x = random_nonzero({96, 1031}, 40, DType::bf16, 0.05f, 3.0f);
  const Tensor w = random_nonzero({1031}, 41, DType::f32);
  const Tensor v = random_nonzero({2, 32, 3, 33, 35}, 42, DType::f32), g = random_nonzero({32}, 43, DType::f32);
  expect_thread_invariant([&](Backend& be) { return ops::layer_norm(be, x, &w, &w, 1e-6f); }, "layer_norm");
  expect_thread_invariant([&](Backend& be) { return ops::rms_norm(be, x, &w, 1e-6f); }, "rms_norm");
  expect_thread_invariant(
      [&](Backend& be) {
        Tensor out = Tensor::empty(x.shape(), x.dtype());
        be.run(op::LayerNorm{&x, nullptr, nullptr, &out, 1e-6f, &w, &w});
        return out;
      },
      "layer_norm+modulate");
  expect_thread_invariant([&](Backend& be) { return ops::softmax(be, x, 0.3f); }, "softmax");
  expect_thread_invariant([&](Backend& be) { return ops::channel_l2_norm(be, v, g); }, "channel_l2_norm");
}
