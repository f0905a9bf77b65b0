// CUDA layer norm (plain and fused with the adaLN modulation), RMS norm, channel L2 norm and
// softmax against the CPU backend: f32, bf16, f16, odd row lengths, with and without affine
// parameters, f32 output from bf16 input (the DiT's FP32 LayerNorm), in place. Skips without a
// GPU.
//
// Bounds (scheme in cuda_test_util.hpp), per backend, for a row of n values with mean μ,
// A = Σ|x|/n, r = 1/√(var + eps), and f32 sums in any order (γ_n; the GPU's with u = 2^-22):
//   layer norm  |Δμ| <= γ_n·A; var = Σ(x − μ̂)²/n carries γ_{n+3} relative (the Δμ effect is
//               second order); r: half of that + 2u; y = (x − μ̂)·r·w + b adds 3 roundings:
//               |Δy| <= |w|·r·(γ_n·A + |x − μ|·(γ_{n+3} + 6u)) + 3u·|y|
//   layer norm + modulate  o = y·(1 + s) + h: |Δo| <= |1 + s|·|Δy|·(1 + 3u) + 3u·|y·(1 + s)| + 2u·|o|
//   RMS norm    |Δy| <= |y|·(γ_{n+1} + 6u)
//   channel L2  the same over the C channels, then ·√C·gamma + bias: |Δy| <= |y − b|·(γ_{C+1} + 8u) + u·|y|
//   softmax     every exp(s·x − m) is within 2 ulp (CPU polynomial, CUDA expf) of the exact value
//               of its rounded argument, the argument within u·(|s·x| + |s·x − m|) <= 4u·max|s·x|
//               of the exact one; the sum adds γ_n, the division 2u:
//               |Δy| <= |y|·(γ_n + (8 + 4·max|s·x|)·u)
// The two backends' bounds add; the output rounding adds 2·u_t·|y| (see cuda_test_util.hpp).
#include "cuda/cuda_test_util.hpp"

using namespace reel;
using namespace reel::test;

namespace {

const DType kTypes[] = {DType::f32, DType::bf16, DType::f16};

struct RowStats {
  double mean, abs_mean, rstd;
};

std::vector<RowStats> row_stats(const std::vector<double>& x, int64_t n, double eps, bool centered) {
  std::vector<RowStats> s;
  for (size_t r = 0; r * size_t(n) < x.size(); ++r) {
    double sum = 0, abs = 0;
    for (int64_t j = 0; j < n; ++j) {
      sum += x[r * size_t(n) + size_t(j)];
      abs += std::abs(x[r * size_t(n) + size_t(j)]);
    }
    const double mean = centered ? sum / double(n) : 0.0;
    double sq = 0;
    for (int64_t j = 0; j < n; ++j) sq += (x[r * size_t(n) + size_t(j)] - mean) * (x[r * size_t(n) + size_t(j)] - mean);
    s.push_back({mean, abs / double(n), 1.0 / std::sqrt(sq / double(n) + eps)});
  }
  return s;
}

}  // namespace

TEST(CudaLayerNorm, MatchesCpu) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 1000;
  for (DType t : kTypes)
    for (bool affine : {true, false})
      for (DType out_t : {t, DType::f32})
        for (const Shape& shape : {Shape{5, 33, 77}, Shape{3, 1536}, Shape{4, 5}}) {
          const int64_t n = shape[-1];
          const float eps = 1e-6f;
          const Tensor x = random_nonzero(shape, seed++, t);
          const Tensor w = random_nonzero({n}, seed++, t), b = random_nonzero({n}, seed++, t);
          Tensor ref = Tensor::empty(shape, out_t);
          cpu_backend().run(op::LayerNorm{&x, affine ? &w : nullptr, affine ? &b : nullptr, &ref, eps});
          const Tensor gx = on_gpu(x), gw = on_gpu(w), gb = on_gpu(b);
          Tensor got = gpu().empty(shape, out_t);
          gpu().run(op::LayerNorm{&gx, affine ? &gw : nullptr, affine ? &gb : nullptr, &got, eps});

          const std::vector<double> xv = to_doubles(x), wv = to_doubles(w), y = to_doubles(ref);
          const std::vector<RowStats> st = row_stats(xv, n, eps, true);
          const double u = kU32, ut = unit_roundoff(out_t);
          std::vector<double> tol(y.size());
          for (size_t i = 0; i < y.size(); ++i) {
            const RowStats& s = st[i / size_t(n)];
            const double wi = affine ? std::abs(wv[i % size_t(n)]) : 1.0;
            auto e = [&](double g_n, double g_n3) {
              return wi * s.rstd * (g_n * s.abs_mean + std::abs(xv[i] - s.mean) * (g_n3 + 6 * u)) + 3 * u * std::abs(y[i]);
            };
            tol[i] = e(gamma_f32(n), gamma_f32(n + 3)) + e(gamma_gpu(n), gamma_gpu(n + 3)) + 2 * ut * 1.01 * std::abs(y[i]);
          }
          expect_near_cpu(got, ref, tol,
                          std::string("layer_norm ") + shape.str() + " " + dname(t) + " -> " + dname(out_t) +
                              (affine ? " affine" : ""));
        }
}

// The fused adaLN form (mod_scale, mod_shift), as the DiT runs it per timestep segment.
TEST(CudaLayerNormModulate, MatchesCpu) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 1400;
  for (DType t : kTypes)
    for (bool affine : {true, false})
      for (DType out_t : {t, DType::f32})
        for (const Shape& shape : {Shape{5, 33, 77}, Shape{3, 1536}, Shape{4, 5}}) {
          const int64_t n = shape[-1];
          const float eps = 1e-6f;
          const Tensor x = random_nonzero(shape, seed++, t);
          const Tensor w = random_nonzero({n}, seed++, t), b = random_nonzero({n}, seed++, t);
          const Tensor sc = random_nonzero({n}, seed++), sh = random_nonzero({n}, seed++);
          const Tensor* wp = affine ? &w : nullptr;
          const Tensor* bp = affine ? &b : nullptr;
          Tensor ref = Tensor::empty(shape, out_t), plain = Tensor::empty(shape, DType::f32);
          cpu_backend().run(op::LayerNorm{&x, wp, bp, &ref, eps, &sc, &sh});
          cpu_backend().run(op::LayerNorm{&x, wp, bp, &plain, eps});  // y, for the bound
          const Tensor gx = on_gpu(x), gw = on_gpu(w), gb = on_gpu(b), gs = on_gpu(sc), gh = on_gpu(sh);
          Tensor got = gpu().empty(shape, out_t);
          gpu().run(op::LayerNorm{&gx, affine ? &gw : nullptr, affine ? &gb : nullptr, &got, eps, &gs, &gh});

          const std::vector<double> xv = to_doubles(x), wv = to_doubles(w), y = to_doubles(plain);
          const std::vector<double> sv = to_doubles(sc), o = to_doubles(ref);
          const std::vector<RowStats> st = row_stats(xv, n, eps, true);
          const double u = kU32, ut = unit_roundoff(out_t);
          std::vector<double> tol(y.size());
          for (size_t i = 0; i < y.size(); ++i) {
            const RowStats& s = st[i / size_t(n)];
            const double wi = affine ? std::abs(wv[i % size_t(n)]) : 1.0;
            auto e = [&](double g_n, double g_n3) {
              return wi * s.rstd * (g_n * s.abs_mean + std::abs(xv[i] - s.mean) * (g_n3 + 6 * u)) + 3 * u * std::abs(y[i]);
            };
            const double g = std::abs(1 + sv[i % size_t(n)]);
            const double ey = e(gamma_f32(n), gamma_f32(n + 3)) + e(gamma_gpu(n), gamma_gpu(n + 3));
            tol[i] = g * ey * (1 + 3 * u) + 2 * (3 * u * g * std::abs(y[i]) + 2 * u * std::abs(o[i])) +
                     2 * ut * 1.01 * std::abs(o[i]);
          }
          expect_near_cpu(got, ref, tol,
                          std::string("layer_norm+modulate ") + shape.str() + " " + dname(t) + " -> " + dname(out_t) +
                              (affine ? " affine" : ""));
        }
}

TEST(CudaRmsNorm, MatchesCpuAndRunsInPlace) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 1100;
  for (DType t : kTypes)
    for (bool weighted : {true, false})
      for (const Shape& shape : {Shape{7, 130}, Shape{2, 3, 5120}, Shape{1, 1}}) {
        const int64_t n = shape[-1];
        const Tensor x = random_nonzero(shape, seed++, t);
        const Tensor w = random_nonzero({n}, seed++, DType::f32);  // f32 weights with low-precision x
        Tensor ref = Tensor::empty(shape, t);
        cpu_backend().run(op::RmsNorm{&x, weighted ? &w : nullptr, &ref, 1e-6f});
        Tensor got = on_gpu(x);
        const Tensor gw = on_gpu(w);
        gpu().run(op::RmsNorm{&got, weighted ? &gw : nullptr, &got, 1e-6f});  // in place
        const std::vector<double> y = to_doubles(ref);
        const double rel = gamma_f32(n + 1) + gamma_gpu(n + 1) + 12 * kU32 + 2 * unit_roundoff(t) * 1.01;
        expect_near_cpu(got, ref, bound(y, rel, {}),
                        std::string("rms_norm ") + shape.str() + " " + dname(t) + (weighted ? " weighted" : ""));
      }
}

TEST(CudaChannelL2Norm, MatchesCpu) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 1200;
  for (DType t : kTypes)
    for (bool with_bias : {true, false})
      for (const Shape& shape : {Shape{2, 12, 3, 5, 7}, Shape{1, 96, 4, 9}, Shape{3, 5}}) {
        const int64_t c = shape[1];
        const Tensor x = random_nonzero(shape, seed++, t);
        const Tensor g = random_nonzero({c}, seed++, t), b = random_nonzero({c}, seed++, t);
        Tensor ref = Tensor::empty(shape, t);
        cpu_backend().run(op::ChannelL2Norm{&x, &g, with_bias ? &b : nullptr, &ref});
        const Tensor gx = on_gpu(x), gg = on_gpu(g), gb = on_gpu(b);
        Tensor got = gpu().empty(shape, t);
        gpu().run(op::ChannelL2Norm{&gx, &gg, with_bias ? &gb : nullptr, &got});
        const std::vector<double> y = to_doubles(ref), bv = to_doubles(b);
        const int64_t spatial = x.numel() / (shape[0] * c);
        std::vector<double> tol(y.size());
        const double u = kU32, ut = unit_roundoff(t);
        for (size_t i = 0; i < y.size(); ++i) {
          const double bias = with_bias ? bv[(i / size_t(spatial)) % size_t(c)] : 0.0;
          tol[i] = std::abs(y[i] - bias) * (gamma_f32(c + 1) + gamma_gpu(c + 1) + 16 * u) + 2 * u * std::abs(y[i]) +
                   2 * ut * 1.01 * std::abs(y[i]);
        }
        expect_near_cpu(got, ref, tol, std::string("channel_l2_norm ") + shape.str() + " " + dname(t));
      }
}

TEST(CudaSoftmax, MatchesCpu) {
  REEL_REQUIRE_GPU();
  uint64_t seed = 1300;
  for (DType t : kTypes)
    for (float scale : {1.0f, 0.3f, -2.0f})
      for (const Shape& shape : {Shape{6, 1000}, Shape{3, 4, 77}, Shape{5, 1}}) {
        const int64_t n = shape[-1];
        const Tensor x = random_nonzero(shape, seed++, t, 0.05f, 4.0f);
        Tensor ref = Tensor::empty(shape, t);
        cpu_backend().run(op::Softmax{&x, &ref, scale});
        const Tensor gx = on_gpu(x);
        Tensor got = gpu().empty(shape, t);
        gpu().run(op::Softmax{&gx, &got, scale});
        const double max_sx = 4.0 * std::abs(scale);
        const double per = gamma_f32(n) + gamma_gpu(n) + 2 * (8 + 4 * max_sx) * kU32 + 2 * unit_roundoff(t) * 1.01;
        expect_near_cpu(got, ref, bound(to_doubles(ref), per, {}),
                        std::string("softmax ") + shape.str() + " " + dname(t) + " scale " + std::to_string(scale));
      }
}
