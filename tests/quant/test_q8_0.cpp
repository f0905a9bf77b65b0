// Q8_0 weights kept quantised and the CPU product on them (lib/quant/q8_0.hpp): packing from
// GGUF blocks equals ggml's dequantisation, quantise-on-load is within half a step, and the
// kernel (AVX-512 VNNI and portable) equals the exact block sums on odd shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "quant/q8_0.hpp"
#include "weights/gguf_dequant.hpp"

namespace reel::quant {
namespace {

std::vector<float> gaussian(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Random GGUF Q8_0 blocks: f16 scales in [1e-3, 1e-1], int8 values over the whole range.
std::vector<std::byte> gguf_blocks(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> scale(1e-3f, 1e-1f);
  std::uniform_int_distribution<int> value(-128, 127);
  std::vector<std::byte> out(size_t(rows * cols / 32 * 34));
  for (size_t b = 0; b < out.size() / 34; ++b) {
    const uint16_t d = f16::from_float(scale(rng)).bits;
    std::memcpy(&out[b * 34], &d, 2);
    for (int i = 0; i < 32; ++i) out[b * 34 + 2 + size_t(i)] = std::byte(uint8_t(int8_t(value(rng))));
  }
  return out;
}

TEST(Q8_0, FromGgufDequantisesAsGgml) {
  const int64_t rows = 37, cols = 96;  // a partial row group
  const std::vector<std::byte> blocks = gguf_blocks(rows, cols, 1);
  std::vector<float> ggml(size_t(rows * cols));
  detail::dequantize_gguf(FileDType::q8_0, blocks.data(), ggml.data(), ggml.size());
  const std::vector<float> ours = Q8Matrix::from_gguf(blocks.data(), rows, cols).dequantize();
  ASSERT_EQ(ours.size(), ggml.size());
  EXPECT_EQ(std::memcmp(ours.data(), ggml.data(), ours.size() * sizeof(float)), 0);
}

TEST(Q8_0, QuantiseOnLoadIsWithinHalfAStep) {
  const int64_t rows = 20, cols = 64;
  const std::vector<float> w = gaussian(size_t(rows * cols), 2);
  const std::vector<float> back = Q8Matrix::quantize(w.data(), rows, cols).dequantize();
  for (int64_t blk = 0; blk < rows * cols / 32; ++blk) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(w[size_t(blk * 32 + i)]));
    const float step = amax / 127.0f;
    for (int i = 0; i < 32; ++i) {
      const size_t k = size_t(blk * 32 + i);
      ASSERT_LE(std::fabs(back[k] - w[k]), 0.5f * step * 1.0001f) << "element " << k;
    }
  }
}

// The exact value the kernel computes, in double: Σ_b dx·dw·(integer block dot product).
std::vector<double> exact(const std::vector<float>& x, int64_t M, const Q8Matrix& w, const float* bias) {
  const Q8Activations a = quantize_activations(x.data(), M, w.cols());
  const std::vector<float> dq = w.dequantize();
  std::vector<double> y(size_t(M * w.rows()));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < w.rows(); ++n) {
      double sum = bias ? bias[n] : 0.0;
      for (int64_t b = 0; b < w.blocks(); ++b) {
        for (int64_t i = 0; i < 32; ++i) {
          const int64_t k = b * 32 + i;
          const double xv = double(a.scale[size_t(m * w.blocks() + b)]) * (int(a.q[size_t(m * w.cols() + k)]) - 128);
          sum += xv * double(dq[size_t(n * w.cols() + k)]);
        }
      }
      y[size_t(m * w.rows() + n)] = sum;
    }
  return y;
}

double relative_l2(const std::vector<float>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) num += (got[i] - ref[i]) * (got[i] - ref[i]), den += ref[i] * ref[i];
  return std::sqrt(num / den);
}

struct Shape3 {
  int64_t M, K, N;
};

class Q8Kernel : public ::testing::TestWithParam<Shape3> {};

// The kernel's only rounding is the f32 sum over blocks (K/32 terms): relative error of order
// (K/32)·2^-24 ≲ 3e-6 here; a wrong index, sign or scale is O(1).
TEST_P(Q8Kernel, EqualsTheExactBlockSums) {
  const auto [M, K, N] = GetParam();
  const std::vector<float> x = gaussian(size_t(M * K), 3), wf = gaussian(size_t(N * K), 4, 0.05f);
  const std::vector<float> bias = gaussian(size_t(N), 5);
  const Q8Matrix w = Q8Matrix::quantize(wf.data(), N, K);
  for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
    const std::vector<double> ref = exact(x, M, w, b);
    std::vector<float> fast(size_t(M * N)), portable(size_t(M * N));
    q8_linear(x.data(), M, w, b, fast.data());
    q8_linear(x.data(), M, w, b, portable.data(), /*force_portable=*/true);
    EXPECT_LT(relative_l2(portable, ref), 1e-5) << "portable, M " << M << " K " << K << " N " << N;
    EXPECT_LT(relative_l2(fast, ref), 1e-5) << (q8_has_vnni() ? "VNNI" : "portable (no VNNI here)");
    // Same integers, same f32 operations in the same order: the same bits.
    EXPECT_EQ(std::memcmp(fast.data(), portable.data(), fast.size() * sizeof(float)), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Q8Kernel,
                         ::testing::Values(Shape3{1, 32, 1}, Shape3{7, 96, 37}, Shape3{4, 64, 16},
                                           Shape3{70, 1536, 48}, Shape3{5, 320, 130}));

// What quantising costs against the f32 product on the same random data: 8-bit blocks on
// both sides, ~0.5 % (a broken scale would be ≥ 10 %).
TEST(Q8_0, QuantisationErrorAgainstF32IsSmall) {
  const int64_t M = 33, K = 512, N = 40;
  const std::vector<float> x = gaussian(size_t(M * K), 6), wf = gaussian(size_t(N * K), 7, 0.05f);
  std::vector<double> ref(size_t(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += double(x[size_t(m * K + k)]) * wf[size_t(n * K + k)];
      ref[size_t(m * N + n)] = s;
    }
  std::vector<float> y(size_t(M * N));
  q8_linear(x.data(), M, Q8Matrix::quantize(wf.data(), N, K), nullptr, y.data());
  const double err = relative_l2(y, ref);
  std::printf("Q8_0 weights and activations vs f32: relative L2 %.3g\n", err);
  EXPECT_LT(err, 1.5e-2);
  EXPECT_GT(err, 1e-4);  // it does quantise
}

}  // namespace
}  // namespace reel::quant
