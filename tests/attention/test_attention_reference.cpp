// The cpu_reference kernel (the yardstick of every other attention test) against properties
// that pin attention down without reusing its own code: closed forms for one and two keys,
// identical keys, zero scale, and invariance under permuting the key/value rows.
#include <numeric>

#include "attention/attention_test_util.hpp"

namespace reel::test {
namespace {

std::vector<double> run_reference(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                                  std::vector<float>* lse = nullptr) {
  Tensor out = Tensor::empty(q.shape(), q.dtype());
  AttentionParams p = attention_params(q, k, v, out, scale);
  if (lse) {
    lse->assign(size_t(p.batch * p.heads * p.seq_q), 0.0f);
    p.lse = lse->data();
  }
  EXPECT_EQ(run_attention(p, "cpu_reference").name(), "cpu_reference");
  return to_doubles(out);
}

// One key: softmax is 1, the output is that value row, exactly (f32 in, f32 out).
TEST(AttentionReference, OneKeyReturnsItsValue) {
  Tensor q = random_tensor({2, 5, 3, 16}, 1), k = random_tensor({2, 1, 3, 16}, 2), v = random_tensor({2, 1, 3, 16}, 3);
  std::vector<float> lse;
  const std::vector<double> out = run_reference(q, k, v, 0.3f, &lse);
  const std::vector<float> vv = v.to_floats(), qv = q.to_floats(), kv = k.to_floats();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 5; ++i)
      for (int64_t h = 0; h < 3; ++h) {
        double dot = 0;
        for (int64_t c = 0; c < 16; ++c) {
          EXPECT_EQ(out[size_t(((b * 5 + i) * 3 + h) * 16 + c)], vv[size_t((b * 3 + h) * 16 + c)]);
          dot += double(qv[size_t(((b * 5 + i) * 3 + h) * 16 + c)]) * kv[size_t((b * 3 + h) * 16 + c)];
        }
        // lse of one key is its scaled score (f32 storage: relative 1e-6).
        EXPECT_NEAR(lse[size_t((b * 3 + h) * 5 + i)], 0.3 * dot, 1e-6 * (1 + std::abs(0.3 * dot)));
      }
}

// Two keys: out = σ(s0 − s1)·v0 + σ(s1 − s0)·v1 with s = scale·q·k (the logistic form).
TEST(AttentionReference, TwoKeysMatchTheLogisticForm) {
  Tensor q = random_tensor({1, 7, 1, 32}, 4, DType::f32, -3, 3), k = random_tensor({1, 2, 1, 32}, 5, DType::f32, -3, 3);
  Tensor v = random_tensor({1, 2, 1, 32}, 6);
  const float scale = 0.25f;
  const std::vector<double> out = run_reference(q, k, v, scale);
  const std::vector<float> qv = q.to_floats(), kv = k.to_floats(), vv = v.to_floats();
  for (int64_t i = 0; i < 7; ++i) {
    double s0 = 0, s1 = 0;
    for (int64_t c = 0; c < 32; ++c) {
      s0 += double(qv[size_t(i * 32 + c)]) * kv[size_t(c)];
      s1 += double(qv[size_t(i * 32 + c)]) * kv[size_t(32 + c)];
    }
    const double w0 = 1.0 / (1.0 + std::exp(scale * (s1 - s0)));
    for (int64_t c = 0; c < 32; ++c) {
      const double want = w0 * vv[size_t(c)] + (1 - w0) * vv[size_t(32 + c)];
      EXPECT_NEAR(out[size_t(i * 32 + c)], want, 1e-6) << "row " << i;  // f32 output rounding
    }
  }
}

// Identical keys, or a zero scale: every key weighs the same, the output is the mean value row.
TEST(AttentionReference, EqualScoresAverageTheValues) {
  const int64_t skv = 37, d = 24;
  Tensor q = random_tensor({1, 6, 2, d}, 7);
  Tensor v = random_tensor({1, skv, 2, d}, 8);
  const std::vector<float> vv = v.to_floats();
  std::vector<float> same(size_t(skv * 2 * d));
  const std::vector<float> one = random_tensor({2, d}, 9).to_floats();
  for (int64_t j = 0; j < skv; ++j) std::copy(one.begin(), one.end(), same.begin() + j * 2 * d);
  const Tensor k_same = Tensor::from_floats({1, skv, 2, d}, same);
  const Tensor k_random = random_tensor({1, skv, 2, d}, 10);
  for (auto [k, scale] : {std::pair{k_same, 0.7f}, std::pair{k_random, 0.0f}}) {
    const std::vector<double> out = run_reference(q, k, v, scale);
    for (int64_t i = 0; i < 6; ++i)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t c = 0; c < d; ++c) {
          double mean = 0;
          for (int64_t j = 0; j < skv; ++j) mean += vv[size_t((j * 2 + h) * d + c)];
          mean /= double(skv);
          EXPECT_NEAR(out[size_t((i * 2 + h) * d + c)], mean, 1e-6);
        }
  }
}

// Permuting key rows together with their value rows changes nothing (up to f32 rounding).
TEST(AttentionReference, InvariantUnderKeyPermutation) {
  const int64_t skv = 50, hd = 2 * 16;
  Tensor q = random_tensor({1, 9, 2, 16}, 11, DType::f32, -3, 3);
  Tensor k = random_tensor({1, skv, 2, 16}, 12, DType::f32, -3, 3), v = random_tensor({1, skv, 2, 16}, 13);
  std::vector<int64_t> perm(static_cast<size_t>(skv));
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 rng(3);
  std::shuffle(perm.begin(), perm.end(), rng);
  const std::vector<float> kv = k.to_floats(), vv = v.to_floats();
  std::vector<float> kp(kv.size()), vp(vv.size());
  for (int64_t j = 0; j < skv; ++j)
    for (int64_t c = 0; c < hd; ++c) {
      kp[size_t(j * hd + c)] = kv[size_t(perm[size_t(j)] * hd + c)];
      vp[size_t(j * hd + c)] = vv[size_t(perm[size_t(j)] * hd + c)];
    }
  const std::vector<double> a = run_reference(q, k, v, 0.25f);
  const std::vector<double> b =
      run_reference(q, Tensor::from_floats(k.shape(), kp), Tensor::from_floats(v.shape(), vp), 0.25f);
  EXPECT_LE(max_abs_diff(a, b), 1e-6);
}

}  // namespace
}  // namespace reel::test
