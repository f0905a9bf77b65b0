// Weights kept quantised and the CPU product on them (lib/quant/qmatrix.hpp): GGUF Q8_0, Q4_0,
// Q4_1, Q4_K, Q5_0, Q5_1 and Q5_K blocks unpacked to the values ggml's dequantisation gives, quantise-on-load
// within half a step, and the kernels (AVX-512 VNNI, AVX2, portable; 8- and 4-bit; whole and
// half blocks) equal to each other bit for bit and to the
// exact block sums on odd shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <ostream>
#include <random>

#include "common/gguf_blocks.hpp"
#include "common/test_util.hpp"
#include "quant/qmatrix.hpp"
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

class FromGguf : public ::testing::TestWithParam<FileDType> {};

// scale·q + offset is ggml's expression for Q4_1, Q4_K, Q5_1 and Q5_K (d·q + m, dj·q − mj); for
// Q8_0, Q4_0 and Q5_0 it is d·(q + c) − c·d instead of d·q: equal up to one rounding of the
// larger term.
TEST_P(FromGguf, UnpacksToGgmlsValues) {
  const FileDType type = GetParam();
  const int64_t rows = 37, cols = 512;  // a partial row group; two Q4_K super-blocks per row
  const std::vector<std::byte> blocks = test::random_gguf_blocks(type, rows, cols, 1);
  std::vector<float> ggml(size_t(rows * cols));
  detail::dequantize_gguf(type, blocks.data(), ggml.data(), ggml.size());
  const QMatrix w = QMatrix::from_gguf(type, blocks.data(), rows, cols);
  EXPECT_EQ(w.bits(), detail::gguf_affine_max_q(type) > 15 ? 8 : 4);  // Q8_0, Q5_*, Q6_K: a byte a value
  EXPECT_EQ(w.halves(), detail::gguf_affine_sub(type) == 16 ? 2 : 1);
  const std::vector<float> ours = w.dequantize();
  ASSERT_EQ(ours.size(), ggml.size());
  for (size_t i = 0; i < ours.size(); ++i)
    ASSERT_LE(std::fabs(ours[i] - ggml[i]), 1e-6f * (1.0f + std::fabs(ggml[i])) + 2e-7f) << "element " << i;
}

INSTANTIATE_TEST_SUITE_P(Types, FromGguf,
                         ::testing::Values(FileDType::q8_0, FileDType::q4_0, FileDType::q4_1, FileDType::q4_k,
                                           FileDType::q5_0, FileDType::q5_1, FileDType::q5_k, FileDType::q6_k,
                                           FileDType::q3_k, FileDType::q2_k),
                         [](const auto& p) { return std::string(file_dtype_name(p.param)); });

TEST(QMatrix, OtherTypesAreRefusedByName) {
  EXPECT_FALSE(QMatrix::keeps(FileDType::bf16));
  try {
    (void)QMatrix::from_gguf(FileDType::bf16, nullptr, 16, 256);
    FAIL() << "BF16 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("BF16"), std::string::npos) << e.what();
  }
}

TEST(QMatrix, QuantiseOnLoadIsWithinHalfAStep) {
  const int64_t rows = 20, cols = 64;
  const std::vector<float> w = gaussian(size_t(rows * cols), 2);
  for (QType type : {QType::q8_0, QType::q4_0}) {
    const std::vector<float> back = QMatrix::quantize(type, w.data(), rows, cols).dequantize();
    for (int64_t blk = 0; blk < rows * cols / 32; ++blk) {
      float amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(w[size_t(blk * 32 + i)]));
      // q8_0: steps of amax/127, half a step. q4_0: steps of amax/8 from −8 to 7 (the largest
      // magnitude maps to −8·d), so values past 7 steps on the other side clamp: up to one
      // step there, half a step elsewhere. The scale is stored as f16 (as ggml stores it): up
      // to qmax·2^-11 steps more.
      const float qmax = type == QType::q8_0 ? 127.0f : 8.0f, step = amax / qmax;
      for (int i = 0; i < 32; ++i) {
        const size_t k = size_t(blk * 32 + i);
        const bool clamped = type == QType::q4_0 && std::fabs(w[k]) > 7.5f * step;
        const float bound = step * ((clamped ? 1.0f : 0.5f) + qmax * 0x1p-11f) + 1e-6f;
        ASSERT_LE(std::fabs(back[k] - w[k]), bound) << qtype_name(type) << " element " << k;
      }
    }
  }
}

// Q4_K at load (reel's encoder): a valid Q4_K block that the GGUF dequantiser decodes to the
// same values, each within two steps of its sub-block's range (the search may clip an extreme
// when that lowers the error overall) plus the error of the 6-bit scale and min, and more
// accurate than Q4_0 and than the plain range on 0..15 (the search's first candidate: 9.2 %).
TEST(QMatrix, Q4KEncoderMakesValidBlocksNearTheWeights) {
  const int64_t rows = 12, cols = 512;
  std::vector<float> w = gaussian(size_t(rows * cols), 4);
  for (size_t i = 0; i < w.size(); i += 97) w[i] *= 6.0f;  // outliers, as real weights have
  std::vector<std::byte> blocks(size_t(rows * cols) / 256 * 144);
  ASSERT_TRUE(detail::quantize_gguf(FileDType::q4_k, w.data(), blocks.data(), w.size()));
  std::vector<float> decoded(w.size());
  detail::dequantize_gguf(FileDType::q4_k, blocks.data(), decoded.data(), decoded.size());
  const std::vector<float> kept = QMatrix::quantize(QType::q4_k, w.data(), rows, cols).dequantize();
  double err_k = 0, err_0 = 0, norm = 0;
  const std::vector<float> q40 = QMatrix::quantize(QType::q4_0, w.data(), rows, cols).dequantize();
  for (size_t i = 0; i < w.size(); ++i) {
    ASSERT_NEAR(kept[i], decoded[i], 1e-6f * (1.0f + std::fabs(decoded[i]))) << i;
    const size_t sub = i / 32 * 32;
    float lo = 0, hi = 0;
    for (size_t k = sub; k < sub + 32; ++k) lo = std::min(lo, w[k]), hi = std::max(hi, w[k]);
    // one step of the sub-block's range (rounding, and the 6-bit scale rounding up to half a
    // step of 63: the grid can end up to ~1/63 of the range short)
    ASSERT_LE(std::fabs(decoded[i] - w[i]), (hi - lo) / 15.0f * 2.0f + (hi - lo) * 0.05f + 1e-5f) << i;
    err_k += (decoded[i] - w[i]) * (decoded[i] - w[i]), err_0 += (q40[i] - w[i]) * (q40[i] - w[i]), norm += w[i] * w[i];
  }
  std::printf("weights, relative L2: Q4_K %.4f, Q4_0 %.4f\n", std::sqrt(err_k / norm), std::sqrt(err_0 / norm));
  EXPECT_LT(err_k, err_0);
  EXPECT_LT(std::sqrt(err_k / norm), 0.090);  // the plain range gave 0.0920 on these weights
  test::expect_code(StatusCode::invalid_argument, [&] { (void)QMatrix::quantize(QType::q4_k, w.data(), 16, 96); }, "256");
}

// The exact value the kernel computes, in double: Σ over blocks and elements of
// (dx·qx)·(scale·q + offset), from the quantised activations and dequantize().
std::vector<double> exact(const std::vector<float>& x, int64_t M, const QMatrix& w, const float* bias) {
  const QActivations a = quantize_activations(x.data(), M, w.cols());
  const std::vector<float> dq = w.dequantize();
  std::vector<double> y(size_t(M * w.rows()));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < w.rows(); ++n) {
      double sum = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < w.cols(); ++k) {
        const double xv = double(a.scale[size_t(m * w.blocks() + k / 32)]) * a.q[size_t(m * w.cols() + k)];
        sum += xv * double(dq[size_t(n * w.cols() + k)]);
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

struct Case {
  QType type;
  int64_t M, K, N;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << qtype_name(c.type) << " M" << c.M << " K" << c.K << " N" << c.N;
}

class KernelShapes : public ::testing::TestWithParam<Case> {};

// The kernel's roundings are the f32 sums over blocks (two fmas per block: K/32·2 terms) and
// the scale products: relative error of order (K/16)·2^-24 ≲ 1e-5 here; a wrong index, nibble,
// sign, offset or scale is O(1).
TEST_P(KernelShapes, EqualsTheExactBlockSums) {
  const auto [type, M, K, N] = GetParam();
  const std::vector<float> x = gaussian(size_t(M * K), 3), wf = gaussian(size_t(N * K), 4, 0.05f);
  const std::vector<float> bias = gaussian(size_t(N), 5);
  const QMatrix w = QMatrix::quantize(type, wf.data(), N, K);
  for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
    const std::vector<double> ref = exact(x, M, w, b);
    std::vector<float> fast(size_t(M * N)), portable(size_t(M * N)), avx2(size_t(M * N));
    q_linear(x.data(), M, w, b, fast.data());
    q_linear(x.data(), M, w, b, portable.data(), QKernel::portable);
    q_linear(x.data(), M, w, b, avx2.data(), QKernel::avx2);  // portable where the CPU has no AVX2
    EXPECT_LT(relative_l2(portable, ref), 2e-5) << "portable";
    EXPECT_LT(relative_l2(fast, ref), 2e-5) << (q_has_vnni() ? "VNNI" : "portable (no VNNI here)");
    EXPECT_EQ(std::memcmp(avx2.data(), portable.data(), avx2.size() * sizeof(float)), 0) << "AVX2";
    // Same integers, same f32 operations in the same order: the same bits.
    EXPECT_EQ(std::memcmp(fast.data(), portable.data(), fast.size() * sizeof(float)), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, KernelShapes,
                         ::testing::Values(Case{QType::q8_0, 1, 32, 1}, Case{QType::q8_0, 7, 96, 37},
                                           Case{QType::q8_0, 4, 64, 16}, Case{QType::q8_0, 70, 1536, 48},
                                           Case{QType::q8_0, 5, 320, 130}, Case{QType::q4_0, 1, 32, 1},
                                           Case{QType::q4_0, 7, 96, 37}, Case{QType::q4_0, 70, 1536, 48},
                                           Case{QType::q4_0, 9, 320, 130}));

// Kept GGUF Q4_1, Q4_K, Q5_*, Q6_K, Q3_K, Q2_K weights through the kernel (offsets not multiples
// of the scale; 5- and 6-bit values through the 8-bit path; 16-weight sub-blocks as halves).
TEST(QMatrix, GgufTypesThroughTheKernel) {
  for (FileDType type : {FileDType::q4_1, FileDType::q4_k, FileDType::q5_0, FileDType::q5_1, FileDType::q5_k,
                         FileDType::q6_k, FileDType::q3_k, FileDType::q2_k}) {
    const int64_t M = 11, K = 512, N = 35;
    const std::vector<std::byte> blocks = test::random_gguf_blocks(type, N, K, 8);
    const QMatrix w = QMatrix::from_gguf(type, blocks.data(), N, K);
    const std::vector<float> x = gaussian(size_t(M * K), 9);
    const std::vector<double> ref = exact(x, M, w, nullptr);
    std::vector<float> fast(size_t(M * N)), portable(size_t(M * N)), avx2(size_t(M * N));
    q_linear(x.data(), M, w, nullptr, fast.data());
    q_linear(x.data(), M, w, nullptr, portable.data(), QKernel::portable);
    q_linear(x.data(), M, w, nullptr, avx2.data(), QKernel::avx2);
    EXPECT_EQ(std::memcmp(avx2.data(), portable.data(), avx2.size() * sizeof(float)), 0) << "AVX2 " << file_dtype_name(type);
    EXPECT_LT(relative_l2(fast, ref), 2e-5) << file_dtype_name(type);
    EXPECT_EQ(std::memcmp(fast.data(), portable.data(), fast.size() * sizeof(float)), 0) << file_dtype_name(type);
  }
}

// What quantising costs against the f32 product on the same random data (8-bit activations;
// 8- or 4-bit weights): ~0.7 % for Q8_0, ~9 % for Q4_0 (a broken scale would be ≥ 30 %).
TEST(QMatrix, QuantisationErrorAgainstF32) {
  const int64_t M = 33, K = 512, N = 40;
  const std::vector<float> x = gaussian(size_t(M * K), 6), wf = gaussian(size_t(N * K), 7, 0.05f);
  std::vector<double> ref(size_t(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += double(x[size_t(m * K + k)]) * wf[size_t(n * K + k)];
      ref[size_t(m * N + n)] = s;
    }
  for (auto [type, bound] : {std::pair{QType::q8_0, 1.5e-2}, std::pair{QType::q4_0, 1.5e-1}, std::pair{QType::q4_k, 1.5e-1}}) {
    std::vector<float> y(size_t(M * N));
    q_linear(x.data(), M, QMatrix::quantize(type, wf.data(), N, K), nullptr, y.data());
    const double err = relative_l2(y, ref);
    std::printf("%s weights, 8-bit activations vs f32: relative L2 %.3g\n", std::string(qtype_name(type)).c_str(), err);
    EXPECT_LT(err, bound);
    EXPECT_GT(err, 1e-4);  // it does quantise
  }
}

}  // namespace
}  // namespace reel::quant
